/*
 * The frees on their way back to the kernel (memories that return runs:
 * pinned and mlock): freed handles gather here, at most a batch, and go
 * back sorted into runs of neighbouring slots, one release a run; releases
 * that had to wait (for room among the mappings, or after a failed call) go
 * again at the next full flush.
 */
import { IDLE, type Chunk, type ChunkTable } from "./chunks.js";

export class ReleaseQueue {
  /** Handles freed and not yet returned to the kernel. */
  private readonly pending: Uint32Array;
  private pendingCount = 0;
  /** Handles whose release waits. */
  private waiting: number[] = [];

  constructor(batchPages: number) {
    this.pending = new Uint32Array(batchPages);
  }

  /** A handle freed: true when the queue is full (time to flush). */
  add(page: number): boolean {
    this.pending[this.pendingCount++] = page >>> 0;
    return this.pendingCount === this.pending.length;
  }

  /** Slots [start, end) of a chunk wait for the next full flush. */
  wait(table: ChunkTable, chunk: Chunk, start: number, end: number): void {
    for (let slot = start; slot < end; slot++) this.waiting.push(chunk.index * table.chunkPages + slot);
  }

  /**
   * Calls `release` for each run of the handles freed since the last flush,
   * sorted; with `all`, also for the releases that waited. Stale handles
   * (freed again and reused since, released already, or of a chunk unmapped)
   * are skipped. False when there was nothing to flush.
   */
  flush(table: ChunkTable, all: boolean, release: (chunk: Chunk, start: number, end: number) => void): boolean {
    let handles: Uint32Array = this.pending.subarray(0, this.pendingCount);
    if (all && this.waiting.length > 0) {
      const joined = new Uint32Array(this.pendingCount + this.waiting.length);
      joined.set(handles);
      joined.set(this.waiting, this.pendingCount);
      handles = joined;
      this.waiting = [];
    }
    this.pendingCount = 0;
    if (handles.length === 0) return false;
    handles.sort();
    const { shift, mask, chunkPages } = table;
    let i = 0;
    while (i < handles.length) {
      const first = handles[i++]!;
      const index = first >>> shift;
      const chunk = table.chunks[index];
      const start = first & mask;
      if (chunk === undefined || chunk.state[start] !== IDLE) continue;
      // A run: the consecutive idle slots of one chunk that follow (a handle may come twice).
      let end = start + 1;
      while (i < handles.length) {
        const next = handles[i]!;
        if (next === index * chunkPages + end - 1) {
          i++;
          continue;
        }
        if (next >>> shift !== index || (next & mask) !== end || chunk.state[end] !== IDLE) break;
        end++;
        i++;
      }
      release(chunk, start, end);
    }
    return true;
  }

  clear(): void {
    this.pendingCount = 0;
    this.waiting = [];
  }
}
