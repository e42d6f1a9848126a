/*
 * Real guest pages for the engine: the seed's alloc_page / __free_page /
 * page_to_pfn / si_meminfo, from user mode. The promise: the frame the host
 * is told for a page is the frame it sits on while it is ballooned. Kept by
 * the memory (memory.ts: pinned, else secret, else mlock), asserted and
 * repaired by `checkFrames` after every cycle. Chunks (chunks.ts), batches
 * held then read from pagemap (hold-batch.ts, frame-scan.ts), frees returned
 * in runs (release-queue.ts) or a chunk at a time (secret memory), reserves
 * (reserves.ts), the batch page (batch-page.ts, the only page whose contents
 * this code touches), 2 MB pages (huge-pages.ts); every system call through
 * the seam of page-system.ts, which tests replace in part.
 */
import { readFileSync } from "node:fs";
import { MAX_PFN, PAGE_SIZE, type AllocFlavour } from "@vmballoon/protocol";
import { NO_PAGE, type ModernPageSource } from "@vmballoon/core";
import { BatchPages } from "./batch-page.js";
import { ChunkTable, IN_USE, type Chunk } from "./chunks.js";
import { holdBatch } from "./hold-batch.js";
import { HvError } from "./errors.js";
import { HUGE_BASE, HugePages } from "./huge-pages.js";
import { FrameReader, type MovedPage } from "./frame-scan.js";
import { parseFrameLimit, type MeminfoReader } from "./meminfo.js";
import type { Memory, MemoryContext, PageMemory } from "./memory.js";
import { native } from "./native.js";
import { createMemory, openParts, type PageSourceOptions, type SourceParts } from "./page-source-options.js";
import { systemError, type PageSystem, type SystemFiles } from "./page-system.js";
import { ReleaseQueue } from "./release-queue.js";
import { Reserves } from "./reserves.js";

/**
 * The real Linux {@link PageSource}: pages that stay on their frames (pinned
 * or secret memory) or locked pages (mlock), and their frame numbers. Build it
 * with {@link LinuxPageSource.open}; needs CAP_SYS_ADMIN for frame numbers
 * (else HvError E_FRAMES_HIDDEN), and CAP_IPC_LOCK or enough RLIMIT_MEMLOCK.
 */
export class LinuxPageSource implements ModernPageSource {
  /** Pages the engine holds now. */
  private handedOut = 0;
  private closed = false;
  private readonly table: ChunkTable;
  private readonly kind: Memory;
  private readonly frames: FrameReader;
  private readonly reserves: Reserves;
  private readonly batch = new BatchPages();
  /** 2 MB pages, where the memory can pin them. */
  private readonly huge: HugePages | undefined;
  /** Pages made present not handed out yet, as handles; the next one is on top. */
  private readonly ready: Uint32Array;
  private readyCount = 0;
  /** Slots being gathered by a refill. */
  private readonly scratch: Uint32Array;
  /** Frees on their way back to the kernel (memories that return runs). */
  private readonly queue: ReleaseQueue;
  private readonly told = new Set<string>();
  private skippedHigh = 0;
  private refusedHuge = 0;
  private failure: string | undefined;

  private readonly system: PageSystem;

  private readonly files: SystemFiles;
  private readonly meminfo: MeminfoReader;

