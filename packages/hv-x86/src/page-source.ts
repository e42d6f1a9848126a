/*
 * Real guest pages for the engine: the seed's alloc_page / __free_page /
 * page_to_pfn / si_meminfo, from user mode.
 *
 * Memory comes in chunks: anonymous private mappings of `chunkPages` pages
 * (256 MiB by default), reserved without backing (MAP_NORESERVE), kept out of
 * huge pages, core dumps and forked children. A page is handed out locked
 * (`mlock`: present, and never swapped) with its frame number read from
 * /proc/self/pagemap; it is given back with `munlock` and
 * `madvise(MADV_DONTNEED)`, which return its frame to the kernel. Pages are
 * locked in batches when the source runs dry, and pages given back one after
 * another in a contiguous run are returned to the kernel together, at most
 * `batchPages` later (and always by `releaseIdle`, which the runner calls
 * after every cycle). A chunk with no page left in use is unmapped. This keeps
 * the mappings to a few per GiB: each chunk is one mapping, split only where
 * locked and unlocked pages meet.
 *
 * Once a page is handed out, this code never reads or writes its contents:
 * `mlock` faults it in (the kernel zeroes it), pagemap gives its frame, and
 * the next thing that happens to it is `munlock` and MADV_DONTNEED.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { ALLOC, MAX_PFN, PAGE_SIZE, type AllocFlavour } from "@vmballoon/protocol";
import { NO_PAGE, type PageSource } from "@vmballoon/core";
import { HvError } from "./errors.js";
import { MeminfoReader, parseFrameLimit } from "./meminfo.js";
import {
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  lastError,
  native,
  type Libc,
} from "./native.js";

export interface PageSourceOptions {
  /**
   * NOSLEEP allocations keep MemFree at or above this many pages: they fail
   * rather than make the kernel reclaim. Default: 1/16 of MemTotal.
   */
  readonly nosleepReservePages?: number;
  /**
   * CANSLEEP allocations keep MemAvailable at or above this many pages: they
   * may make the kernel reclaim caches, but not push it into swap or the OOM
   * killer. Default: 1/64 of MemTotal.
   */
  readonly sleepReservePages?: number;
  /** Pages per mapping: a power of two from 512 to 65536 (the default, 256 MiB). */
  readonly chunkPages?: number;
  /** Pages locked together when the source runs dry, and at most held back in a release run. Default 256 (1 MiB). */
  readonly batchPages?: number;
}

interface Chunk {
  readonly index: number;
  readonly address: number;
  /** Frame number of each slot, valid while the slot is locked. */
  readonly frames: Uint32Array;
  /** Slots used before and given back: a stack, reused first. */
  readonly holes: Uint32Array;
  holeCount: number;
  /** Slots from here on were never used. */
  bump: number;
  /** Slots locked now: handed out, ready, or waiting in the release run. */
  live: number;
}

const PAGEMAP_PRESENT = 0x8000_0000; // bit 63, in the high word
const PAGEMAP_PFN_HIGH = 0x7f_ffff; // bits 32-54: the frame number is bits 0-54

/** The frame number in a pagemap entry, or -1 when the page is not present. */
function entryFrame(buffer: Buffer, offset: number): number {
  const high = buffer.readUInt32LE(offset + 4);
  if ((high & PAGEMAP_PRESENT) === 0) return -1;
  return (high & PAGEMAP_PFN_HIGH) * 2 ** 32 + buffer.readUInt32LE(offset);
}

/**
 * The real Linux {@link PageSource}: locked anonymous pages and their frame
 * numbers. Build it with {@link LinuxPageSource.open}; needs CAP_SYS_ADMIN for
 * frame numbers (else HvError E_FRAMES_HIDDEN) and enough RLIMIT_MEMLOCK (or
 * CAP_IPC_LOCK) to lock pages (else allocations fail).
 */
