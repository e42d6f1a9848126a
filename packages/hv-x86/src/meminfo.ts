import { closeSync, openSync, readSync } from "node:fs";

/** The lines of /proc/meminfo the page source needs, in pages of 4 KiB. */
export interface MemoryFigures {
  /** MemTotal: what `si_meminfo` calls totalram. */
  readonly totalPages: number;
  /** MemFree: pages free without reclaiming anything. */
  readonly freePages: number;
  /** MemAvailable: the kernel's estimate of what can be had, reclaim included. */
  readonly availablePages: number;
}

function field(text: string, name: string): number {
  const at = text.indexOf(`\n${name}:`);
  const start = at === -1 ? (text.startsWith(`${name}:`) ? 0 : -1) : at + 1;
  if (start === -1) throw new Error(`/proc/meminfo has no ${name} line`);
  const match = /^[A-Za-z]+:\s+(\d+) kB/.exec(text.slice(start, start + 64));
  if (match === null) throw new Error(`/proc/meminfo: cannot read the ${name} line`);
  return Number(match[1]);
}

/** Parses the text of /proc/meminfo (values in kB) into pages. */
export function parseMeminfo(text: string): MemoryFigures {
  return {
    totalPages: Math.floor(field(text, "MemTotal") / 4),
    freePages: Math.floor(field(text, "MemFree") / 4),
    availablePages: Math.floor(field(text, "MemAvailable") / 4),
  };
}

/** /proc/meminfo, kept open and read again from the start on each call (one read, no open). */
export class MeminfoReader {
  private fd: number;
  private readonly buffer = Buffer.alloc(16384);

  constructor(path = "/proc/meminfo") {
    this.fd = openSync(path, "r");
  }

  read(): MemoryFigures {
    const length = readSync(this.fd, this.buffer, 0, this.buffer.length, 0);
    return parseMeminfo(this.buffer.toString("latin1", 0, length));
  }

  close(): void {
    if (this.fd !== -1) closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * One past the highest page frame of the machine's memory zones, from the
 * text of /proc/zoneinfo (`start_pfn` + `spanned` of each zone).
 */
export function parseFrameLimit(zoneinfo: string): number {
  let limit = 0;
  let spanned = 0;
  for (const line of zoneinfo.split("\n")) {
    if (line.startsWith("Node ")) spanned = 0;
    const span = /^\s+spanned\s+(\d+)/.exec(line);
    if (span) spanned = Number(span[1]);
    const start = /^\s+start_pfn:\s+(\d+)/.exec(line);
    if (start) limit = Math.max(limit, Number(start[1]) + spanned);
  }
  return limit;
}
