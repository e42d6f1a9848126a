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
 * it), so an allocation pops until it finds a free frame. When the stack is
 * full of stale entries it is compacted, keeping the order.
 */
export class ModernSimGuest implements ModernPageSource {
  private stack: Int32Array;
  private depth: number;
  private freeTotal: number;
  private readonly freeBits: Uint32Array;
  /** Free frames in each 512-aligned block wholly inside the guest. */
  private readonly blockFree: Uint16Array;
  /** Index of the first frame of block 0 (the first 512-aligned frame). */
  private readonly blockOffset: number;
  private readonly blocks: number;
  /** Every block below this one has a frame in use. */
  private lowestFreeBlock: number;
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

  constructor(spec: ModernGuestSpec) {
    const frames = spec.freePages;
    this.firstPfn = spec.firstPfn;
    this.frames = frames;
    this.total = spec.totalPages;
    this.nosleepReserve = spec.nosleepReserve;
    this.sleepReserve = spec.sleepReserve;
    this.huge = spec.huge;
    // Room for some stale entries before a compaction.
    const stack = new Int32Array(frames + Math.max(1024, frames >>> 4));
    for (let i = 0; i < frames; i++) stack[i] = frames - 1 - i;
    this.stack = stack;
    this.depth = frames;
    this.freeTotal = frames;
    this.freeBits = new Uint32Array(Math.ceil(frames / 32)).fill(0xffffffff);
    if (frames % 32 !== 0) this.freeBits[this.freeBits.length - 1] = (2 ** (frames % 32) - 1) >>> 0;
    this.blockOffset = (BLOCK - (spec.firstPfn % BLOCK)) % BLOCK;
    this.blocks = Math.max(0, Math.floor((frames - this.blockOffset) / BLOCK));
    this.blockFree = new Uint16Array(this.blocks).fill(BLOCK);
    this.lowestFreeBlock = 0;
    this.workload = new PageStack();
    this.memory = new Map();
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
    // 16 words of 32 frames each when the block is word-aligned; else frame by frame.
    for (let i = first; i < first + BLOCK; i++) this.freeBits[i >>> 5]! &= ~(1 << (i & 31));
    counts[block] = 0;
    this.freeTotal -= BLOCK;
    this.lowestFreeBlock = block + 1;
    return first;
  }

  freeHuge(page: number): void {
    for (let i = BLOCK - 1; i >= 0; i--) this.push((page | 0) + i);
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
    for (let n = 0; n < count && this.freeTotal > 0; n++) this.workload.push(this.pop());
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
      const index = this.stack[at]!;
      if (!this.isFree(index) || seen.has(index)) continue;
      seen.add(index);
      out.push(this.firstPfn + index);
    }
    return out.reverse();
  }

  private isFree(index: number): boolean {
    return (this.freeBits[index >>> 5]! & (1 << (index & 31))) !== 0;
  }

  /** The top free frame (there is one). */
  private pop(): number {
    const stack = this.stack;
    const bits = this.freeBits;
    for (;;) {
      const index = stack[--this.depth]!;
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
    this.stack[this.depth++] = index;
    this.freeBits[index >>> 5]! |= 1 << (index & 31);
    this.freeTotal++;
    const block = (index - this.blockOffset) >>> 9;
    if (block < this.blocks && ++this.blockFree[block]! === BLOCK && block < this.lowestFreeBlock) this.lowestFreeBlock = block;
  }

  /** Drops the stale entries, keeping the free frames' order. */
  private compact(): void {
    const seen = new Uint32Array(this.freeBits.length);
    const stack = this.stack;
    let kept = this.freeTotal;
    const out = new Int32Array(kept);
    for (let at = this.depth - 1; at >= 0 && kept > 0; at--) {
      const index = stack[at]!;
      const bit = 1 << (index & 31);
      if (!this.isFree(index) || (seen[index >>> 5]! & bit) !== 0) continue;
      seen[index >>> 5]! |= bit;
      out[--kept] = index;
    }
    stack.set(out, 0);
    this.depth = this.freeTotal;
  }
}