export class LinuxPageSource implements PageSource {
  /** Pages the engine holds now. */
  private handedOut = 0;
  /** Pages locked now (held by the engine, ready, or in the release run). */
  private locked = 0;
  private closed = false;
  private readonly chunks: (Chunk | undefined)[] = [];
  private mapped = 0;
  /** Locked pages not handed out yet, as handles; the next one is on top. */
  private readonly ready: Uint32Array;
  private readyCount = 0;
  /** Slots being gathered by a refill. */
  private readonly scratch: Uint32Array;
  /** Pagemap entries of one run. */
  private readonly entries: Buffer;
  /** Pages given back in a row, not returned to the kernel yet: slots [runStart, runEnd) of runChunk. */
  private runChunk: Chunk | undefined;
  private runStart = 0;
  private runEnd = 0;
  private readonly shift: number;
  private readonly mask: number;
  private readonly chunkBytes: number;
  private readonly batchPages: number;
  private readonly nosleepReserve: number;
  private readonly sleepReserve: number;
  /** Frames above 2^32 - 1, which protocol 2 cannot carry: given back, never offered. */
  skippedHighFrames = 0;
  /** Why the last allocation that failed did, in a few words. */
  lastFailure: string | undefined;

  private constructor(
    private readonly libc: Libc,
    private readonly pagemap: number,
    private readonly meminfo: MeminfoReader,
    readonly chunkPages: number,
    options: PageSourceOptions,
  ) {
    this.shift = Math.log2(chunkPages);
    this.mask = chunkPages - 1;
    this.chunkBytes = chunkPages * PAGE_SIZE;
    this.batchPages = options.batchPages ?? 256;
    const total = meminfo.read().totalPages;
    this.nosleepReserve = options.nosleepReservePages ?? Math.floor(total / 16);
    this.sleepReserve = options.sleepReservePages ?? Math.floor(total / 64);
    this.ready = new Uint32Array(this.batchPages);
    this.scratch = new Uint32Array(this.batchPages);
    this.entries = Buffer.alloc(this.batchPages * 8);
  }

  /**
   * Opens /proc/self/pagemap and /proc/meminfo and checks that frame numbers
   * are visible to this process. Throws HvError E_NATIVE_UNAVAILABLE off Linux
   * x64, E_FRAMES_HIDDEN without CAP_SYS_ADMIN, RangeError on bad options.
   */
  static open(options: PageSourceOptions = {}): LinuxPageSource {
    const { libc } = native();
    const chunkPages = options.chunkPages ?? 65536;
    if (!Number.isInteger(Math.log2(chunkPages)) || chunkPages < 512 || chunkPages > 65536) {
      throw new RangeError(`chunkPages must be a power of two from 512 to 65536, not ${chunkPages}`);
    }
    const batchPages = options.batchPages ?? 256;
    if (!Number.isInteger(batchPages) || batchPages < 1 || batchPages > chunkPages) {
      throw new RangeError(`batchPages must be an integer from 1 to chunkPages, not ${batchPages}`);
    }
    for (const name of ["nosleepReservePages", "sleepReservePages"] as const) {
      const value = options[name];
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) throw new RangeError(`${name} must be a whole number of pages, not ${value}`);
    }

    const pagemap = openSync("/proc/self/pagemap", "r");
    let meminfo: MeminfoReader | undefined;
    try {
      meminfo = new MeminfoReader();
      checkFramesVisible(libc, pagemap);
      return new LinuxPageSource(libc, pagemap, meminfo, chunkPages, options);
    } catch (error) {
      meminfo?.close();
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
    const chunk = this.chunks[page >>> this.shift]!;
    const slot = page & this.mask;
    this.handedOut--;
    if (chunk === this.runChunk && slot === this.runStart - 1) this.runStart = slot;
    else if (chunk === this.runChunk && slot === this.runEnd) this.runEnd = slot + 1;
    else {
      this.flushRun();
      this.runChunk = chunk;
      this.runStart = slot;
      this.runEnd = slot + 1;
    }
    if (this.runEnd - this.runStart >= this.batchPages) this.flushRun();
  }

  frameNumber(page: number): number {
    return this.chunks[page >>> this.shift]!.frames[page & this.mask]!;
  }

  totalPages(): number {
    return this.meminfo.read().totalPages;
  }

  // -------------------------------------------------------------------------
  // For the runner
  // -------------------------------------------------------------------------

