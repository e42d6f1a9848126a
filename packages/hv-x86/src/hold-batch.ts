/*
 * A batch made present: each run of neighbouring slots held by the memory
 * (pinned, faulted in or locked), then its frames read from pagemap, after
 * the hold (a pin may first move a page out of ZONE_MOVABLE). A page whose
 * frame cannot be offered (not present, or above protocol 2's 2^32 - 1) goes
 * back to the memory.
 */
import { MAX_PFN } from "@vmballoon/protocol";
import { forEachRun, type Chunk, type ChunkTable } from "./chunks.js";
import type { FrameReader } from "./frame-scan.js";
import type { Memory } from "./memory.js";

/**
 * Holds the sorted slots `taken` of a chunk and reads their frames into
 * `chunk.frames`; the slots that can be offered are moved to the front of
 * `taken`, and their count returned. `refused` hears why each other slot is
 * not offered (`high`: its frame is above 2^32 - 1).
 */
export function holdBatch(
  memory: Memory,
  frames: FrameReader,
  table: ChunkTable,
  chunk: Chunk,
  taken: Uint32Array,
  refused: (why: string, high: boolean) => void,
): number {
  let good = 0;
  forEachRun(taken, (start, end) => {
    if (!memory.hold(chunk, start, end)) return;
    frames.readRun(chunk.address + start * 4096, end - start, (i, frame, read) => {
      const slot = start + i;
      if (frame > 0 && frame <= MAX_PFN) {
        chunk.frames[slot] = frame;
        taken[good++] = slot;
        return;
      }
      const high = frame > MAX_PFN;
      refused(high ? "frame above 2^32 - 1" : read ? "page not present after it was held" : "reading /proc/self/pagemap failed", high);
      table.setIdle(chunk, slot);
      memory.discard(chunk, slot, high);
    });
  });
  return good;
}
