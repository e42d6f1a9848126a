/*
 * What the kernel says a process holds, read from outside it: the check of
 * the promise that every frame the host was told is a frame the balloon
 * holds (tests, and anyone auditing a run). Needs CAP_SYS_ADMIN for frames.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

/** The frames of the present pages of a process's mappings whose VmFlags (smaps) pass `wanted`. */
function framesOf(pid: number, wanted: (flags: string) => boolean): Set<number> {
  const ranges: [number, number][] = [];
  let current: [number, number] | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) current = [Number.parseInt(range[1]!, 16), Number.parseInt(range[2]!, 16)];
    else if (line.startsWith("VmFlags:") && wanted(`${line.slice(8)} `) && current) ranges.push(current);
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

/**
 * The frames a process has locked now: the present pages of its mappings
 * whose VmFlags say `lo` (mlock, and secret memory), from /proc/PID/smaps
 * and /proc/PID/pagemap. Without CAP_SYS_ADMIN pagemap shows no frames, and
 * the set is empty.
 */
export function lockedFramesOf(pid: number): Set<number> {
  return framesOf(pid, (flags) => flags.includes(" lo "));
}

/**
 * The frames of a page source's memory in a process now, whatever the
 * memory: the present pages of its mappings that are locked (`lo`: mlock,
 * secret memory) or kept both out of core dumps and from forked children
 * (`dd` and `dc`: every chunk of the page source, pinned memory's
 * included, which is pinned rather than locked). From /proc/PID/smaps and
 * /proc/PID/pagemap; empty without CAP_SYS_ADMIN.
 */
export function balloonFramesOf(pid: number): Set<number> {
  return framesOf(pid, (flags) => flags.includes(" lo ") || (flags.includes(" dd ") && flags.includes(" dc ")));
}
