/*
 * What the kernel says a process holds, read from outside it: the check of
 * the promise that every frame the host was told is a frame the balloon has
 * locked (tests, and anyone auditing a run). Needs CAP_SYS_ADMIN for frames.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

/**
 * The frames a process has locked now: the present pages of its mappings
 * whose VmFlags say `lo` (mlock, and secret memory), from /proc/PID/smaps
 * and /proc/PID/pagemap. Without CAP_SYS_ADMIN pagemap shows no frames, and
 * the set is empty.
 */
export function lockedFramesOf(pid: number): Set<number> {
  const ranges: [number, number][] = [];
  let current: [number, number] | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) current = [Number.parseInt(range[1]!, 16), Number.parseInt(range[2]!, 16)];
    else if (line.startsWith("VmFlags:") && / lo( |$)/.test(line) && current) ranges.push(current);
  }
  const frames = new Set<number>();
  const pagemap = openSync(`/proc/${pid}/pagemap`, "r");
  const buffer = Buffer.alloc(65536 * 8);
  try {
    for (const [start, end] of ranges) {
      for (let page = start / 4096; page < end / 4096; page += 65536) {
        const count = Math.min(65536, end / 4096 - page);
        const read = readSync(pagemap, buffer, 0, count * 8, page * 8);
        for (let i = 0; i < read / 8; i++) {
          const high = buffer.readUInt32LE(i * 8 + 4);
          if ((high & 0x8000_0000) !== 0) frames.add((high & 0x7f_ffff) * 2 ** 32 + buffer.readUInt32LE(i * 8));
        }
      }
    }
  } finally {
    closeSync(pagemap);
  }
  return frames;
}
