/*
 * mlock memory: anonymous memory locked with mlock(2). Locked pages stay
 * resident but compaction may migrate them (vm.compact_unevictable_allowed=1
 * by default), so the frame check finds and repairs the pages that moved.
 * Kept from forked children (MADV_DONTFORK: no copy-on-write moves) and from
 * KSM merging (MADV_UNMERGEABLE). Every split of a mapping (where locked and
 * unlocked pages meet) is counted, and a release that would take the
 * mappings past their budget waits until its neighbours are free too.
 */
import { IDLE, IN_USE, EMPTY, type Chunk } from "./chunks.js";
import { MADV_DONTNEED, MADV_UNMERGEABLE } from "./native.js";
import { lockRefused, mapAnonymous, type Memory, type MemoryContext } from "./memory.js";
import { systemError } from "./page-system.js";

export class MlockMemory implements Memory {
  readonly kind = "mlock";
  readonly returnsRuns = true;

  constructor(private readonly context: MemoryContext) {}

  defaultChunkPages(): number {
    return 65536;
  }

  map(bytes: number): number {
    return mapAnonymous(this.context, bytes, [MADV_UNMERGEABLE]);
  }

  hold(chunk: Chunk, start: number, end: number): boolean {
    const { table, system } = this.context;
    const state = chunk.state;
    const before = table.splitsAround(chunk, start, end);
    let newlyLocked = 0;
    for (let slot = start; slot < end; slot++) {
      if (state[slot] === EMPTY) newlyLocked++;
      state[slot] = IN_USE;
    }
    chunk.inUse += end - start;
    table.present += newlyLocked;
    table.addSplits(chunk, table.splitsAround(chunk, start, end) - before);
    if (system.mlock(chunk.address + start * 4096, (end - start) * 4096) === 0) return true;
    lockRefused(this.context, "mlock");
    // mlock may have locked part of the range before it failed: all of it goes back.
    for (let slot = start; slot < end; slot++) table.setIdle(chunk, slot);
    this.release(chunk, start, end);
    return false;
  }

  release(chunk: Chunk, start: number, end: number): void {
    const { table, system } = this.context;
    const state = chunk.state;
    const before = table.splitsAround(chunk, start, end);
    state.fill(EMPTY, start, end);
    const delta = table.splitsAround(chunk, start, end) - before;
    state.fill(IDLE, start, end);
    if (delta > 0 && table.mappingCount + delta > table.mappingBudget) {
      this.context.wait(chunk, start, end, "the release waits: the mappings are at their budget");
      return;
    }
    const address = chunk.address + start * 4096;
    const length = (end - start) * 4096;
    if (system.munlock(address, length) !== 0) {
      this.context.wait(chunk, start, end, systemError(system, "munlock").message);
      return;
    }
    state.fill(EMPTY, start, end);
    // Unlocked now; a failed MADV_DONTNEED leaves them resident but ordinary memory the kernel may reclaim.
    if (system.madvise(address, length, MADV_DONTNEED) !== 0) this.context.failed(systemError(system, "madvise").message);
    table.addSplits(chunk, delta);
    table.present -= end - start;
  }

  discard(chunk: Chunk, slot: number): void {
    this.release(chunk, slot, slot + 1);
  }

  forget(): boolean {
    return true;
  }

  close(): void {}
}
