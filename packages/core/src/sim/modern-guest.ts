import { ALLOC, FRAMES_PER_2M_PAGE, type AllocFlavour } from "@vmballoon/protocol";
import { PageStack } from "../page-stack.js";
import { NO_PAGE, type ModernPageSource } from "../ports.js";
import type { GuestSpec } from "./guest.js";

// Module-local bindings, folded by V8 into compiled code (an import is not).
const { NOSLEEP } = ALLOC;
const EMPTY = NO_PAGE;
const BLOCK = FRAMES_PER_2M_PAGE;

/** The guest of SIMULATION-MODERN.md, as a scenario describes it. */
export interface ModernGuestSpec extends GuestSpec {
  /** Whether 2 MB allocations can succeed (the scenario's `huge`, default true). */
  readonly huge: boolean;
}

/**
 * The reference guest of today's driver: SIMULATION.md's stack of free
 * frames, and 2 MB allocations of the lowest 512-aligned block whose frames
 * are all free, wherever they sit in the stack.
 *
 * A page's handle is its frame's index from `firstPfn`. The free stack may
 * hold stale entries of frames a 2 MB allocation took: a frame is free when
 * its bit in {@link freeBits} is set, and the topmost entry of a free frame
 * is always its own (a frame freed again is pushed above any stale entry of
 * it), so an allocation pops until it finds a free frame. A freed 2 MB page
 * is one entry, a run (`-(block + 1)`) that hands out `p`, `p + 1`, … as its
 * 512 pushes would; a run is stale once its block is taken again. When the
 * stack is full of stale entries it is compacted, keeping the order.
 */
export class ModernSimGuest implements ModernPageSource {
  private stack: Int32Array;
  private depth: number;
  /**
   * Positions of the stack below this one still hold their first entry,
   * `frames - 1 - position`, without it being written: a fresh guest's
   * stack of millions of frames is not filled before the first pop.
   */
  private unwritten: number;
  private freeTotal: number;
  private readonly freeBits: Uint32Array;
  /** Free frames in each 512-aligned block wholly inside the guest. */
  private readonly blockFree: Uint16Array;
  /** Index of the first frame of block 0 (the first 512-aligned frame). */
  private readonly blockOffset: number;
  private readonly blocks: number;
  /** Every block below this one has a frame in use. */
  private lowestFreeBlock: number;
  /** Per block: the stack position of its run, or -1. */
  private readonly runAt: Int32Array;
  /** Per block: frames of its run already handed out. */
  private readonly runTaken: Uint16Array;
  private readonly workload: PageStack;
  /** The memory of pages asked for by {@link pageWords} (the batch pages), by index. */
  private readonly memory: Map<number, Uint32Array>;
  private readonly firstPfn: number;
  private readonly frames: number;
  private readonly total: number;
  private readonly nosleepReserve: number;
  private readonly sleepReserve: number;
  /** Whether 2 MB allocations can succeed (the `huge` event). */
  huge: boolean;
  /** Called with each frame {@link use} pops (the host of HOST.md marks it touched); undefined by default. */
  onUse: ((pfn: number) => void) | undefined;

  constructor(spec: ModernGuestSpec) {
    const frames = spec.freePages;
    this.firstPfn = spec.firstPfn;
    this.frames = frames;
    this.total = spec.totalPages;
    this.nosleepReserve = spec.nosleepReserve;
    this.sleepReserve = spec.sleepReserve;
    this.huge = spec.huge;
    // Room for some stale entries before a compaction.
    this.stack = new Int32Array(frames + Math.max(1024, frames >>> 6));
    this.depth = frames;
    this.unwritten = frames;
    this.freeTotal = frames;
    this.freeBits = new Uint32Array(Math.ceil(frames / 32)).fill(0xffffffff);
    if (frames % 32 !== 0) this.freeBits[this.freeBits.length - 1] = (2 ** (frames % 32) - 1) >>> 0;
    this.blockOffset = (BLOCK - (spec.firstPfn % BLOCK)) % BLOCK;
    this.blocks = Math.max(0, Math.floor((frames - this.blockOffset) / BLOCK));
    this.blockFree = new Uint16Array(this.blocks).fill(BLOCK);
    this.lowestFreeBlock = 0;
    this.runAt = new Int32Array(this.blocks).fill(-1);
    this.runTaken = new Uint16Array(this.blocks);
    this.workload = new PageStack();
    this.memory = new Map();
    this.onUse = undefined;
  }

