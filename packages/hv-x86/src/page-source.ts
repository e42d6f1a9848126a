/*
 * Real guest pages for the engine: the seed's alloc_page / __free_page /
 * page_to_pfn / si_meminfo, from user mode.
 *
 * The promise: the frame number the host is told for a page is the frame the
 * page sits on, for as long as the page is ballooned. `mlock` does not keep
 * it (compaction migrates locked pages: vm.compact_unevictable_allowed=1 by
 * default), so the memory comes from memfd_secret(2) where the kernel has it:
 * secret-memory pages are never migrated. Where it has not, pages are locked
 * with `mlock`, the caller is told once (`onLimit`), and `checkFrames`, run
 * after every cycle, finds the pages the kernel moved so that the engine can
 * repair them with the host.
 *
 * Memory comes in chunks, one mapping each: a memfd_secret file mapped shared
 * (its pages come and go only with the whole chunk: secret memory cannot be
 * punched or advised away, so a chunk is small), or an anonymous private
 * mapping reserved without backing (MAP_NORESERVE), kept out of huge pages,
 * core dumps and forked children. A page is handed out present with its frame
 * number read from /proc/self/pagemap. Pages are locked in batches when the
 * source runs dry; freed pages are returned to the kernel sorted into runs,
 * one `munlock` + `madvise(MADV_DONTNEED)` a run, at most `batchPages` frees
 * later and always by `releaseIdle` (the runner calls it after every cycle). A
 * chunk with no page left in use is unmapped. Every split of a mapping (where
 * locked and unlocked pages meet) is counted, and a release that would take
 * the mappings past `mappingBudget` waits, locked and counted, until its
 * neighbours are free too: any order of frees works, far below
 * vm.max_map_count.
 *
 * For today's driver (`ModernPageSource`), a 4 KB page's memory can be had
 * as words ({@link LinuxPageSource.pageWords}: the batch page, which the
 * driver writes and the host reads and writes), and 2 MB pages are always
 * refused (docs/DESIGN.md, "2 MB pages"): secret memory has no huge pages,
 * and a transparent huge page of locked memory may be split or moved by the
 * kernel, its 512 frames with it. The driver then goes on in 4 KB pages.
 *
 * Apart from the batch page, once a page is handed out, this code never reads or writes its contents:
 * it is faulted in (`mlock`, or a `read` of /dev/zero into secret memory: the
 * kernel zeroes it), pagemap gives its frame, and the next thing that happens
 * to it is its release.
 *
 * Every system call goes through a {@link PageSystem}, which tests replace in
 * part to make the kernel refuse.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { ALLOC, MAX_PFN, PAGE_SIZE, type AllocFlavour } from "@vmballoon/protocol";
import { NO_PAGE, type ModernPageSource } from "@vmballoon/core";
import { HvError, SystemCallError, errnoName } from "./errors.js";
import { CgroupMemoryReader, MeminfoReader, parseFrameLimit, type CgroupLevel } from "./meminfo.js";
import {
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  SYS_MEMFD_SECRET,
  native,
} from "./native.js";

/**
 * The system calls of the page source: libc's, and reads of
 * /proc/self/pagemap. Each returns what libc does (-1 on failure, the cause
 * in {@link errno}). Tests pass some of them in {@link PageSourceOptions.system}
 * to make the kernel refuse.
 */
export interface PageSystem {
  mmap(address: number, length: number, protection: number, flags: number, fd: number, offset: number): number;
  munmap(address: number, length: number): number;
  mlock(address: number, length: number): number;
  munlock(address: number, length: number): number;
  madvise(address: number, length: number, advice: number): number;
  /** `memfd_secret(flags)`: a file descriptor, or -1. */
  memfdSecret(flags: number): number;
  ftruncate(fd: number, length: number): number;
  close(fd: number): number;
  /** Faults [address, address + length) in, zeroed, by reading /dev/zero into it: bytes read, or -1. */
  fill(address: number, length: number): number;
  /** Reads /proc/self/pagemap at `position` into `buffer`: bytes read, or -1. */
  readPagemap(buffer: Uint8Array, length: number, position: number): number;
  /** The kernel's count of pages migrated so far (`pgmigrate_success` in /proc/vmstat), or -1 when unknown. */
  migratedPages(): number;
  /** The errno of the call that failed last. */
  errno(): number;
  /** RLIMIT_MEMLOCK's soft limit in bytes (Infinity: unlimited), and whether this process has CAP_IPC_LOCK (which lifts it). */
  memlock(): { limitBytes: number; capIpcLock: boolean };
}

