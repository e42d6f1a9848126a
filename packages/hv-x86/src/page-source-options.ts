/*
 * The page source's options: what each means, their checks, and the choice
 * of memory (pinned, then secret, then mlock, each fall-back said once).
 */
import { readFileSync } from "node:fs";
import { checkFramesVisible } from "./frame-scan.js";
import { CgroupMemoryReader, MeminfoReader, type CgroupLevel } from "./meminfo.js";
import { PAGE_MEMORIES, unavailableWhy, type Memory, type MemoryContext, type PageMemory } from "./memory.js";
import { MlockMemory } from "./memory-mlock.js";
import { PinnedMemory, RING_SLOTS, openRing } from "./memory-pinned.js";
import { SecretMemory } from "./memory-secret.js";
import { SystemFiles, systemError, type PageSystem } from "./page-system.js";

export interface PageSourceOptions {
  /**
   * NOSLEEP allocations keep MemFree at or above this many pages: they fail
   * rather than make the kernel reclaim. Default: 1/16 of MemTotal. In a
   * memory cgroup with a limit, they also keep 1/16 of the limit (at least
   * 32 MiB) free below it.
   */
  readonly nosleepReserve?: number;
  /**
   * CANSLEEP allocations keep MemAvailable at or above this many pages: they
   * may make the kernel reclaim caches, but not push it into swap or the OOM
   * killer. Default: 1/64 of MemTotal. In a memory cgroup with a limit, they
   * keep 1/32 of the limit (at least 16 MiB) below it, counting the cgroup's
   * inactive file cache as free.
   */
  readonly sleepReserve?: number;
  /**
   * Pages per mapping: a power of two from 512 to 65536. Default 65536
   * (256 MiB) with pinned and mlock memory; with secret memory, which returns
   * to the kernel a whole chunk at a time, the smallest power of two from
   * 1024 (4 MiB) that keeps MemTotal within 8192 chunks.
   */
  readonly chunkPages?: number;
  /** Pages made present together when the source runs dry, and at most held back before a release. Default 256 (1 MiB). */
  readonly batchPages?: number;
  /**
   * `"pinned"`: anonymous memory pinned as io_uring fixed buffers, which the
   * kernel never migrates and which leaves its direct map alone (an error
   * where io_uring or its sparse buffer tables are missing or forbidden);
   * `"secret"`: memfd_secret(2) memory, never migrated, but taken out of the
   * kernel's direct map and returned a chunk at a time (an error where the
   * kernel lacks it); `"mlock"`: locked anonymous memory, which compaction
   * may migrate (the frame check repairs it). Default: the first of pinned,
   * secret and mlock that the kernel allows, each fall-back said once through
   * `onLimit`.
   */
  readonly memory?: PageMemory;
  /**
   * Told once for each limit that keeps memory from the balloon, in one line
   * that says what and how to raise it: RLIMIT_MEMLOCK without CAP_IPC_LOCK,
   * a memory cgroup's limit, io_uring or memfd_secret missing (a fall-back).
   */
  readonly onLimit?: (message: string) => void;
  /**
   * The most mappings the source may have (chunks and the splits inside
   * them). Default: an eighth of vm.max_map_count, at most 8192.
   */
  readonly mappingBudget?: number;
  /**
   * When `LinuxPageSource.checkFrames` reads pagemap: `"migrations"`
   * (the default) when the kernel's count of migrated pages
   * (`pgmigrate_success` in /proc/vmstat) has moved since the last read, and
   * at least every 64th check; `"always"`: every check. A page changes frame
   * only by migration, and every migration counts there.
   */
  readonly frameCheck?: "migrations" | "always";
  /** Replaces some of the system calls (tests make them fail). */
  readonly system?: Partial<PageSystem>;
  /** The memory cgroup to respect; `null` for none. Default: this process's (/proc/self/cgroup). */
  readonly cgroup?: { read(): CgroupLevel[]; close(): void } | null;
}

/** Throws RangeError for an option out of range; returns batchPages. */
export function checkOptions(options: PageSourceOptions): number {
  const batchPages = options.batchPages ?? 256;
  if (options.chunkPages !== undefined) {
    const chunkPages = options.chunkPages;
    if (!Number.isInteger(Math.log2(chunkPages)) || chunkPages < 512 || chunkPages > 65536) {
      throw new RangeError(`chunkPages must be a power of two from 512 to 65536, not ${chunkPages}`);
    }
  }
  if (!Number.isInteger(batchPages) || batchPages < 1 || batchPages > (options.chunkPages ?? 1024)) {
    throw new RangeError(`batchPages must be an integer from 1 to chunkPages (1024 by default), not ${batchPages}`);
  }
  for (const name of ["nosleepReserve", "sleepReserve", "mappingBudget"] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) throw new RangeError(`${name} must be a whole number, not ${value}`);
  }
  if (options.memory !== undefined && !PAGE_MEMORIES.includes(options.memory)) {
    throw new RangeError(`memory must be "pinned", "secret" or "mlock", not ${String(options.memory)}`);
  }
  return batchPages;
}