  private constructor(
    { files, meminfo, cgroup, memory, chunkPages, mappingBudget, batchPages }: SourceParts,
    private readonly options: PageSourceOptions,
  ) {
    const system = files.system;
    this.system = system;
    this.files = files;
    this.meminfo = meminfo;
    const context: MemoryContext = {
      system,
      get table() {
        return table;
      },
      failed: (why) => (this.failure = why),
      limit: (kind, message) => this.limit(kind, message),
      wait: (chunk, start, end, why) => {
        this.failure = why;
        this.queue.wait(table, chunk, start, end);
      },
    };
    this.kind = createMemory(memory, context);
    const table = new ChunkTable(chunkPages(this.kind), mappingBudget);
    this.table = table;
    const total = meminfo.read().totalPages;
    this.reserves = new Reserves(
      meminfo,
      cgroup,
      options.nosleepReserve ?? Math.floor(total / 16),
      options.sleepReserve ?? Math.floor(total / 64),
      context.failed,
      context.limit,
    );
    this.frames = new FrameReader(system, batchPages, options.frameCheck === "always");
    this.huge = this.kind.buffers && new HugePages(system, this.kind.buffers, this.frames, context.failed);
    this.ready = new Uint32Array(batchPages);
    this.scratch = new Uint32Array(batchPages);
    this.queue = new ReleaseQueue(batchPages);
  }

  /**
   * Opens /proc/self/pagemap, /proc/meminfo and the memory cgroup's files,
   * checks that frame numbers are visible to this process, and chooses the
   * memory. Throws HvError E_NATIVE_UNAVAILABLE off Linux x64,
   * E_FRAMES_HIDDEN without CAP_SYS_ADMIN, a SystemCallError when the memory
   * asked for is not available, RangeError on bad options.
   */
  static open(options: PageSourceOptions = {}): LinuxPageSource {
    native();
    const parts = openParts(options);
    try {
      return new LinuxPageSource(parts, options);
    } catch (error) {
      parts.close();
      throw error;
    }
  }

  // What the source is

  /** The memory the pages come from. */
  get memory(): PageMemory {
    return this.kind.kind;
  }

  /** Pages per chunk (mapping). */
  get chunkPages(): number {
    return this.table.chunkPages;
  }

  /** The most mappings this source makes. */
  get mappingBudget(): number {
    return this.table.mappingBudget;
  }

  /** Frames above 2^32 - 1, which protocol 2 cannot carry: never offered. */
  get skippedHighFrames(): number {
    return this.skippedHigh;
  }

  /** Frame checks that read pagemap (the others found no migration in the whole kernel since the last read). */
  get frameScans(): number {
    return this.frames.scans;
  }

  /** Why the last allocation that failed did, or the last release that had to wait, in a few words. */
  get lastFailure(): string | undefined {
    return this.failure;
  }

  /** 2 MB pages refused so far ({@link allocateHuge}). */
  get hugeRefused(): number {
    return this.refusedHuge;
  }

  // The PageSource port

  allocate(flavour: AllocFlavour): number {
    if (this.readyCount === 0 && !this.refill(flavour)) return NO_PAGE;
    this.handedOut++;
    return this.ready[--this.readyCount]!;
  }

  free(page: number): void {
    if (this.closed) return;
    this.batch.forget(page);
    if (page >>> 0 >= HUGE_BASE) return this.huge?.freePart(page >>> 0);
    const chunk = this.table.chunkOf(page)!;
    this.handedOut--;
    this.table.setIdle(chunk, page & this.table.mask);
    if (this.kind.returnsRuns) {
      if (this.queue.add(page)) this.flushPending(false);
    } else if (chunk.inUse === 0) this.unmap(chunk);
  }

  frameNumber(page: number): number {
    if (page >>> 0 >= HUGE_BASE) return this.huge!.frameNumber(page >>> 0);
    return this.table.chunkOf(page)!.frames[page & this.table.mask]!;
  }

  totalPages(): number {
    return this.meminfo.read().totalPages;
  }

  /**
   * The frame check: reads the frame of every page handed out again from
   * /proc/self/pagemap and calls `moved(page, told, now)` for each page whose
   * frame is not the one {@link frameNumber} gave (`now` -1: not present);
   * when `moved` returns true, `now` becomes its frame. Returns the pages
   * checked. With pinned or secret memory it should find none: the promise's
   * assertion. Pagemap is read only when the kernel migrated pages since the
   * last scan ({@link PageSourceOptions.frameCheck}, frame-scan.ts).
   */
  checkFrames(moved: MovedPage): number {
    const skip = this.readyCount === 0 ? new Set<number>() : new Set(this.ready.subarray(0, this.readyCount));
    const checked = this.frames.check(this.table, skip, moved, (why) => (this.failure = why));
    if (checked === undefined) return this.handedOut + (this.huge?.held ?? 0);
    return checked + (this.huge?.check(moved) ?? 0);
  }