/** How the source keeps a page on its frame: see {@link PageSourceOptions.memory}. */
export type PageMemory = "secret" | "mlock";

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
   * (256 MiB) with mlock; with secret memory, which returns to the kernel a
   * whole chunk at a time, the smallest power of two from 1024 (4 MiB) that
   * keeps MemTotal within 8192 chunks.
   */
  readonly chunkPages?: number;
  /** Pages locked together when the source runs dry, and at most held back before a release. Default 256 (1 MiB). */
  readonly batchPages?: number;
  /**
   * `"secret"`: memfd_secret(2) memory, which the kernel never migrates (an
   * error where the kernel lacks it); `"mlock"`: locked anonymous memory, which
   * compaction may migrate (the frame check repairs it). Default: secret
   * memory where the kernel has it, else mlock, said once through `onLimit`.
   */
  readonly memory?: PageMemory;
  /**
   * Told once for each limit that keeps memory from the balloon, in one line
   * that says what and how to raise it: RLIMIT_MEMLOCK without CAP_IPC_LOCK,
   * a memory cgroup's limit, memfd_secret missing (the fall back to mlock).
   */
  readonly onLimit?: (message: string) => void;
  /**
   * The most mappings the source may have (chunks and the splits inside
   * them). Default: an eighth of vm.max_map_count, at most 8192.
   */
  readonly mappingBudget?: number;
  /**
   * When {@link LinuxPageSource.checkFrames} reads pagemap: `"migrations"`
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

/** What {@link LinuxPageSource.checkFrames} calls for a page whose frame is not the one {@link LinuxPageSource.frameNumber} gave. */
export type MovedPage = (page: number, told: number, now: number) => boolean;

// The state of a slot.
/** Not present (never used, or returned to the kernel). */
const EMPTY = 0;
/** Handed out, or ready to be. */
const IN_USE = 1;
/** Free, but still locked (secret memory, or a release waiting for its neighbours or after a failure). */
const IDLE = 2;
/** Secret memory whose frame cannot be offered (above 2^32 - 1): held until its chunk goes, never reused. */
const SPOILT = 3;

interface Chunk {
  readonly index: number;
  readonly address: number;
  /** Frame number of each slot, valid while the slot is in use. */
  readonly frames: Uint32Array;
  /** {@link EMPTY}, {@link IN_USE}, {@link IDLE} or {@link SPOILT}, a slot. */
  readonly state: Uint8Array;
  /** Free slots used before (EMPTY or IDLE): a stack, reused first. */
  readonly holes: Uint32Array;
  holeCount: number;
  /** Slots from here on were never used. */
  bump: number;
  /** Slots in use: handed out or ready. */
  inUse: number;
  /** Where locked and unlocked slots meet: each splits the mapping (mlock only). */
  splits: number;
}

const PAGEMAP_PRESENT = 0x8000_0000; // bit 63, in the high word
const PAGEMAP_PFN_HIGH = 0x7f_ffff; // bits 32-54: the frame number is bits 0-54
/** Pagemap entries read at once by the frame check: 512 KiB. */
const CHECK_PIECE = 65536;

/** The frame number in a pagemap entry, or -1 when the page is not present. */
function entryFrame(low: number, high: number): number {
  if ((high & PAGEMAP_PRESENT) === 0) return -1;
  return (high & PAGEMAP_PFN_HIGH) * 2 ** 32 + low;
}

function mebibytes(pages: number): string {
  return `${Math.round((pages * PAGE_SIZE) / 2 ** 20)} MiB`;
}

/** The real system calls. */
function realSystem(pagemap: number, zero: number, vmstat: number | undefined): PageSystem {
  const { koffi, libc } = native();
  const text = Buffer.alloc(16384);
  return {
    migratedPages() {
      if (vmstat === undefined) return -1;
      try {
        const length = readSync(vmstat, text, 0, text.length, 0);
        const at = text.indexOf("\npgmigrate_success ");
        if (at === -1 || at >= length) return -1;
        return Number.parseInt(text.toString("latin1", at + 20, Math.min(length, at + 44)), 10);
      } catch {
        return -1;
      }
    },
    mmap: (address, length, protection, flags, fd, offset) => libc.mmap(address, length, protection, flags, fd, offset),
    munmap: (address, length) => libc.munmap(address, length),
    mlock: (address, length) => libc.mlock(address, length),
    munlock: (address, length) => libc.munlock(address, length),
    madvise: (address, length, advice) => libc.madvise(address, length, advice),
    memfdSecret: (flags) => libc.syscall1(SYS_MEMFD_SECRET, flags),
    ftruncate: (fd, length) => libc.ftruncate(fd, length),
    close: (fd) => libc.close(fd),
    fill: (address, length) => libc.read(zero, address, length),
    readPagemap(buffer, length, position) {
      try {
        return readSync(pagemap, buffer, 0, length, position);
      } catch {
        return -1;
      }
    },
    errno: () => koffi.errno(),
    memlock: () => ({ limitBytes: memlockLimit(), capIpcLock: hasCapability(CAP_IPC_LOCK) }),
  };
}

/** The real calls, each replaced by the given object's method of the same name where it has one (a class instance too). */
function withOverrides(real: PageSystem, given: Partial<PageSystem> | undefined): PageSystem {
  if (given === undefined) return real;
  const system = { ...real } as Record<string, unknown>;
  for (const name of Object.keys(real) as (keyof PageSystem)[]) {
    const method = given[name];
    if (typeof method === "function") system[name] = method.bind(given);
  }
  return system as unknown as PageSystem;
}

