/*
 * How the page source keeps a page on its frame: a memory, one of three,
 * behind one interface, chosen once when the source opens.
 *
 * - pinned (memory-pinned.ts): anonymous memory pinned as io_uring fixed
 *   buffers, a long-term pin that compaction, offlining, NUMA balancing and
 *   copy-on-write all respect; any page goes back in any order.
 * - secret (memory-secret.ts): memfd_secret(2) memory, never migrated, but
 *   removed from the kernel's direct map and returned a whole chunk at a time.
 * - mlock (memory-mlock.ts): locked anonymous memory, which compaction may
 *   move (the frame check repairs it).
 *
 * The default is the first of these the kernel allows; each fall-back is said
 * once, with its reason.
 */
import { PAGE_SIZE } from "@vmballoon/protocol";
import type { Chunk, ChunkTable } from "./chunks.js";
import { MADV_DONTDUMP, MADV_DONTFORK, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./native.js";
import { systemError, type PageSystem } from "./page-system.js";

/** How the source keeps a page on its frame: see `PageSourceOptions.memory`. */
export type PageMemory = "pinned" | "secret" | "mlock";

/** The memories, in the order the default tries them. */
export const PAGE_MEMORIES: readonly PageMemory[] = ["pinned", "secret", "mlock"];

/** What a memory needs of the page source. */
export interface MemoryContext {
  readonly system: PageSystem;
  readonly table: ChunkTable;
  /** Records why the last allocation or release failed, in a few words. */
  readonly failed: (why: string) => void;
  /** Tells the caller about a limit, once for each kind. */
  readonly limit: (kind: string, message: string) => void;
  /** Idle slots [start, end) of a chunk could not go back now: they stay held and counted, and are tried again at the next releaseIdle. */
  wait(chunk: Chunk, start: number, end: number, why: string): void;
}

/** A memory: how chunks are mapped, how slots are made present and held, and how they go back. */
export interface Memory {
  readonly kind: PageMemory;
  /**
   * True: freed pages are gathered and returned to the kernel in sorted runs
   * ({@link release}); false: a chunk goes back whole when its last page is
   * freed.
   */
  readonly returnsRuns: boolean;
  /** The chunk size when none is given. */
  defaultChunkPages(totalPages: number): number;
  /** Maps a new chunk's memory: its address, or -1 (the reason told through `failed`). */
  map(bytes: number): number;
  /**
   * Makes slots [start, end) of a chunk present, held and in use. False when
   * the kernel refused: then none is in use, and whatever was made present
   * stays counted (released, or waiting to be).
   */
  hold(chunk: Chunk, start: number, end: number): boolean;
  /** Returns idle slots [start, end) of a chunk to the kernel; those that cannot go now wait ({@link MemoryContext.wait}). */
  release(chunk: Chunk, start: number, end: number): void;
  /** An idle slot whose frame cannot be offered: `high` when it is above 2^32 - 1, else not present or unread. */
  discard(chunk: Chunk, slot: number, high: boolean): void;
  /** Lets go of whatever holds a chunk's pages besides its mapping, before it is unmapped: false when it cannot (the chunk stays). */
  forget(chunk: Chunk): boolean;
  /** Lets go of everything (the source closes; its chunks are unmapped after). */
  close(): void;
  /** A long-term pin of any memory, for 2 MB pages (pinned memory only; the others have no pin that keeps a 2 MB page's 512 frames). */
  readonly buffers?: PinnedBuffers;
}

/** Fixed buffers of io_uring: any memory pinned for as long as it is registered. */
export interface PinnedBuffers {
  /** Pins [address, address + length): an id, or -1 (the reason told). */
  pinBuffer(address: number, length: number): number;
  /** Drops a pin: false when the kernel refused. */
  unpinBuffer(id: number): boolean;
}

export function mebibytes(pages: number): string {
  return `${Math.round((pages * PAGE_SIZE) / 2 ** 20)} MiB`;
}

/**
 * An anonymous private mapping reserved without backing (MAP_NORESERVE), kept
 * out of huge pages (4 KB frames), core dumps and forked children, with
 * any `more` advice: its address, or -1.
 */
export function mapAnonymous(context: MemoryContext, bytes: number, more: readonly number[] = []): number {
  const { system } = context;
  const address = system.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (address === -1) {
    context.failed(systemError(system, "mmap").message);
    return -1;
  }
  // Advice, so failures do not matter.
  for (const advice of [MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DONTFORK, ...more]) system.madvise(address, bytes, advice);
  return address;
}

/**
 * A lock, pin or map refused: the reason recorded, and when RLIMIT_MEMLOCK
 * is why (ENOMEM, EAGAIN or EPERM without CAP_IPC_LOCK), one line saying how
 * to raise it, once.
 */
export function lockRefused(context: MemoryContext, syscall: string, counted = ""): void {
  const error = systemError(context.system, syscall);
  context.failed(error.message);
  const memlock = context.system.memlock();
  if (!["ENOMEM", "EAGAIN", "EPERM"].includes(error.code) || memlock.capIpcLock) return;
  const limit = memlock.limitBytes;
  const what = limit === Infinity ? "RLIMIT_MEMLOCK" : `RLIMIT_MEMLOCK (${mebibytes(limit / PAGE_SIZE)})`;
  context.limit(
    "memlock",
    `cannot lock more memory (${error.code} from ${syscall}): ${what} is reached${counted} and this process lacks CAP_IPC_LOCK; raise it (ulimit -l unlimited, LimitMEMLOCK=infinity in a systemd unit) or run as root with CAP_IPC_LOCK`,
  );
}

/** Why a memory cannot be had, as a fall-back line's reason. */
export function unavailableWhy(system: PageSystem, syscall: string, missing: string): string {
  const error = systemError(system, syscall);
  return error.code === "ENOSYS" ? missing : error.message;
}