  /** Pages the engine holds. */
  get heldPages(): number {
    return this.handedOut;
  }

  /** Pages locked now: those the engine holds, and those not yet returned to the kernel. */
  get lockedPages(): number {
    return this.locked;
  }

  /** Mappings (chunks) in place now. */
  get mappings(): number {
    return this.mapped;
  }

  /**
   * Returns to the kernel every page locked here that the engine does not
   * hold: the rest of the last batch, and the pages of the release run. The
   * runner calls it after every cycle.
   */
  releaseIdle(): void {
    this.flushRun();
    if (this.readyCount === 0) return;
    const chunk = this.chunks[this.ready[0]! >>> this.shift]!;
    const slots = this.scratch.subarray(0, this.readyCount);
    for (let i = 0; i < this.readyCount; i++) slots[i] = this.ready[i]! & this.mask;
    this.readyCount = 0;
    slots.sort();
    this.forEachRun(slots, (start, end) => this.release(chunk, start, end));
    this.unmapIfEmpty(chunk);
  }

  /**
   * The page's frame read again from /proc/self/pagemap now, or -1 when the
   * page is not present. {@link frameNumber} gives the frame read when the
   * page was locked; a locked page keeps it (unless the kernel migrates
   * locked pages: see the README), which this lets a check confirm.
   */
  readFrame(page: number): number {
    const chunk = this.chunks[page >>> this.shift]!;
    const address = chunk.address + (page & this.mask) * PAGE_SIZE;
    const entry = Buffer.alloc(8);
    if (readSync(this.pagemap, entry, 0, 8, (address / PAGE_SIZE) * 8) !== 8) return -1;
    return entryFrame(entry, 0);
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
    this.flushRun();
    this.readyCount = 0;
    for (const chunk of this.chunks) {
      if (chunk !== undefined) this.libc.munmap(chunk.address, this.chunkBytes);
    }
    this.chunks.length = 0;
    this.mapped = 0;
    this.locked = 0;
    this.handedOut = 0;
    this.closed = true;
    this.meminfo.close();
    closeSync(this.pagemap);
  }

  // -------------------------------------------------------------------------
  // Inside
  // -------------------------------------------------------------------------

  /** Locks a batch of pages into `ready`; false when none could be had. */
  private refill(flavour: AllocFlavour): boolean {
    if (this.closed) throw new HvError("E_CLOSED", "the page source is closed");
    const memory = this.meminfo.read();
    const headroom =
      flavour === ALLOC.NOSLEEP ? memory.freePages - this.nosleepReserve : memory.availablePages - this.sleepReserve;
    const want = Math.min(this.batchPages, headroom);
    if (want <= 0) {
      this.lastFailure = flavour === ALLOC.NOSLEEP ? "MemFree is at its reserve" : "MemAvailable is at its reserve";
      return false;
    }

    const chunk = this.chunkWithRoom() ?? this.mapChunk();
    if (chunk === undefined) return false;

    const slots = this.scratch;
    let count = 0;
    while (count < want && chunk.holeCount > 0) slots[count++] = chunk.holes[--chunk.holeCount]!;
    while (count < want && chunk.bump < this.chunkPages) slots[count++] = chunk.bump++;
    const taken = slots.subarray(0, count);
    taken.sort();
    chunk.live += count;
    this.locked += count;

    // Lock each run of neighbouring slots, then read its frames; `good` collects the offerable slots in place.
    let good = 0;
    this.forEachRun(taken, (start, end) => {
      const address = chunk.address + start * PAGE_SIZE;
      if (this.libc.mlock(address, (end - start) * PAGE_SIZE) !== 0) {
        this.lastFailure = lastError("mlock").message;
        this.release(chunk, start, end);
        return;
      }
      const length = (end - start) * 8;
      const read = readSync(this.pagemap, this.entries, 0, length, (address / PAGE_SIZE) * 8);
      for (let slot = start; slot < end; slot++) {
        const frame = read === length ? entryFrame(this.entries, (slot - start) * 8) : -1;
        if (frame > 0 && frame <= MAX_PFN) {
          chunk.frames[slot] = frame;
          slots[good++] = slot;
        } else {
          if (frame > MAX_PFN) this.skippedHighFrames++;
          this.lastFailure = frame > MAX_PFN ? "frame above 2^32 - 1" : "page not present after mlock";
          this.release(chunk, slot, slot + 1);
        }
      }
    });
    if (good === 0) {
      this.unmapIfEmpty(chunk);
      return false;
    }
    // Handed out in ascending order: the engine gives pages back newest first, so runs form.
    const base = chunk.index * this.chunkPages;
    for (let i = 0; i < good; i++) this.ready[i] = base + slots[good - 1 - i]!;
    this.readyCount = good;
    return true;
  }

