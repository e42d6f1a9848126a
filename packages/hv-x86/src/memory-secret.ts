/*
 * Secret memory: memfd_secret(2) files mapped shared. The kernel never
 * migrates secret pages, but it removes each from its direct map (splitting
 * the kernel's 1 GiB and 2 MiB mappings for good) and will not punch or
 * advise them away: a chunk's pages go back only with the whole chunk, so
 * chunks are small. A page is faulted in by a read of /dev/zero into it.
 */
import { EMPTY, IN_USE, SPOILT, type Chunk } from "./chunks.js";
import { MADV_DONTFORK, MAP_SHARED, PROT_READ, PROT_WRITE } from "./native.js";
import { lockRefused, type Memory, type MemoryContext } from "./memory.js";
import { systemError } from "./page-system.js";

export class SecretMemory implements Memory {
  readonly kind = "secret";
  readonly returnsRuns = false;

  constructor(private readonly context: MemoryContext) {}

  /** The smallest power of two from 1024 (4 MiB) that keeps MemTotal within 8192 chunks. */
  defaultChunkPages(totalPages: number): number {
    let chunkPages = 1024;
    while (chunkPages < 65536 && totalPages / chunkPages > 8192) chunkPages *= 2;
    return chunkPages;
  }

  /** A memfd_secret file of one chunk, mapped shared; the file is closed at once (the mapping keeps it). */
  map(bytes: number): number {
    const { system } = this.context;
    const fd = system.memfdSecret(0);
    if (fd === -1) {
      this.context.failed(systemError(system, "memfd_secret").message);
      return -1;
    }
    try {
      if (system.ftruncate(fd, bytes) !== 0) {
        this.context.failed(systemError(system, "ftruncate").message);
        return -1;
      }
      // The kernel counts the whole mapping against RLIMIT_MEMLOCK now.
      const address = system.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (address === -1) {
        lockRefused(this.context, "mmap", ", which counts secret memory by the size of its mappings");
        return -1;
      }
      // Secret memory is already kept out of core dumps; keep it from forked children too.
      system.madvise(address, bytes, MADV_DONTFORK);
      return address;
    } finally {
      system.close(fd);
    }
  }

  /** A slot used before is still there; a new one is faulted in. */
  hold(chunk: Chunk, start: number, end: number): boolean {
    const { table, system } = this.context;
    const state = chunk.state;
    let first = start;
    while (first < end && state[first] !== EMPTY) first++;
    // A read may stop short (a signal, or io_uring's task work, pending): it goes on while it makes progress.
    let filled = first;
    let read = 0;
    while (filled < end && (read = system.fill(chunk.address + filled * 4096, (end - filled) * 4096)) >= 4096) filled += Math.floor(read / 4096);
    if (filled < end) this.context.failed(read < 0 ? systemError(system, "read").message : "the kernel could not fault in secret memory");
    for (let slot = start; slot < end; slot++) {
      if (state[slot] === EMPTY && slot >= filled) continue;
      if (state[slot] === EMPTY) table.present++;
      state[slot] = IN_USE;
      chunk.inUse++;
    }
    if (filled === end) return true;
    // What was faulted in stays with the chunk, free; the rest goes back on the hole stack as it was.
    for (let slot = start; slot < end; slot++) {
      if (state[slot] === IN_USE) table.setIdle(chunk, slot);
      else chunk.holes[chunk.holeCount++] = slot;
    }
    return false;
  }

  /** Never called: secret memory goes back a chunk at a time. */
  release(): void {}

  /** A high frame is never offered again: it goes with its chunk. Any other stays free, for a later try. */
  discard(chunk: Chunk, slot: number, high: boolean): void {
    if (!high) return;
    chunk.holeCount--;
    chunk.state[slot] = SPOILT;
  }

  forget(): boolean {
    return true;
  }

  close(): void {}
}
