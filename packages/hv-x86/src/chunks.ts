/*
 * The chunk allocator: the page source's memory comes in chunks, one
 * mapping each, of `chunkPages` slots; a page handle is `chunk index *
 * chunkPages + slot`. Here are the chunks, the state of each slot, the free
 * slots (a stack of holes, then the never-used ones), and the books: pages
 * present, chunks mapped, and the kernel's mappings (a chunk, and for mlock
 * each split where locked and unlocked slots meet). How a slot is made present
 * and given back is the memory's business (memory.ts).
 */

// The state of a slot.
/** Not present (never used, or returned to the kernel). */
export const EMPTY = 0;
/** Handed out, or ready to be. */
export const IN_USE = 1;
/** Free, but still held (locked, pinned or secret): waiting to be returned, or kept with its chunk. */
export const IDLE = 2;
/** Secret memory whose frame cannot be offered (above 2^32 - 1): held until its chunk goes, never reused. */
export const SPOILT = 3;

export interface Chunk {
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

export class ChunkTable {
  readonly chunks: (Chunk | undefined)[] = [];
  readonly shift: number;
  readonly mask: number;
  readonly chunkBytes: number;
  /** Chunks mapped now. */
  mapped = 0;
  /** Mappings now: one a chunk, and one more for each split. */
  mappingCount = 0;
  /** Pages present and held by the source now: in use, or idle. */
  present = 0;

  constructor(
    readonly chunkPages: number,
    /** The most mappings the source makes. */
    readonly mappingBudget: number,
  ) {
    this.shift = Math.log2(chunkPages);
    this.mask = chunkPages - 1;
    this.chunkBytes = chunkPages * 4096;
  }

  /** The chunk of a page handle (undefined when it was unmapped). */
  chunkOf(page: number): Chunk | undefined {
    return this.chunks[page >>> this.shift];
  }

  /** The lowest chunk with a slot to spare. */
  withRoom(): Chunk | undefined {
    for (const chunk of this.chunks) {
      if (chunk !== undefined && (chunk.holeCount > 0 || chunk.bump < this.chunkPages)) return chunk;
    }
    return undefined;
  }

  /** The index a new chunk gets, or why there is none. */
  nextIndex(): number | string {
    let index = this.chunks.indexOf(undefined);
    if (index === -1) index = this.chunks.length;
    // Handles are index * chunkPages + slot, and stay below 2^31 (2 MB pages have the handles above).
    if ((index + 1) * this.chunkPages > 2 ** 31) return "no page handles left";
    if (this.mappingCount + 1 > this.mappingBudget) return `no mapping left: ${this.mappingBudget} is the budget (mappingBudget)`;
    return index;
  }

  /** Books a chunk just mapped at `address`. */
  add(index: number, address: number): Chunk {
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

  /** Books a chunk just unmapped: every page it held went with it. */
  remove(chunk: Chunk): void {
    let present = 0;
    for (let slot = 0; slot < chunk.bump; slot++) if (chunk.state[slot] !== EMPTY) present++;
    this.present -= present;
    this.mappingCount -= 1 + chunk.splits;
    this.chunks[chunk.index] = undefined;
    while (this.chunks.length > 0 && this.chunks[this.chunks.length - 1] === undefined) this.chunks.pop();
    this.mapped--;
  }

  /** Forgets every chunk (the source is closed and has unmapped them). */
  clear(): void {
    this.chunks.length = 0;
    this.mapped = 0;
    this.mappingCount = 0;
    this.present = 0;
  }

  /** Takes up to `want` free slots of a chunk into `slots`, holes first; sorted. */
  take(chunk: Chunk, want: number, slots: Uint32Array): Uint32Array {
    let count = 0;
    while (count < want && chunk.holeCount > 0) slots[count++] = chunk.holes[--chunk.holeCount]!;
    while (count < want && chunk.bump < this.chunkPages) slots[count++] = chunk.bump++;
    return slots.subarray(0, count).sort();
  }

  /** A slot no longer in use: idle, held still, on the hole stack. */
  setIdle(chunk: Chunk, slot: number): void {
    chunk.state[slot] = IDLE;
    chunk.holes[chunk.holeCount++] = slot;
    chunk.inUse--;
  }

  /** Where present and not present slots meet between slots from - 1 and to (inclusive), within the chunk. */
  splitsAround(chunk: Chunk, from: number, to: number): number {
    const state = chunk.state;
    let splits = 0;
    const last = Math.min(to, this.chunkPages - 1);
    for (let i = Math.max(from, 1); i <= last; i++) {
      if ((state[i - 1] === EMPTY) !== (state[i] === EMPTY)) splits++;
    }
    return splits;
  }

  addSplits(chunk: Chunk, delta: number): void {
    chunk.splits += delta;
    this.mappingCount += delta;
  }
}

/** Calls `run(start, end)` for each run of consecutive values in sorted `slots`. */
export function forEachRun(slots: Uint32Array, run: (start: number, end: number) => void): void {
  let start = 0;
  for (let i = 1; i <= slots.length; i++) {
    if (i === slots.length || slots[i] !== slots[i - 1]! + 1) {
      run(slots[start]!, slots[i - 1]! + 1);
      start = i;
    }
  }
}
