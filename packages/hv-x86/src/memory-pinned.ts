/*
 * Pinned memory: anonymous memory (4 KB pages, kept from forked children)
 * pinned as io_uring fixed buffers. Registering a buffer takes a long-term pin
 * (FOLL_LONGTERM) on its pages, faulting them in; the kernel then refuses to
 * migrate a pinned page (compaction skips it, and offlining, NUMA balancing,
 * move_pages, KSM and khugepaged check the pin), and the kernel's direct map
 * is left as it is. A pin may first move a page out of ZONE_MOVABLE or CMA,
 * so frames are read after it.
 *
 * Each ring has a sparse table of {@link RING_SLOTS} fixed buffers; a piece
 * (a run of neighbouring pages of one chunk) is pinned in one slot, and more
 * rings are opened as slots run out. A run of pages goes back by cutting it
 * out of its pieces: the parts of a piece that are kept are pinned in fresh
 * slots first, then the old slot is cleared (dropping its pins), then the run
 * is advised away (MADV_DONTNEED). So any page can go, in any order, with no
 * split of the mapping.
 */
import { EMPTY, IN_USE, type Chunk } from "./chunks.js";
import { MADV_DONTNEED } from "./native.js";
import { lockRefused, mapAnonymous, type Memory, type MemoryContext } from "./memory.js";
import type { SystemCallError } from "./errors.js";
import { systemError, type PageSystem } from "./page-system.js";

/** Fixed buffers a ring can have (the kernel's IORING_MAX_REG_BUFFERS). */
export const RING_SLOTS = 16384;

interface Ring {
  readonly fd: number;
  /** Slots cleared, to reuse. */
  readonly free: number[];
  /** Slots from here on were never used. */
  next: number;
}

interface Piece {
  readonly chunk: Chunk;
  readonly start: number;
  readonly end: number;
}

/** Opens a ring with an empty sparse table of `slots` buffers: its file descriptor, or why not. */
export function openRing(system: PageSystem, slots: number): number | SystemCallError {
  const fd = system.ringSetup(1);
  if (fd === -1) return systemError(system, "io_uring_setup");
  if (system.ringSparse(fd, slots) === 0) return fd;
  const error = systemError(system, "io_uring_register");
  system.close(fd);
  return error;
}

export class PinnedMemory implements Memory {
  readonly kind = "pinned";
  readonly returnsRuns = true;
  /** Pinned memory pins 2 MB pages too. */
  readonly buffers = this;
  private readonly rings: Ring[] = [];
  /** For each chunk, the piece (global slot: ring * RING_SLOTS + slot) pinning each of its slots, -1 for none. */
  private readonly pieceOf = new Map<Chunk, Int32Array>();
  private readonly pieces = new Map<number, Piece>();

  constructor(private readonly context: MemoryContext) {}

  /** Pieces pinned now (slots of the rings in use). */
  get pinnedPieces(): number {
    return this.pieces.size;
  }

  /** Rings open now. */
  get ringCount(): number {
    return this.rings.length;
  }

  defaultChunkPages(): number {
    return 65536;
  }

  map(bytes: number): number {
    return mapAnonymous(this.context, bytes);
  }

  hold(chunk: Chunk, start: number, end: number): boolean {
    const { table } = this.context;
    const pieceOf = this.slotsOf(chunk);
    chunk.state.fill(IN_USE, start, end);
    chunk.inUse += end - start;
    // Slots still pinned (idle, used before) are kept as they are; each run of the others is pinned as a piece.
    let from = start;
    while (from < end) {
      if (pieceOf[from] !== -1) {
        from++;
        continue;
      }
      let to = from + 1;
      while (to < end && pieceOf[to] === -1) to++;
      if (this.pin(chunk, from, to) === -1) {
        const why = this.lastWhy;
        for (let slot = start; slot < end; slot++) table.setIdle(chunk, slot);
        this.release(chunk, start, end);
        this.context.failed(why); // the refused pin, not a release it made wait
        return false;
      }
      table.present += to - from;
      from = to;
    }
    return true;
  }

  release(chunk: Chunk, start: number, end: number): void {
    const { table, system } = this.context;
    const pieceOf = this.slotsOf(chunk);
    let from = start;
    while (from < end) {
      const id = pieceOf[from]!;
      if (id === -1) {
        chunk.state[from++] = EMPTY; // never pinned (a hold that failed)
        continue;
      }
      const piece = this.pieces.get(id)!;
      const to = Math.min(end, piece.end);
      const why = this.cut(id, piece, from, to);
      if (why !== undefined) {
        this.context.wait(chunk, from, to, why);
      } else {
        chunk.state.fill(EMPTY, from, to);
        table.present -= to - from;
        // Unpinned now; a failed MADV_DONTNEED leaves them resident but ordinary memory the kernel may reclaim.
        if (system.madvise(chunk.address + from * 4096, (to - from) * 4096, MADV_DONTNEED) !== 0) {
          this.context.failed(systemError(system, "madvise").message);
        }
      }
      from = to;
    }
  }

