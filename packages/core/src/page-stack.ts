/** Entries per chunk: 64 Ki pages, 256 KiB of frame numbers. */
const CHUNK = 1 << 16;

/**
 * A LIFO stack of page handles (unsigned 32-bit), kept in fixed-size typed-array
 * chunks: 4 bytes a page, no copy when it grows, at most one idle chunk kept
 * when it shrinks. It stands for the seed's `list_head` of pages, where
 * `list_add` pushes at the head and the list is walked from the head.
 */
export class PageStack {
  /** Chunks in use; the last one is {@link top}. */
  private readonly chunks: Uint32Array[] = [];
  /** The chunk being filled and its fill count. */
  private top: Uint32Array;
  private fill = 0;
  /** Entries in the chunks below {@link top}: a multiple of the chunk size. */
  private below = 0;
  /** An emptied chunk kept back, so that push/pop at a boundary does not allocate. */
  private spare: Uint32Array | undefined = undefined;

  constructor() {
    this.top = new Uint32Array(CHUNK);
    this.chunks.push(this.top);
  }

  /** Number of pages on the stack. */
  get length(): number {
    return this.below + this.fill;
  }

  push(page: number): void {
    if (this.fill === CHUNK) this.addChunk();
    this.top[this.fill++] = page;
  }

  /** The most recently pushed page; the stack must not be empty. */
  peek(): number {
    return this.top[this.fill - 1]!;
  }

  /** Removes and returns the most recently pushed page; the stack must not be empty. */
  pop(): number {
    const page = this.top[--this.fill]!;
    if (this.fill === 0) this.dropChunk();
    return page;
  }

  // The two boundary cases live apart, so that push and pop stay small
  // enough for V8 to inline them into the engine's per-page loops.

  private addChunk(): void {
    this.top = this.spare ?? new Uint32Array(CHUNK);
    this.spare = undefined;
    this.chunks.push(this.top);
    this.below += CHUNK;
    this.fill = 0;
  }

  private dropChunk(): void {
    if (this.chunks.length === 1) return;
    this.spare = this.chunks.pop();
    this.top = this.chunks[this.chunks.length - 1]!;
    this.below -= CHUNK;
    this.fill = CHUNK;
  }

  /**
   * Takes the given pages out of the stack wherever they are, keeping the
   * others in their order; returns how many were taken. A page matches in
   * either reading of its 32 bits (`page >>> 0` or `page | 0`). A rare path,
   * O(length), in place: the seed engine's frame check (pages that left the
   * balloon) and today's driver's migration (one page out of the middle of
   * its list).
   */
  remove(pages: ReadonlySet<number>): number {
    const length = this.length;
    let kept = 0;
    for (let at = 0; at < length; at++) {
      const page = this.chunks[at >>> 16]![at & (CHUNK - 1)]!;
      if (pages.has(page) || pages.has(page | 0)) continue;
      if (kept !== at) this.chunks[kept >>> 16]![kept & (CHUNK - 1)] = page;
      kept++;
    }
    for (let removed = length - kept; removed > 0; removed--) this.pop();
    return length - kept;
  }

  /** A copy of the stack, bottom first. */
  toArray(): Uint32Array {
    const out = new Uint32Array(this.length);
    let at = 0;
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      const used = c === this.chunks.length - 1 ? this.fill : CHUNK;
      out.set(chunk.subarray(0, used), at);
      at += used;
    }
    return out;
  }

  /** Bytes of typed-array storage held, idle chunk included. */
  get byteLength(): number {
    return (this.chunks.length + (this.spare ? 1 : 0)) * CHUNK * 4;
  }
}