/** Why pinned memory cannot be had here, or undefined when it can (a ring is opened and closed to find out). */
function pinnedUnavailable(system: PageSystem): { error: Error; why: string } | undefined {
  const ring = openRing(system, RING_SLOTS);
  if (typeof ring === "number") {
    system.close(ring);
    return undefined;
  }
  const hints: Record<string, string> = {
    ENOSYS: "this kernel has no io_uring",
    EPERM: "kernel.io_uring_disabled or a seccomp profile (a container's) forbids it",
    EINVAL: "this kernel has no sparse buffer tables (Linux 5.19 or later)",
  };
  return { error: ring, why: hints[ring.code] === undefined ? ring.message : `${ring.message}: ${hints[ring.code]}` };
}

/** Whether memfd_secret works here (a file is made and closed to find out); else its error. */
function secretUnavailable(system: PageSystem): Error | undefined {
  const fd = system.memfdSecret(0);
  if (fd !== -1) {
    system.close(fd);
    return undefined;
  }
  return systemError(system, "memfd_secret");
}

/**
 * The memory asked for, or by default the first the kernel allows, each
 * fall-back said once through `onLimit`. Throws the kernel's refusal when the
 * memory asked for is not available.
 */
export function chooseMemory(system: PageSystem, options: PageSourceOptions): PageMemory {
  if (options.memory === "mlock") return "mlock";
  if (options.memory === undefined || options.memory === "pinned") {
    const pinned = pinnedUnavailable(system);
    if (pinned === undefined) return "pinned";
    if (options.memory === "pinned") throw pinned.error;
    const secret = secretUnavailable(system) === undefined;
    const instead = secret
      ? ": pages come from memfd_secret instead, which the kernel never moves either, but which it takes out of its direct map (splitting its large mappings for good) and frees only a whole chunk at a time"
      : "";
    options.onLimit?.(`io_uring cannot pin memory (${pinned.why})${instead}`);
    if (secret) return "secret";
  }
  const fd = system.memfdSecret(0);
  if (fd !== -1) {
    system.close(fd);
    return "secret";
  }
  const error = systemError(system, "memfd_secret");
  if (options.memory === "secret") throw error;
  const why = unavailableWhy(system, "memfd_secret", "this kernel has no secret memory (Linux 5.14 or later, not booted with secretmem.enable=0)");
  options.onLimit?.(
    `memfd_secret is not available (${why}): pages are locked with mlock instead, which compaction may move; the frame check after each cycle repairs moved pages with the host, and vm.compact_unevictable_allowed=0 keeps them from moving`,
  );
  return "mlock";
}

/** The memory of that kind. */
export function createMemory(kind: PageMemory, context: MemoryContext): Memory {
  if (kind === "pinned") return new PinnedMemory(context);
  if (kind === "secret") return new SecretMemory(context);
  return new MlockMemory(context);
}

/** What a page source is built of, opened and checked; `close()` lets go of it when the source cannot be built. */
export interface SourceParts {
  readonly files: SystemFiles;
  readonly meminfo: MeminfoReader;
  readonly cgroup: { read(): CgroupLevel[]; close(): void } | undefined;
  readonly memory: PageMemory;
  readonly chunkPages: (memory: Memory) => number;
  readonly mappingBudget: number;
  readonly batchPages: number;
  close(): void;
}

/**
 * Checks the options, opens /proc/self/pagemap, /proc/meminfo and the memory
 * cgroup's files, checks that frame numbers are visible to this process, and
 * chooses the memory; whatever was opened is closed again when one of these
 * throws.
 */
export function openParts(options: PageSourceOptions): SourceParts {
  const batchPages = checkOptions(options);
  const files = SystemFiles.open(options.system);
  let meminfo: MeminfoReader | undefined;
  let cgroup: { read(): CgroupLevel[]; close(): void } | undefined;
  const close = () => {
    cgroup?.close();
    meminfo?.close();
    files.close();
  };
  try {
    meminfo = new MeminfoReader();
    cgroup = options.cgroup === undefined ? CgroupMemoryReader.forThisProcess() : (options.cgroup ?? undefined);
    checkFramesVisible(files.system);
    const memory = chooseMemory(files.system, options);
    const totalPages = meminfo.read().totalPages;
    const maxMapCount = Number(readFileSync("/proc/sys/vm/max_map_count", "utf8")) || 65530;
    const mappingBudget = options.mappingBudget ?? Math.min(8192, Math.floor(maxMapCount / 8));
    const chunkPages = (kind: Memory) => options.chunkPages ?? kind.defaultChunkPages(totalPages);
    return { files, meminfo, cgroup, memory, chunkPages, mappingBudget, batchPages, close };
  } catch (error) {
    close();
    throw error;
  }
}