  allocate(flavour: AllocFlavour): number {
    const reserve = flavour === NOSLEEP ? this.nosleepReserve : this.sleepReserve;
    if (this.freeTotal <= reserve) return EMPTY;
    return this.pop();
  }

  free(page: number): void {
    this.push(page | 0);
  }

  allocateHuge(): number {
    if (!this.huge || this.freeTotal < BLOCK + this.nosleepReserve) return EMPTY;
    const counts = this.blockFree;
    let block = this.lowestFreeBlock;
    while (block < this.blocks && counts[block] !== BLOCK) block++;
    this.lowestFreeBlock = block;
    if (block === this.blocks) return EMPTY;

    const first = this.blockOffset + block * BLOCK;
    // 16 words of 32 frames each when the blocks are word-aligned; else frame by frame.
    if ((this.blockOffset & 31) === 0) this.freeBits.fill(0, first >>> 5, (first >>> 5) + BLOCK / 32);
    else for (let i = first; i < first + BLOCK; i++) this.freeBits[i >>> 5]! &= ~(1 << (i & 31));
    counts[block] = 0;
    this.runAt[block] = -1;
    this.freeTotal -= BLOCK;
    this.lowestFreeBlock = block + 1;
    return first;
  }

  freeHuge(page: number): void {
    const first = page | 0;
    if ((this.blockOffset & 31) !== 0) {
      for (let i = BLOCK - 1; i >= 0; i--) this.push(first + i);
      return;
    }
    if (this.depth === this.stack.length) this.compact();
    // The block's 512 frames as one run, first frame on top, as 512 pushes
    // would leave them; 16 whole words of the bitmap; the block's count.
    const block = (first - this.blockOffset) >>> 9;
    if (this.depth < this.unwritten) this.unwritten = this.depth;
    this.runAt[block] = this.depth;
    this.runTaken[block] = 0;
    this.stack[this.depth++] = -(block + 1);
    this.freeBits.fill(0xffffffff, first >>> 5, (first >>> 5) + BLOCK / 32);
    this.freeTotal += BLOCK;
    this.blockFree[block] = BLOCK;
    if (block < this.lowestFreeBlock) this.lowestFreeBlock = block;
  }

  splitHugePage(page: number): Int32Array {
    const parts = new Int32Array(BLOCK);
    for (let i = 0; i < BLOCK; i++) parts[i] = (page | 0) + i;
    return parts;
  }

  pageWords(page: number): Uint32Array {
    const words = new Uint32Array(1024);
    this.memory.set(page | 0, words);
    return words;
  }

  frameNumber(page: number): number {
    return this.firstPfn + (page | 0);
  }

  totalPages(): number {
    return this.total;
  }

  /** The handle of a frame of this guest, or {@link NO_PAGE}. */
  pageOf(pfn: number): number {
    const index = pfn - this.firstPfn;
    return index >= 0 && index < this.frames ? index : EMPTY;
  }

  /**
   * The memory the host sees at a frame: a page the driver asked memory of
   * ({@link pageWords}) and still holds; undefined for any other frame.
   */
  memoryAt(pfn: number): Uint32Array | undefined {
    const index = this.pageOf(pfn);
    if (index === EMPTY || this.isFree(index)) return undefined;
    return this.memory.get(index);
  }

  /** Free frames (the free stack's depth in SIMULATION.md's terms). */
  get freeCount(): number {
    return this.freeTotal;
  }

  /** Pages the workload holds. */
  get workloadCount(): number {
    return this.workload.length;
  }

  /** `guestUse`: the workload takes up to `count` free pages (reserves ignored). */
  use(count: number): void {
    const onUse = this.onUse;
    for (let n = 0; n < count && this.freeTotal > 0; n++) {
      const index = this.pop();
      this.workload.push(index);
      if (onUse !== undefined) onUse(this.firstPfn + index);
    }
  }

  /** `guestRelease`: the workload gives back up to `count` pages. */
  release(count: number): void {
    for (let n = 0; n < count && this.workload.length > 0; n++) this.push(this.workload.pop());
  }