  /**
   * A 2 MB page where the memory pins (pinned memory) and the guest has a
   * hugetlb pool (vm.nr_hugepages): a MAP_HUGETLB page pinned as one fixed
   * buffer, its 512 frames from {@link frameNumber}, the first 512-aligned.
   * Else none: secret memory has no huge pages, and locked anonymous memory
   * none whose 512 frames the kernel promises to keep (a transparent huge
   * page can be split or migrated); today's driver then balloons 4 KB pages.
   */
  allocateHuge(): number {
    if (this.closed) throw new HvError("E_CLOSED", "the page source is closed");
    const page = this.huge?.allocate() ?? NO_PAGE;
    if (page === NO_PAGE) this.refusedHuge++;
    return page;
  }

  /** A 2 MB page back, whole. */
  freeHuge(page: number): void {
    if (this.closed) return;
    if (this.huge === undefined) throw new RangeError(`no 2 MB page was handed out, so ${page} cannot be freed as one`);
    this.huge.freeWhole(page >>> 0);
  }

  /** The 512 4 KB parts of a 2 MB page, first frame first; each then goes back with {@link free}. */
  splitHugePage(page: number): ArrayLike<number> {
    if (this.huge === undefined) throw new RangeError(`no 2 MB page was handed out, so ${page} cannot be split`);
    return this.huge.split(page >>> 0);
  }

  /**
   * The memory of a page handed out, as 1024 32-bit words, zeroed now (the
   * batch page's `__GFP_ZERO`). The view is valid while the page is held:
   * it must not be used after the page is freed or the source closed.
   */
  pageWords(page: number): Uint32Array {
    if (page >>> 0 >= HUGE_BASE && !this.closed) return this.batch.view(page, this.huge!.addressOf(page >>> 0));
    const chunk = this.table.chunkOf(page);
    const slot = page & this.table.mask;
    if (this.closed) throw new HvError("E_CLOSED", "the page source is closed");
    if (chunk === undefined || chunk.state[slot] !== IN_USE) throw new RangeError(`page ${page >>> 0} is not held: its memory cannot be had`);
    return this.batch.view(page, chunk.address + slot * PAGE_SIZE);
  }

  /**
   * The words {@link pageWords} gave for the page now on frame `pfn` (the
   * batch page: the host reads and writes it there), or undefined. Follows
   * the page when the frame check finds it moved; forgets it when it is freed.
   */
  memoryAt(pfn: number): Uint32Array | undefined {
    return this.batch.at(pfn, (page) => this.frameNumber(page));
  }

  // For the runner

  /** Pages the engine holds (a 2 MB page counts 512). */
  get heldPages(): number {
    return this.handedOut + (this.huge?.held ?? 0);
  }

  /** Pages held now (locked, pinned or secret): those the engine holds, and those not yet returned to the kernel. */
  get mlockedPages(): number {
    return this.table.present + (this.huge?.present ?? 0);
  }

  /** Chunks mapped now. */
  get mappings(): number {
    return this.table.mapped;
  }

  /** Mappings of the kernel's this source makes now: its chunks, and their splits. */
  get kernelMappings(): number {
    return this.table.mappingCount;
  }

  /**
   * Returns to the kernel every page held here that the engine does not
   * hold and that can go: the rest of the last batch, the pages freed since,
   * and releases that waited (secret memory goes a whole chunk at a time).
   * The runner calls it after every cycle.
   */
  releaseIdle(): void {
    if (this.closed) return;
    for (let i = 0; i < this.readyCount; i++) this.free(this.ready[i]!);
    this.handedOut += this.readyCount; // those were not handed out
    this.readyCount = 0;
    if (this.kind.returnsRuns) this.flushPending(true);
  }

