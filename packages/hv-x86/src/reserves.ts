/*
 * The reserves: how many pages an allocation may take before the guest
 * needs them more than the balloon does, from /proc/meminfo (MemFree for
 * NOSLEEP, MemAvailable for CANSLEEP) and from each memory cgroup above this
 * process that has a limit.
 */
import { ALLOC, type AllocFlavour } from "@vmballoon/protocol";
import type { CgroupLevel, MeminfoReader } from "./meminfo.js";
import { mebibytes } from "./memory.js";

export class Reserves {
  constructor(
    private readonly meminfo: MeminfoReader,
    private readonly cgroup: { read(): CgroupLevel[]; close(): void } | undefined,
    /** MemFree NOSLEEP allocations leave, in pages. */
    readonly nosleep: number,
    /** MemAvailable CANSLEEP allocations leave, in pages. */
    readonly sleep: number,
    private readonly failed: (why: string) => void,
    private readonly limit: (kind: string, message: string) => void,
  ) {}

  /** How many pages this allocation may take (0 or less: none). */
  headroom(flavour: AllocFlavour): number {
    const memory = this.meminfo.read();
    const nosleep = flavour === ALLOC.NOSLEEP;
    let headroom = nosleep ? memory.freePages - this.nosleep : memory.availablePages - this.sleep;
    if (headroom <= 0) this.failed(nosleep ? "MemFree is at its reserve" : "MemAvailable is at its reserve");
    if (this.cgroup === undefined) return headroom;
    for (const level of this.cgroup.read()) {
      const reserve = nosleep ? Math.max(level.limitPages >>> 4, 8192) : Math.max(level.limitPages >>> 5, 4096);
      const free = level.limitPages - level.usagePages + (nosleep ? 0 : level.inactiveFilePages);
      const room = free - reserve;
      if (room < headroom) {
        headroom = room;
        if (room <= 0) {
          this.failed(`the memory cgroup ${level.path} is at its reserve`);
          this.limit(
            "cgroup",
            `the memory cgroup ${level.path} limits this process to ${mebibytes(level.limitPages)} (${level.limitFile}), ${mebibytes(level.usagePages)} in use: the balloon stops ${mebibytes(reserve)} below it; raise ${level.limitFile} (MemoryMax= in a systemd unit) to balloon more`,
          );
        }
      }
    }
    return headroom;
  }

  close(): void {
    this.cgroup?.close();
  }
}