/** Whether this process has a capability now (CapEff of /proc/self/status). */
function hasCapability(bit: number): boolean {
  try {
    const match = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return match !== null && ((BigInt(`0x${match[1]}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}
const CAP_IPC_LOCK = 14;

/** RLIMIT_MEMLOCK's soft limit in bytes (Infinity when unlimited), from /proc/self/limits. */
function memlockLimit(): number {
  try {
    const match = /^Max locked memory\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return match === null || match[1] === "unlimited" ? Infinity : Number(match[1]);
  } catch {
    return Infinity;
  }
}

/**
 * The real Linux {@link PageSource}: pages that stay on their frames (secret
 * memory) or locked pages (mlock), and their frame numbers. Build it with
 * {@link LinuxPageSource.open}; needs CAP_SYS_ADMIN for frame numbers (else
 * HvError E_FRAMES_HIDDEN), and CAP_IPC_LOCK or enough RLIMIT_MEMLOCK.
 */
export class LinuxPageSource implements ModernPageSource {
  /** Pages the engine holds now. */
  private handedOut = 0;
  /** Pages locked (present) now: in use, or idle. */
  private locked = 0;
  private closed = false;
  private readonly chunks: (Chunk | undefined)[] = [];
  private mapped = 0;
  /** Mappings now: one a chunk, and one more for each split. */
  private mappingCount = 0;
  /** Locked pages not handed out yet, as handles; the next one is on top. */
  private readonly ready: Uint32Array;
  private readyCount = 0;
  /** Slots being gathered by a refill. */
  private readonly scratch: Uint32Array;
  /** Pagemap entries: of one run, or of a piece of the frame check. */
  private readonly entries: Buffer;
  private readonly words: Uint32Array;
  /** Handles freed and not yet returned to the kernel (mlock). */
  private readonly pending: Uint32Array;
  private pendingCount = 0;
  /** Handles whose release waits: for room among the mappings, or after a failed call. */
  private waiting: number[] = [];
  private readonly shift: number;
  private readonly mask: number;
  private readonly chunkBytes: number;
  private readonly batchPages: number;
  private readonly nosleepReserve: number;
  private readonly sleepReserve: number;
  private readonly told = new Set<string>();
  /** Frames above 2^32 - 1, which protocol 2 cannot carry: never offered. */
  skippedHighFrames = 0;
  /** Frame checks that read pagemap (the others found no migration in the whole kernel since the last read). */
  frameScans = 0;
  /** The kernel's migration count at the start of the last scan. */
  private migratedAtScan = -1;
  private checksSinceScan = 0;
  /** Why the last allocation that failed did, or the last release that had to wait, in a few words. */
  lastFailure: string | undefined;

  private constructor(
    private readonly system: PageSystem,
    private readonly files: { pagemap: number; zero: number; vmstat: number | undefined },
    private readonly meminfo: MeminfoReader,
    private readonly cgroup: { read(): CgroupLevel[]; close(): void } | undefined,
    /** The memory the pages come from. */
    readonly memory: PageMemory,
    readonly chunkPages: number,
    /** The most mappings this source makes. */
    readonly mappingBudget: number,
    private readonly options: PageSourceOptions,
  ) {
    this.shift = Math.log2(chunkPages);
    this.mask = chunkPages - 1;
    this.chunkBytes = chunkPages * PAGE_SIZE;
    this.batchPages = options.batchPages ?? 256;
    const total = meminfo.read().totalPages;
    this.nosleepReserve = options.nosleepReserve ?? Math.floor(total / 16);
    this.sleepReserve = options.sleepReserve ?? Math.floor(total / 64);
    this.ready = new Uint32Array(this.batchPages);
    this.scratch = new Uint32Array(this.batchPages);
    this.pending = new Uint32Array(this.batchPages);
    this.entries = Buffer.alloc(Math.max(this.batchPages, CHECK_PIECE) * 8);
    this.words = new Uint32Array(this.entries.buffer, this.entries.byteOffset, this.entries.length / 4);
  }

  /**
   * Opens /proc/self/pagemap, /proc/meminfo and the memory cgroup's files,
   * checks that frame numbers are visible to this process, and chooses the
   * memory. Throws HvError E_NATIVE_UNAVAILABLE off Linux x64,
   * E_FRAMES_HIDDEN without CAP_SYS_ADMIN, a SystemCallError when `memory:
   * "secret"` is asked for and the kernel has none, RangeError on bad options.
   */
  static open(options: PageSourceOptions = {}): LinuxPageSource {
    native();
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
    if (options.memory !== undefined && options.memory !== "secret" && options.memory !== "mlock") {
      throw new RangeError(`memory must be "secret" or "mlock", not ${String(options.memory)}`);
    }

    const pagemap = openSync("/proc/self/pagemap", "r");
    let zero: number | undefined;
    let vmstat: number | undefined;
    let meminfo: MeminfoReader | undefined;
    let cgroup: { read(): CgroupLevel[]; close(): void } | undefined;
    try {
      zero = openSync("/dev/zero", "r");
      try {
        vmstat = openSync("/proc/vmstat", "r");
      } catch {
        vmstat = undefined; // then every check reads pagemap
      }
      const system = withOverrides(realSystem(pagemap, zero, vmstat), options.system);
      meminfo = new MeminfoReader();
      cgroup = options.cgroup === undefined ? CgroupMemoryReader.forThisProcess() : (options.cgroup ?? undefined);
      checkFramesVisible(system);
      const memory = chooseMemory(system, options);
      const totalPages = meminfo.read().totalPages;
      let chunkPages = options.chunkPages ?? 65536;
      if (memory === "secret" && options.chunkPages === undefined) {
        chunkPages = 1024;
        while (chunkPages < 65536 && totalPages / chunkPages > 8192) chunkPages *= 2;
      }
      const maxMapCount = Number(readFileSync("/proc/sys/vm/max_map_count", "utf8")) || 65530;
      const budget = options.mappingBudget ?? Math.min(8192, Math.floor(maxMapCount / 8));
      return new LinuxPageSource(system, { pagemap, zero, vmstat }, meminfo, cgroup, memory, chunkPages, budget, options);
    } catch (error) {
      cgroup?.close();
      meminfo?.close();
      if (zero !== undefined) closeSync(zero);
      if (vmstat !== undefined) closeSync(vmstat);
      closeSync(pagemap);
      throw error;
    }
  }

  // -------------------------------------------------------------------------
  // The PageSource port
  // -------------------------------------------------------------------------

  allocate(flavour: AllocFlavour): number {
    if (this.readyCount === 0 && !this.refill(flavour)) return NO_PAGE;
    this.handedOut++;
    return this.ready[--this.readyCount]!;
  }

  free(page: number): void {
    if (this.closed) return;
    if (this.viewed.size !== 0) this.viewed.delete(page >>> 0);
    const chunk = this.chunks[page >>> this.shift]!;
    const slot = page & this.mask;
    this.handedOut--;
    this.setIdle(chunk, slot);
    if (this.memory === "mlock") {
      this.pending[this.pendingCount++] = page >>> 0;
      if (this.pendingCount === this.pending.length) this.flushPending(false);
    } else if (chunk.inUse === 0) this.unmap(chunk);
  }

  frameNumber(page: number): number {
    return this.chunks[page >>> this.shift]!.frames[page & this.mask]!;
  }

  totalPages(): number {
    return this.meminfo.read().totalPages;
  }

  /**
   * The frame check: reads the frame of every page handed out again from
   * /proc/self/pagemap (8 bytes a page, 512 KiB a read) and calls `moved(page,
   * told, now)` for each page whose frame is no longer the one
   * {@link frameNumber} gave (`now` is -1 when the page is not present). When
   * `moved` returns true, `now` becomes the page's frame number. A piece of
   * pagemap that cannot be read is skipped (its pages are not checked).
   * Returns the number of pages checked.
   *
   * A page changes frame only when the kernel migrates it, and the kernel
   * counts every migrated page (`pgmigrate_success`): when that count has not
   * moved since the last scan began, no page anywhere changed frame, and the
   * check is that one read of /proc/vmstat (see
   * {@link PageSourceOptions.frameCheck}); {@link frameScans} counts the
   * scans.
   */
  checkFrames(moved: MovedPage): number {
    const migrated = this.system.migratedPages();
    if (this.options.frameCheck !== "always" && migrated !== -1 && migrated === this.migratedAtScan && ++this.checksSinceScan < 64) {
      return this.handedOut;
    }
    this.migratedAtScan = migrated;
    this.checksSinceScan = 0;
    this.frameScans++;
    let checked = 0;
    // The ready pages (not handed out) are all in the chunk of the last refill.
    const readyChunk = this.readyCount === 0 ? -1 : this.ready[0]! >>> this.shift;
    const words = this.words;
    for (const chunk of this.chunks) {
      if (chunk === undefined || chunk.inUse === 0) continue;
      const base = chunk.index * this.chunkPages;
      const state = chunk.state;
      const frames = chunk.frames;
      const ready = chunk.index === readyChunk ? new Set(this.ready.subarray(0, this.readyCount)) : undefined;
      for (let start = 0; start < chunk.bump; start += CHECK_PIECE) {
        const end = Math.min(chunk.bump, start + CHECK_PIECE);
        const length = (end - start) * 8;
        if (this.system.readPagemap(this.entries, length, (chunk.address / PAGE_SIZE + start) * 8) !== length) {
          this.lastFailure = "reading /proc/self/pagemap failed: frames not checked";
          this.migratedAtScan = -1; // the next check reads again
          continue;
        }
        for (let slot = start; slot < end; slot++) {
          if (state[slot] !== IN_USE) continue;
          if (ready !== undefined && ready.has(base + slot)) continue;
          checked++;
          const at = (slot - start) << 1;
          const high = words[at + 1]!;
          const told = frames[slot]!;
          if ((high & PAGEMAP_PRESENT) !== 0 && (high & PAGEMAP_PFN_HIGH) === 0 && words[at] === told) continue;
          const now = entryFrame(words[at]!, high);
          if (now === told) continue;
          if (!moved(base + slot, told, now))
            this.migratedAtScan = -1; // not repaired: the next check tries again
          else if (now > 0 && now <= MAX_PFN) frames[slot] = now;
        }
      }
    }
    return checked;
  }

  /** Pages whose memory was asked for ({@link pageWords}), while held. */
  private readonly viewed = new Map<number, Uint32Array>();

  /** 2 MB pages refused so far ({@link allocateHuge}). */
  hugeRefused = 0;

  /**
   * Never a 2 MB page: secret memory has no huge pages, and locked anonymous
   * memory has none whose 512 frames the kernel promises to keep (a
   * transparent huge page can be split or migrated). Today's driver then
   * balloons 4 KB pages, as with a host without 2 MB pages.
   */
  allocateHuge(): number {
    this.hugeRefused++;
    return NO_PAGE;
  }

  /** Never called: {@link allocateHuge} hands out no 2 MB page. */
  freeHuge(page: number): void {
    throw new RangeError(`no 2 MB page was handed out, so ${page} cannot be freed as one`);
  }

  /** Never called: {@link allocateHuge} hands out no 2 MB page. */
  splitHugePage(page: number): ArrayLike<number> {
    throw new RangeError(`no 2 MB page was handed out, so ${page} cannot be split`);
  }

  /**
   * The memory of a page handed out, as 1024 32-bit words, zeroed now (the
   * batch page's `__GFP_ZERO`). The view is valid while the page is held:
   * it must not be used after the page is freed or the source closed.
   */
  pageWords(page: number): Uint32Array {
    const chunk = this.chunks[page >>> this.shift];
    const slot = page & this.mask;
    if (this.closed) throw new HvError("E_CLOSED", "the page source is closed");
    if (chunk === undefined || chunk.state[slot] !== IN_USE) throw new RangeError(`page ${page >>> 0} is not held: its memory cannot be had`);
    const address = chunk.address + slot * PAGE_SIZE;
    const words = new Uint32Array(native().koffi.view(BigInt(address), PAGE_SIZE));
    words.fill(0);
    this.viewed.set(page >>> 0, words);
    return words;
  }

  /**
   * The words {@link pageWords} gave for the page now on frame `pfn` (the
   * batch page: the host reads and writes it there), or undefined. Follows
   * the page when the frame check finds it moved; forgets it when it is freed.
   */
  memoryAt(pfn: number): Uint32Array | undefined {
    for (const [page, words] of this.viewed) if (this.frameNumber(page) === pfn) return words;
    return undefined;
  }

  // -------------------------------------------------------------------------
  // For the runner
  // -------------------------------------------------------------------------

  /** Pages the engine holds. */
  get heldPages(): number {
    return this.handedOut;
  }

  /** Pages locked now: those the engine holds, and those not yet returned to the kernel. */
  get mlockedPages(): number {
    return this.locked;
  }

  /** Chunks mapped now. */
  get mappings(): number {
    return this.mapped;
  }

  /** Mappings of the kernel's this source makes now: its chunks, and their splits. */
  get kernelMappings(): number {
    return this.mappingCount;
  }

  /**
   * Returns to the kernel every page locked here that the engine does not
   * hold and that can go: the rest of the last batch, the pages freed since,
   * and releases that waited (secret memory goes a whole chunk at a time).
   * The runner calls it after every cycle.
   */
  releaseIdle(): void {
    if (this.closed) return;
    for (let i = 0; i < this.readyCount; i++) this.free(this.ready[i]!);
    this.handedOut += this.readyCount; // those were not handed out
    this.readyCount = 0;
    if (this.memory === "mlock") this.flushPending(true);
  }

  /**
   * The page's frame read again from /proc/self/pagemap now, or -1 when the
   * page is not present. {@link frameNumber} gives the frame the host was told.
   */
  readFrame(page: number): number {
    const chunk = this.chunks[page >>> this.shift]!;
    const address = chunk.address + (page & this.mask) * PAGE_SIZE;
    if (this.system.readPagemap(this.entries, 8, (address / PAGE_SIZE) * 8) !== 8) return -1;
    return entryFrame(this.words[0]!, this.words[1]!);
  }

  /**
   * The frames this machine can have: one past the highest frame of its
   * memory zones (/proc/zoneinfo), at most 2^32 (protocol 2's frames).
   */
  frameLimit(): number {
    return Math.min(parseFrameLimit(readFileSync("/proc/zoneinfo", "utf8")), MAX_PFN + 1);
  }

  /**
   * Unmaps everything, pages the engine still holds included (after the
   * engine's `exit()`, it holds none), and closes the files. Allocations
   * after this throw HvError E_CLOSED; frees are ignored.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const chunk of this.chunks) {
      if (chunk !== undefined) this.system.munmap(chunk.address, this.chunkBytes);
    }
    this.chunks.length = 0;
    this.viewed.clear();
    this.mapped = 0;
    this.mappingCount = 0;
    this.locked = 0;
    this.handedOut = 0;
    this.readyCount = 0;
    this.pendingCount = 0;
    this.waiting = [];
    this.meminfo.close();
    this.cgroup?.close();
    closeSync(this.files.zero);
    if (this.files.vmstat !== undefined) closeSync(this.files.vmstat);
    closeSync(this.files.pagemap);
  }

  // -------------------------------------------------------------------------
  // Inside
  // -------------------------------------------------------------------------

  /** Tells the caller about a limit, once for each kind. */
  private limit(kind: string, message: string): void {
    if (this.told.has(kind)) return;
    this.told.add(kind);
    this.options.onLimit?.(message);
  }

  private fail(syscall: string): SystemCallError {
    const errno = this.system.errno();
    return new SystemCallError(syscall, errno, native().libc.strerror(errno));
  }

  /** A lock or map refused: says so, and when RLIMIT_MEMLOCK is why, tells how to raise it. */
  private lockRefused(syscall: string): void {
    const error = this.fail(syscall);
    this.lastFailure = error.message;
    const memlock = this.system.memlock();
    if (!["ENOMEM", "EAGAIN", "EPERM"].includes(error.code) || memlock.capIpcLock) return;
    const limit = memlock.limitBytes;
    const what = limit === Infinity ? "RLIMIT_MEMLOCK" : `RLIMIT_MEMLOCK (${mebibytes(limit / PAGE_SIZE)})`;
    const counted = this.memory === "secret" ? ", which counts secret memory by the size of its mappings" : "";
    this.limit(
      "memlock",
      `cannot lock more memory (${error.code} from ${syscall}): ${what} is reached${counted} and this process lacks CAP_IPC_LOCK; raise it (ulimit -l unlimited, LimitMEMLOCK=infinity in a systemd unit) or run as root with CAP_IPC_LOCK`,
    );
  }

  /** How many pages this allocation may take: the reserves of /proc/meminfo and of the memory cgroup. */
  private headroom(flavour: AllocFlavour): number {
    const memory = this.meminfo.read();
    const nosleep = flavour === ALLOC.NOSLEEP;
    let headroom = nosleep ? memory.freePages - this.nosleepReserve : memory.availablePages - this.sleepReserve;
    if (headroom <= 0) this.lastFailure = nosleep ? "MemFree is at its reserve" : "MemAvailable is at its reserve";
    if (this.cgroup === undefined) return headroom;
    for (const level of this.cgroup.read()) {
      const reserve = nosleep ? Math.max(level.limitPages >>> 4, 8192) : Math.max(level.limitPages >>> 5, 4096);
      const free = level.limitPages - level.usagePages + (nosleep ? 0 : level.inactiveFilePages);
      const room = free - reserve;
      if (room < headroom) {
        headroom = room;
        if (room <= 0) {
          this.lastFailure = `the memory cgroup ${level.path} is at its reserve`;
          this.limit(
            "cgroup",
            `the memory cgroup ${level.path} limits this process to ${mebibytes(level.limitPages)} (${level.limitFile}), ${mebibytes(level.usagePages)} in use: the balloon stops ${mebibytes(reserve)} below it; raise ${level.limitFile} (MemoryMax= in a systemd unit) to balloon more`,
          );
        }
      }
    }
    return headroom;
  }

  /** Locks a batch of pages into `ready`; false when none could be had. */
  private refill(flavour: AllocFlavour): boolean {
    if (this.closed) throw new HvError("E_CLOSED", "the page source is closed");
    const want = Math.min(this.batchPages, this.headroom(flavour));
    if (want <= 0) return false;

    const chunk = this.chunkWithRoom() ?? this.mapChunk();
    if (chunk === undefined) return false;

    const slots = this.scratch;
    let count = 0;
    while (count < want && chunk.holeCount > 0) slots[count++] = chunk.holes[--chunk.holeCount]!;
    while (count < want && chunk.bump < this.chunkPages) slots[count++] = chunk.bump++;
    const taken = slots.subarray(0, count);
    taken.sort();

    // Lock each run of neighbouring slots, then read its frames; `good` collects the offerable slots in place.
    let good = 0;
    forEachRun(taken, (start, end) => {
      if (!this.lockRun(chunk, start, end)) return;
      const address = chunk.address + start * PAGE_SIZE;
      const length = (end - start) * 8;
      const read = this.system.readPagemap(this.entries, length, (address / PAGE_SIZE) * 8);
      for (let slot = start; slot < end; slot++) {
        const at = (slot - start) * 2;
        const frame = read === length ? entryFrame(this.words[at]!, this.words[at + 1]!) : -1;
        if (frame > 0 && frame <= MAX_PFN) {
          chunk.frames[slot] = frame;
          slots[good++] = slot;
          continue;
        }
        if (frame > MAX_PFN) this.skippedHighFrames++;
        this.lastFailure =
          frame > MAX_PFN ? "frame above 2^32 - 1" : read === length ? "page not present after it was locked" : "reading /proc/self/pagemap failed";
        this.setIdle(chunk, slot);
        if (this.memory === "secret" && frame > MAX_PFN) {
          chunk.holeCount--; // never offered again: it goes with its chunk
          chunk.state[slot] = SPOILT;
        } else if (this.memory === "mlock") this.release(chunk, slot, slot + 1);
      }
    });
    if (good === 0) {
      if (chunk.inUse === 0) this.unmap(chunk);
      return false;
    }
    // Handed out in ascending order: the engine gives pages back newest first, so runs form.
    const base = chunk.index * this.chunkPages;
    for (let i = 0; i < good; i++) this.ready[i] = base + slots[good - 1 - i]!;
    this.readyCount = good;
    return true;
  }

  /**
   * Makes slots [start, end) of a chunk present and locked, and in use. False
   * when the kernel refused: then none is in use, and whatever was locked
   * stays counted (released, or waiting to be).
   */
  private lockRun(chunk: Chunk, start: number, end: number): boolean {
    const address = chunk.address + start * PAGE_SIZE;
    const state = chunk.state;
    if (this.memory === "secret") {
      // Secret memory: a slot used before is still there; a new one is faulted in.
      let first = start;
      while (first < end && state[first] !== EMPTY) first++;
      let filled = end;
      if (first < end) {
        const length = (end - first) * PAGE_SIZE;
        const read = this.system.fill(chunk.address + first * PAGE_SIZE, length);
        if (read !== length) {
          filled = first + Math.max(0, Math.floor(read / PAGE_SIZE));
          this.lastFailure = read < 0 ? this.fail("read").message : "the kernel could not fault in secret memory";
        }
      }
      for (let slot = start; slot < end; slot++) {
        if (state[slot] === EMPTY && slot >= filled) continue;
        if (state[slot] === EMPTY) this.locked++;
        state[slot] = IN_USE;
        chunk.inUse++;
      }
      if (filled === end) return true;
      // What was faulted in stays with the chunk, free; the rest goes back on the hole stack as it was.
      for (let slot = start; slot < end; slot++) {
        if (state[slot] === IN_USE) this.setIdle(chunk, slot);
        else chunk.holes[chunk.holeCount++] = slot;
      }
      return false;
    }

    const before = this.splitsAround(chunk, start, end);
    let newlyLocked = 0;
    for (let slot = start; slot < end; slot++) {
      if (state[slot] === EMPTY) newlyLocked++;
      state[slot] = IN_USE;
    }
    chunk.inUse += end - start;
    this.locked += newlyLocked;
    this.addSplits(chunk, this.splitsAround(chunk, start, end) - before);
    if (this.system.mlock(address, (end - start) * PAGE_SIZE) === 0) return true;
    this.lockRefused("mlock");
    // mlock may have locked part of the range before it failed: all of it goes back.
    for (let slot = start; slot < end; slot++) this.setIdle(chunk, slot);
    this.release(chunk, start, end);
    return false;
  }

  /** A slot no longer in use: idle, locked still, on the hole stack. */
  private setIdle(chunk: Chunk, slot: number): void {
    chunk.state[slot] = IDLE;
    chunk.holes[chunk.holeCount++] = slot;
    chunk.inUse--;
  }

  /** Where locked and unlocked slots meet between slots from - 1 and to (inclusive), within the chunk. */
  private splitsAround(chunk: Chunk, from: number, to: number): number {
    const state = chunk.state;
    let splits = 0;
    const last = Math.min(to, this.chunkPages - 1);
    for (let i = Math.max(from, 1); i <= last; i++) {
      if ((state[i - 1] === EMPTY) !== (state[i] === EMPTY)) splits++;
    }
    return splits;
  }

  private addSplits(chunk: Chunk, delta: number): void {
    chunk.splits += delta;
    this.mappingCount += delta;
  }

  /**
   * Returns idle slots [start, end) of a chunk to the kernel: unlocked and
   * emptied. When that would split the mapping past the budget, or a call
   * fails, they wait (locked, counted) for a later try. True when released.
   */
  private release(chunk: Chunk, start: number, end: number): boolean {
    const state = chunk.state;
    const before = this.splitsAround(chunk, start, end);
    state.fill(EMPTY, start, end);
    const delta = this.splitsAround(chunk, start, end) - before;
    const wait = (why: string) => {
      state.fill(IDLE, start, end);
      this.lastFailure = why;
      for (let slot = start; slot < end; slot++) this.waiting.push(chunk.index * this.chunkPages + slot);
      return false;
    };
    if (delta > 0 && this.mappingCount + delta > this.mappingBudget) return wait("the release waits: the mappings are at their budget");
    const address = chunk.address + start * PAGE_SIZE;
    const length = (end - start) * PAGE_SIZE;
    if (this.system.munlock(address, length) !== 0) return wait(this.fail("munlock").message);
    // Unlocked now; a failed MADV_DONTNEED leaves them resident but ordinary memory the kernel may reclaim.
    if (this.system.madvise(address, length, MADV_DONTNEED) !== 0) this.lastFailure = this.fail("madvise").message;
    this.addSplits(chunk, delta);
    this.locked -= end - start;
    return true;
  }

  /**
   * Returns the pages freed since the last flush to the kernel, sorted into
   * runs; with `all`, also the releases that waited. Chunks left with nothing
   * in use are unmapped.
   */
  private flushPending(all: boolean): void {
    let handles: Uint32Array = this.pending.subarray(0, this.pendingCount);
    if (all && this.waiting.length > 0) {
      const joined = new Uint32Array(this.pendingCount + this.waiting.length);
      joined.set(handles);
      joined.set(this.waiting, this.pendingCount);
      handles = joined;
      this.waiting = [];
    }
    this.pendingCount = 0;
    if (handles.length === 0) return;
    handles.sort();
    let i = 0;
    while (i < handles.length) {
      const first = handles[i++]!;
      const index = first >>> this.shift;
      const chunk = this.chunks[index];
      const start = first & this.mask;
      // Stale: freed again and reused since, released already, or its chunk unmapped.
      if (chunk === undefined || chunk.state[start] !== IDLE) continue;
      // A run: the consecutive idle slots of one chunk that follow (a handle may come twice).
      let end = start + 1;
      while (i < handles.length) {
        const next = handles[i]!;
        if (next === index * this.chunkPages + end - 1) {
          i++;
          continue;
        }
        if (next >>> this.shift !== index || (next & this.mask) !== end || chunk.state[end] !== IDLE) break;
        end++;
        i++;
      }
      this.release(chunk, start, end);
    }
    for (const chunk of this.chunks) if (chunk !== undefined && chunk.inUse === 0) this.unmap(chunk);
  }

  /** The lowest chunk with a slot to spare. */
  private chunkWithRoom(): Chunk | undefined {
    for (const chunk of this.chunks) {
      if (chunk !== undefined && (chunk.holeCount > 0 || chunk.bump < this.chunkPages)) return chunk;
    }
    return undefined;
  }

  /** A new chunk at the lowest free index; undefined when it cannot be mapped. */
  private mapChunk(): Chunk | undefined {
    let index = this.chunks.indexOf(undefined);
    if (index === -1) index = this.chunks.length;
    // Handles are index * chunkPages + slot, and must stay below 2^32.
    if ((index + 1) * this.chunkPages > 2 ** 32) {
      this.lastFailure = "no page handles left";
      return undefined;
    }
    if (this.mappingCount + 1 > this.mappingBudget) {
      this.lastFailure = `no mapping left: ${this.mappingBudget} is the budget (mappingBudget)`;
      return undefined;
    }
    const address = this.memory === "secret" ? this.mapSecret() : this.mapAnonymous();
    if (address === -1) return undefined;
    const chunk: Chunk = {
      index,
      address,
      frames: new Uint32Array(this.chunkPages),
      state: new Uint8Array(this.chunkPages),
      holes: new Uint32Array(this.chunkPages),
      holeCount: 0,
      bump: 0,
      inUse: 0,
      splits: 0,
    };
    this.chunks[index] = chunk;
    this.mapped++;
    this.mappingCount++;
    return chunk;
  }

  private mapAnonymous(): number {
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    const address = this.system.mmap(0, this.chunkBytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (address === -1) {
      this.lastFailure = this.fail("mmap").message;
      return -1;
    }
    // Base pages only; not in core dumps; not shared with forked children. Advice, so failures do not matter.
    this.system.madvise(address, this.chunkBytes, MADV_NOHUGEPAGE);
    this.system.madvise(address, this.chunkBytes, MADV_DONTDUMP);
    this.system.madvise(address, this.chunkBytes, MADV_DONTFORK);
    return address;
  }

  /** A memfd_secret file of one chunk, mapped shared; the file is closed at once (the mapping keeps it). */
  private mapSecret(): number {
    const fd = this.system.memfdSecret(0);
    if (fd === -1) {
      this.lastFailure = this.fail("memfd_secret").message;
      return -1;
    }
    try {
      if (this.system.ftruncate(fd, this.chunkBytes) !== 0) {
        this.lastFailure = this.fail("ftruncate").message;
        return -1;
      }
      // The kernel counts the whole mapping against RLIMIT_MEMLOCK now.
      const address = this.system.mmap(0, this.chunkBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (address === -1) {
        this.lockRefused("mmap");
        return -1;
      }
      // Secret memory is already kept out of core dumps; keep it from forked children too.
      this.system.madvise(address, this.chunkBytes, MADV_DONTFORK);
      return address;
    } finally {
      this.system.close(fd);
    }
  }

  /** Unmaps a chunk with nothing in use: every page it still holds goes back to the kernel. */
  private unmap(chunk: Chunk): void {
    if (this.chunks[chunk.index] !== chunk) return;
    if (this.system.munmap(chunk.address, this.chunkBytes) !== 0) {
      // Kept, and tried again when its next page is freed or at close.
      this.lastFailure = this.fail("munmap").message;
      return;
    }
    let present = 0;
    for (let slot = 0; slot < chunk.bump; slot++) if (chunk.state[slot] !== EMPTY) present++;
    this.locked -= present;
    this.mappingCount -= 1 + chunk.splits;
    this.chunks[chunk.index] = undefined;
    while (this.chunks.length > 0 && this.chunks[this.chunks.length - 1] === undefined) this.chunks.pop();
    this.mapped--;
  }
}

/** Calls `run(start, end)` for each run of consecutive values in sorted `slots`. */
function forEachRun(slots: Uint32Array, run: (start: number, end: number) => void): void {
  let start = 0;
  for (let i = 1; i <= slots.length; i++) {
    if (i === slots.length || slots[i] !== slots[i - 1]! + 1) {
      run(slots[start]!, slots[i - 1]! + 1);
      start = i;
    }
  }
}

/** Secret memory when asked for or by default where the kernel has it; else mlock, said once. */
function chooseMemory(system: PageSystem, options: PageSourceOptions): PageMemory {
  if (options.memory === "mlock") return "mlock";
  const fd = system.memfdSecret(0);
  if (fd !== -1) {
    system.close(fd);
    return "secret";
  }
  const errno = system.errno();
  const error = new SystemCallError("memfd_secret", errno, native().libc.strerror(errno));
  if (options.memory === "secret") throw error;
  const why = errnoName(errno) === "ENOSYS" ? "this kernel has no secret memory (Linux 5.14 or later, not booted with secretmem.enable=0)" : error.message;
  options.onLimit?.(
    `memfd_secret is not available (${why}): pages are locked with mlock instead, which compaction may move; the frame check after each cycle repairs moved pages with the host, and vm.compact_unevictable_allowed=0 keeps them from moving`,
  );
  return "mlock";
}

/** Maps one page populated, and reads its frame: zero means pagemap hides frames from this process. */
function checkFramesVisible(system: PageSystem): void {
  const address = system.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (address === -1) {
    const errno = system.errno();
    throw new SystemCallError("mmap", errno, native().libc.strerror(errno));
  }
  try {
    const entry = Buffer.alloc(8);
    const read = system.readPagemap(entry, 8, (address / PAGE_SIZE) * 8);
    if (read !== 8 || entryFrame(entry.readUInt32LE(0), entry.readUInt32LE(4)) <= 0) {
      throw new HvError("E_FRAMES_HIDDEN", "reading frame numbers from /proc/self/pagemap needs CAP_SYS_ADMIN (run as root): this process sees them as 0");
    }
  } finally {
    system.munmap(address, PAGE_SIZE);
  }
}