  /** Calls `run(start, end)` for each run of consecutive values in sorted `slots`. */
  private forEachRun(slots: Uint32Array, run: (start: number, end: number) => void): void {
    let start = 0;
    for (let i = 1; i <= slots.length; i++) {
      if (i === slots.length || slots[i] !== slots[i - 1]! + 1) {
        run(slots[start]!, slots[i - 1]! + 1);
        start = i;
      }
    }
  }

  /** Returns slots [start, end) of a chunk to the kernel: unlocked, emptied, and on the hole stack. */
  private release(chunk: Chunk, start: number, end: number): void {
    const address = chunk.address + start * PAGE_SIZE;
    const length = (end - start) * PAGE_SIZE;
    if (this.libc.munlock(address, length) !== 0) throw lastError("munlock");
    if (this.libc.madvise(address, length, MADV_DONTNEED) !== 0) throw lastError("madvise");
    // Pushed highest first, so the hole stack hands them out lowest first.
    for (let slot = end - 1; slot >= start; slot--) chunk.holes[chunk.holeCount++] = slot;
    chunk.live -= end - start;
    this.locked -= end - start;
  }

  /** Returns the release run's pages to the kernel. */
  private flushRun(): void {
    const chunk = this.runChunk;
    if (chunk === undefined) return;
    this.runChunk = undefined;
    this.release(chunk, this.runStart, this.runEnd);
    this.unmapIfEmpty(chunk);
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
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    const address = this.libc.mmap(0, this.chunkBytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (address === -1) {
      this.lastFailure = lastError("mmap").message;
      return undefined;
    }
    // Base pages only; not in core dumps; not shared with forked children. Advice, so failures do not matter.
    this.libc.madvise(address, this.chunkBytes, MADV_NOHUGEPAGE);
    this.libc.madvise(address, this.chunkBytes, MADV_DONTDUMP);
    this.libc.madvise(address, this.chunkBytes, MADV_DONTFORK);
    const chunk: Chunk = {
      index,
      address,
      frames: new Uint32Array(this.chunkPages),
      holes: new Uint32Array(this.chunkPages),
      holeCount: 0,
      bump: 0,
      live: 0,
    };
    this.chunks[index] = chunk;
    this.mapped++;
    return chunk;
  }

  private unmapIfEmpty(chunk: Chunk): void {
    if (chunk.live !== 0 || this.chunks[chunk.index] !== chunk) return;
    if (this.libc.munmap(chunk.address, this.chunkBytes) !== 0) throw lastError("munmap");
    this.chunks[chunk.index] = undefined;
    while (this.chunks.length > 0 && this.chunks[this.chunks.length - 1] === undefined) this.chunks.pop();
    this.mapped--;
  }
}

/** Maps one page populated, and reads its frame: zero means pagemap hides frames from this process. */
function checkFramesVisible(libc: Libc, pagemap: number): void {
  const address = libc.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (address === -1) throw lastError("mmap");
  try {
    const entry = Buffer.alloc(8);
    readSync(pagemap, entry, 0, 8, (address / PAGE_SIZE) * 8);
    if (entryFrame(entry, 0) <= 0) {
      throw new HvError(
        "E_FRAMES_HIDDEN",
        "reading frame numbers from /proc/self/pagemap needs CAP_SYS_ADMIN (run as root): this process sees them as 0",
      );
    }
  } finally {
    libc.munmap(address, PAGE_SIZE);
  }
}
