import { closeSync, openSync, readFileSync, readSync } from "node:fs";

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

/** One level of a memory cgroup, in pages of 4 KiB. */
export interface CgroupLevel {
  /** The cgroup's directory. */
  readonly path: string;
  /** Which file sets the limit: `memory.limit_in_bytes` (v1) or `memory.max` (v2). */
  readonly limitFile: string;
  /** The limit, in pages (Infinity when there is none). */
  readonly limitPages: number;
  /** Memory charged now. */
  readonly usagePages: number;
  /** Inactive file cache charged to it: what reclaim takes first without harm. */
  readonly inactiveFilePages: number;
}

/** Where this process's memory cgroup is: the hierarchy's version, its mount point and the cgroup's path there. */
export interface CgroupPlace {
  readonly version: 1 | 2;
  /** The cgroup's directory and its ancestors' up to the mount point, innermost first. */
  readonly directories: readonly string[];
}

/** v1's "no limit" is PAGE_COUNTER_MAX pages in bytes, about 2^63; anything above 2^52 bytes is none. */
const NO_LIMIT_BYTES = 2 ** 52;

/**
 * Finds this process's memory cgroup from the texts of /proc/self/cgroup and
 * /proc/self/mountinfo: a v1 `memory` hierarchy first (as on this project's
 * machine), else the v2 unified one. Undefined when neither is mounted.
 */
export function findMemoryCgroup(cgroupText: string, mountinfoText: string): CgroupPlace | undefined {
  const lines = cgroupText.split("\n").filter((line) => line !== "");
  const v1 = lines.map((line) => line.split(":")).find((fields) => fields.length >= 3 && fields[1]!.split(",").includes("memory"));
  const v2 = lines.map((line) => line.split(":")).find((fields) => fields.length >= 3 && fields[0] === "0" && fields[1] === "");
  for (const [version, fields] of [
    [1, v1],
    [2, v2],
  ] as const) {
    if (fields === undefined) continue;
    const path = fields.slice(2).join(":");
    for (const line of mountinfoText.split("\n")) {
      const [before, after] = line.split(" - ");
      if (before === undefined || after === undefined) continue;
      const [fsType, , superOptions = ""] = after.split(" ");
      const fieldsBefore = before.split(" ");
      const root = fieldsBefore[3]!;
      const mountPoint = fieldsBefore[4]!.replace(/\\040/g, " ");
      const matches = version === 1 ? fsType === "cgroup" && superOptions.split(",").includes("memory") : fsType === "cgroup2";
      if (!matches || !(path === root || path.startsWith(root === "/" ? "/" : `${root}/`))) continue;
      const relative = root === "/" ? path : path.slice(root.length);
      const parts = relative.split("/").filter((part) => part !== "");
      const directories: string[] = [];
      for (let depth = parts.length; depth >= 0; depth--) directories.push([mountPoint, ...parts.slice(0, depth)].join("/"));
      return { version, directories };
    }
  }
  return undefined;
}

function statField(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * A memory cgroup's limits, read through files kept open (like
 * {@link MeminfoReader}): each level from the process's cgroup up to the
 * hierarchy's root, since any of them may hold the limit that bites. Levels
 * whose files are missing (the v2 root has no `memory.max`) are left out.
 */
export class CgroupMemoryReader {
  private readonly levels: { path: string; limit: number; usage: number; stat: number }[] = [];
  private readonly buffer = Buffer.alloc(8192);

  constructor(private readonly place: CgroupPlace) {
    const [limit, usage, stat] =
      place.version === 1 ? ["memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat"] : ["memory.max", "memory.current", "memory.stat"];
    for (const path of place.directories) {
      const fds: number[] = [];
      try {
        for (const name of [limit, usage, stat]) fds.push(openSync(`${path}/${name}`, "r"));
        this.levels.push({ path, limit: fds[0]!, usage: fds[1]!, stat: fds[2]! });
      } catch {
        for (const fd of fds) closeSync(fd);
      }
    }
  }

  /** This process's memory cgroup, or undefined when none is mounted (or none has the memory files). */
  static forThisProcess(): CgroupMemoryReader | undefined {
    let place: CgroupPlace | undefined;
    try {
      place = findMemoryCgroup(readFileSync("/proc/self/cgroup", "utf8"), readFileSync("/proc/self/mountinfo", "utf8"));
    } catch {
      return undefined;
    }
    if (place === undefined) return undefined;
    const reader = new CgroupMemoryReader(place);
    if (reader.levels.length > 0) return reader;
    reader.close();
    return undefined;
  }

  private text(fd: number): string {
    const length = readSync(fd, this.buffer, 0, this.buffer.length, 0);
    return this.buffer.toString("latin1", 0, length);
  }

  /** Every level with a limit now, innermost first. */
  read(): CgroupLevel[] {
    const levels: CgroupLevel[] = [];
    const v1 = this.place.version === 1;
    for (const level of this.levels) {
      const limitText = this.text(level.limit).trim();
      const limitBytes = limitText === "max" ? Infinity : Number(limitText);
      if (!(limitBytes < NO_LIMIT_BYTES)) continue;
      const stat = this.text(level.stat);
      levels.push({
        path: level.path,
        limitFile: v1 ? "memory.limit_in_bytes" : "memory.max",
        limitPages: Math.floor(limitBytes / 4096),
        usagePages: Math.floor(Number(this.text(level.usage).trim()) / 4096),
        inactiveFilePages: Math.floor(statField(stat, v1 ? "total_inactive_file" : "inactive_file") / 4096),
      });
    }
    return levels;
  }

  close(): void {
    for (const level of this.levels.splice(0)) {
      closeSync(level.limit);
      closeSync(level.usage);
      closeSync(level.stat);
    }
  }
}