  /** The free frames, in stack order (bottom first). */
  freeFrames(): number[] {
    const seen = new Set<number>();
    const out: number[] = [];
    for (let at = this.depth - 1; at >= 0; at--) {
      for (const index of this.entryFrames(at)) {
        if (!this.isFree(index) || seen.has(index)) continue;
        seen.add(index);
        out.push(this.firstPfn + index);
      }
    }
    return out.reverse();
  }

  private isFree(index: number): boolean {
    return (this.freeBits[index >>> 5]! & (1 << (index & 31))) !== 0;
  }

  /** The entry at a position of the stack. */
  private entryAt(at: number): number {
    return at < this.unwritten ? this.frames - 1 - at : this.stack[at]!;
  }

  /** Writes the entries not yet written (see {@link unwritten}). */
  private writeAll(): void {
    const { stack, frames } = this;
    for (let i = 0; i < this.unwritten; i++) stack[i] = frames - 1 - i;
    this.unwritten = 0;
  }

  /** The frames an entry of the stack stands for, top first (none for a stale run). */
  private entryFrames(at: number): number[] {
    const entry = this.entryAt(at);
    if (entry >= 0) return [entry];
    const block = -entry - 1;
    if (this.runAt[block] !== at) return [];
    const first = this.blockOffset + block * BLOCK;
    const frames: number[] = [];
    for (let i = this.runTaken[block]!; i < BLOCK; i++) frames.push(first + i);
    return frames;
  }

  /** The next frame of the run on top of the stack, or -1 when the run is stale. */
  private popRun(entry: number): number {
    const block = -entry - 1;
    const at = this.depth - 1;
    if (this.runAt[block] !== at) {
      this.depth = at;
      return -1;
    }
    const index = this.blockOffset + block * BLOCK + this.runTaken[block]!;
    if (++this.runTaken[block]! === BLOCK) {
      this.depth = at;
      this.runAt[block] = -1;
    }
    return index;
  }

  /** The top free frame (there is one). */
  private pop(): number {
    const stack = this.stack;
    const bits = this.freeBits;
    for (;;) {
      const at = this.depth - 1;
      let index = at < this.unwritten ? this.frames - 1 - at : stack[at]!;
      if (index < 0) {
        index = this.popRun(index);
        if (index < 0) continue;
      } else {
        this.depth--;
      }
      const word = bits[index >>> 5]!;
      const bit = 1 << (index & 31);
      if ((word & bit) === 0) continue;
      bits[index >>> 5] = word & ~bit;
      this.freeTotal--;
      const block = (index - this.blockOffset) >>> 9;
      if (block < this.blocks) this.blockFree[block]!--;
      return index;
    }
  }

  private push(index: number): void {
    if (this.depth === this.stack.length) this.compact();
    if (this.depth < this.unwritten) this.unwritten = this.depth;
    this.stack[this.depth++] = index;
    this.freeBits[index >>> 5]! |= 1 << (index & 31);
    this.freeTotal++;
    const block = (index - this.blockOffset) >>> 9;
    if (block < this.blocks && ++this.blockFree[block]! === BLOCK && block < this.lowestFreeBlock) this.lowestFreeBlock = block;
  }

  /** Drops the stale entries, keeping the free frames' order (a live run stays one entry). */
  private compact(): void {
    this.writeAll();
    const seen = new Uint32Array(this.freeBits.length);
    const stack = this.stack;
    const kept: number[] = [];
    for (let at = this.depth - 1; at >= 0; at--) {
      const entry = stack[at]!;
      if (entry < 0) {
        if (this.runAt[-entry - 1] !== at) continue;
        kept.push(entry);
        // Older entries of the run's frames are stale.
        for (const index of this.entryFrames(at)) seen[index >>> 5]! |= 1 << (index & 31);
        continue;
      }
      const bit = 1 << (entry & 31);
      if (!this.isFree(entry) || (seen[entry >>> 5]! & bit) !== 0) continue;
      seen[entry >>> 5]! |= bit;
      kept.push(entry);
    }
    this.depth = kept.length;
    for (let i = 0; i < kept.length; i++) {
      const entry = kept[kept.length - 1 - i]!;
      stack[i] = entry;
      if (entry < 0) this.runAt[-entry - 1] = i;
    }
  }
}