  discard(chunk: Chunk, slot: number): void {
    this.release(chunk, slot, slot + 1);
  }

  /** Clears every piece of the chunk. */
  forget(chunk: Chunk): boolean {
    const pieceOf = this.pieceOf.get(chunk);
    if (pieceOf === undefined) return true;
    for (let slot = 0; slot < pieceOf.length; slot++) {
      const id = pieceOf[slot]!;
      if (id === -1) continue;
      const piece = this.pieces.get(id)!;
      if (!this.unpin(id)) {
        this.context.failed(systemError(this.context.system, "io_uring_register").message);
        return false;
      }
      pieceOf.fill(-1, piece.start, piece.end);
    }
    this.pieceOf.delete(chunk);
    return true;
  }

  /** Drops every pin now, and closes the rings. */
  close(): void {
    for (const ring of this.rings) {
      this.context.system.ringUnregister(ring.fd);
      this.context.system.close(ring.fd);
    }
    this.rings.length = 0;
    this.pieces.clear();
    this.pieceOf.clear();
  }

  private slotsOf(chunk: Chunk): Int32Array {
    let pieceOf = this.pieceOf.get(chunk);
    if (pieceOf === undefined) this.pieceOf.set(chunk, (pieceOf = new Int32Array(chunk.state.length).fill(-1)));
    return pieceOf;
  }

  /**
   * Takes slots [from, to) of a piece out of it: the parts kept are pinned in
   * fresh slots first, then the piece's slot is cleared. Undefined when done;
   * else why not, and the piece is as it was.
   */
  private cut(id: number, piece: Piece, from: number, to: number): string | undefined {
    const kept: number[] = [];
    const undo = (why: string) => {
      for (const fresh of kept) this.unpin(fresh);
      this.slotsOf(piece.chunk).fill(id, piece.start, piece.end);
      return why;
    };
    for (const [start, end] of [
      [piece.start, from],
      [to, piece.end],
    ] as const) {
      if (start === end) continue;
      const fresh = this.pin(piece.chunk, start, end);
      if (fresh === -1) return undo(`the release waits: ${this.lastWhy}`);
      kept.push(fresh);
    }
    if (!this.unpin(id)) return undo(`the release waits: ${systemError(this.context.system, "io_uring_register").message}`);
    this.slotsOf(piece.chunk).fill(-1, from, to);
    return undefined;
  }

  private lastWhy = "";

  /** Pins slots [start, end) of a chunk in a fresh slot: its id, or -1 (the reason told). */
  private pin(chunk: Chunk, start: number, end: number): number {
    const id = this.pinBuffer(chunk.address + start * 4096, (end - start) * 4096);
    if (id === -1) return -1;
    this.pieces.set(id, { chunk, start, end });
    this.slotsOf(chunk).fill(id, start, end);
    return id;
  }

  /** Clears a piece's slot: its pages are pinned no more. */
  private unpin(id: number): boolean {
    if (!this.unpinBuffer(id)) return false;
    this.pieces.delete(id);
    return true;
  }

  /**
   * Pins [address, address + length) as one fixed buffer, faulting it in (a
   * 2 MB page's too): its slot's id, or -1 (the reason told, RLIMIT_MEMLOCK's
   * line included).
   */
  pinBuffer(address: number, length: number): number {
    const id = this.takeSlot();
    if (id === -1) return -1;
    const ring = this.rings[Math.floor(id / RING_SLOTS)]!;
    if (this.context.system.ringUpdate(ring.fd, id % RING_SLOTS, address, length) < 0) {
      ring.free.push(id % RING_SLOTS);
      lockRefused(this.context, "io_uring_register");
      this.lastWhy = systemError(this.context.system, "io_uring_register").message;
      return -1;
    }
    return id;
  }

  /** Clears a slot {@link pinBuffer} filled: false when the kernel refused (it stays pinned). */
  unpinBuffer(id: number): boolean {
    const ring = this.rings[Math.floor(id / RING_SLOTS)]!;
    if (this.context.system.ringUpdate(ring.fd, id % RING_SLOTS, 0, 0) < 0) return false;
    ring.free.push(id % RING_SLOTS);
    return true;
  }

  /** A free slot of some ring (a new ring when all are full): its global id, or -1. */
  private takeSlot(): number {
    for (const [index, ring] of this.rings.entries()) {
      if (ring.free.length > 0) return index * RING_SLOTS + ring.free.pop()!;
      if (ring.next < RING_SLOTS) return index * RING_SLOTS + ring.next++;
    }
    const fd = openRing(this.context.system, RING_SLOTS);
    if (typeof fd !== "number") {
      this.lastWhy = fd.message;
      this.context.failed(this.lastWhy);
      return -1;
    }
    this.rings.push({ fd, free: [], next: 1 });
    return (this.rings.length - 1) * RING_SLOTS;
  }
}