  /**
   * The page's frame read again from /proc/self/pagemap now, or -1 when the
   * page is not present. {@link frameNumber} gives the frame the host was told.
   */
  readFrame(page: number): number {
    if (page >>> 0 >= HUGE_BASE) return this.frames.frameAt(this.huge!.addressOf(page >>> 0));
    const chunk = this.table.chunkOf(page)!;
    return this.frames.frameAt(chunk.address + (page & this.table.mask) * PAGE_SIZE);
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
    this.huge?.close();
    this.kind.close();
    for (const chunk of this.table.chunks) {
      if (chunk !== undefined) this.system.munmap(chunk.address, this.table.chunkBytes);
    }
    this.table.clear();
    this.batch.clear();
    this.handedOut = 0;
    this.readyCount = 0;
    this.queue.clear();
    this.meminfo.close();
    this.reserves.close();
    this.files.close();
  }

  // Inside

  /** Tells the caller about a limit, once for each kind. */
  private limit(kind: string, message: string): void {
    if (this.told.has(kind)) return;
    this.told.add(kind);
    this.options.onLimit?.(message);
  }

  /** Makes a batch of pages present into `ready`; false when none could be had. */
  private refill(flavour: AllocFlavour): boolean {
    if (this.closed) throw new HvError("E_CLOSED", "the page source is closed");
    const want = Math.min(this.ready.length, this.reserves.headroom(flavour));
    if (want <= 0) return false;

    const chunk = this.table.withRoom() ?? this.mapChunk();
    if (chunk === undefined) return false;
    const slots = this.table.take(chunk, want, this.scratch);
    const good = holdBatch(this.kind, this.frames, this.table, chunk, slots, (why, high) => {
      this.failure = why;
      if (high) this.skippedHigh++;
    });
    if (good === 0) {
      if (chunk.inUse === 0) this.unmap(chunk);
      return false;
    }
    // Handed out in ascending order: the engine gives pages back newest first, so runs form.
    const base = chunk.index * this.table.chunkPages;
    for (let i = 0; i < good; i++) this.ready[i] = base + slots[good - 1 - i]!;
    this.readyCount = good;
    return true;
  }

  /** Returns the pages freed since the last flush to the kernel (with `all`, also those that waited); unmaps chunks left with nothing in use. */
  private flushPending(all: boolean): void {
    if (!this.queue.flush(this.table, all, (chunk, start, end) => this.kind.release(chunk, start, end))) return;
    for (const chunk of this.table.chunks) if (chunk !== undefined && chunk.inUse === 0) this.unmap(chunk);
  }

  /** A new chunk at the lowest free index; undefined when it cannot be mapped. */
  private mapChunk(): Chunk | undefined {
    const index = this.table.nextIndex();
    if (typeof index === "string") {
      this.failure = index;
      return undefined;
    }
    const address = this.kind.map(this.table.chunkBytes);
    return address === -1 ? undefined : this.table.add(index, address);
  }

  /** Unmaps a chunk with nothing in use: every page it still holds goes back to the kernel. */
  private unmap(chunk: Chunk): void {
    if (this.table.chunks[chunk.index] !== chunk) return;
    // Kept, and tried again when its next page is freed or at close.
    if (!this.kind.forget(chunk)) return;
    if (this.system.munmap(chunk.address, this.table.chunkBytes) !== 0) {
      this.failure = systemError(this.system, "munmap").message;
      return;
    }
    this.table.remove(chunk);
  }
}

export type { PageSourceOptions } from "./page-source-options.js";
export type { PageMemory } from "./memory.js";
export type { PageSystem } from "./page-system.js";
export type { MovedPage } from "./frame-scan.js";
