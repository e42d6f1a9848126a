/*
 * Frame numbers from /proc/self/pagemap: the frames of a run just made
 * present, one page's frame now, the check that frame numbers are visible at
 * all, and the frame check (every page handed out read again, after every
 * cycle of `run`), which reads pagemap only when the kernel says it migrated
 * pages since the last read.
 */
import { MAX_PFN, PAGE_SIZE } from "@vmballoon/protocol";
import { IN_USE, type ChunkTable } from "./chunks.js";
import { HvError } from "./errors.js";
import { MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./native.js";
import { systemError, type PageSystem } from "./page-system.js";

/** What the frame check calls for a page whose frame is not the one `frameNumber` gave. */
export type MovedPage = (page: number, told: number, now: number) => boolean;

const PAGEMAP_PRESENT = 0x8000_0000; // bit 63, in the high word
const PAGEMAP_PFN_HIGH = 0x7f_ffff; // bits 32-54: the frame number is bits 0-54
/** Pagemap entries read at once by the frame check: 512 KiB. */
const CHECK_PIECE = 65536;

/** The frame number in a pagemap entry, or -1 when the page is not present. */
export function entryFrame(low: number, high: number): number {
  if ((high & PAGEMAP_PRESENT) === 0) return -1;
  return (high & PAGEMAP_PFN_HIGH) * 2 ** 32 + low;
}

export class FrameReader {
  /** Pagemap entries: of one run, or of a piece of the frame check. */
  private readonly entries: Buffer;
  private readonly words: Uint32Array;
  /** Frame checks that read pagemap. */
  scans = 0;
  /** The kernel's migration count at the start of the last scan. */
  private migratedAtScan = -1;
  private checksSinceScan = 0;

  constructor(
    private readonly system: PageSystem,
    runPages: number,
    private readonly always: boolean,
  ) {
    this.entries = Buffer.alloc(Math.max(runPages, CHECK_PIECE) * 8);
    this.words = new Uint32Array(this.entries.buffer, this.entries.byteOffset, this.entries.length / 4);
  }

  /** Reads the frames of `pages` pages from `address`, each told to `frames` (-1: not present, or pagemap unread: `read` false). */
  readRun(address: number, pages: number, frames: (index: number, frame: number, read: boolean) => void): void {
    const length = pages * 8;
    const read = this.system.readPagemap(this.entries, length, (address / PAGE_SIZE) * 8) === length;
    for (let i = 0; i < pages; i++) frames(i, read ? entryFrame(this.words[i * 2]!, this.words[i * 2 + 1]!) : -1, read);
  }

  /** The frame of the page at `address` now, or -1. */
  frameAt(address: number): number {
    if (this.system.readPagemap(this.entries, 8, (address / PAGE_SIZE) * 8) !== 8) return -1;
    return entryFrame(this.words[0]!, this.words[1]!);
  }

  /**
   * The frame check over every slot in use except `skip` (pages not handed
   * out): see `LinuxPageSource.checkFrames`. `failed` hears of a piece of
   * pagemap that could not be read. Returns the pages checked, or undefined
   * when the check did not need to read pagemap.
   */
  check(table: ChunkTable, skip: ReadonlySet<number>, moved: MovedPage, failed: (why: string) => void): number | undefined {
    const migrated = this.system.migratedPages();
    if (!this.always && migrated !== -1 && migrated === this.migratedAtScan && ++this.checksSinceScan < 64) return undefined;
    this.migratedAtScan = migrated;
    this.checksSinceScan = 0;
    this.scans++;
    let checked = 0;
    const words = this.words;
    for (const chunk of table.chunks) {
      if (chunk === undefined || chunk.inUse === 0) continue;
      const base = chunk.index * table.chunkPages;
      const { state, frames } = chunk;
      for (let start = 0; start < chunk.bump; start += CHECK_PIECE) {
        const end = Math.min(chunk.bump, start + CHECK_PIECE);
        const length = (end - start) * 8;
        if (this.system.readPagemap(this.entries, length, (chunk.address / PAGE_SIZE + start) * 8) !== length) {
          failed("reading /proc/self/pagemap failed: frames not checked");
          this.migratedAtScan = -1; // the next check reads again
          continue;
        }
        for (let slot = start; slot < end; slot++) {
          if (state[slot] !== IN_USE) continue;
          if (skip.size !== 0 && skip.has(base + slot)) continue;
          checked++;
          const at = (slot - start) << 1;
          const high = words[at + 1]!;
          const told = frames[slot]!;
          if ((high & PAGEMAP_PRESENT) !== 0 && (high & PAGEMAP_PFN_HIGH) === 0 && words[at] === told) continue;
          const now = entryFrame(words[at]!, high);
          if (now === told) continue;
          if (!moved(base + slot, told, now))
            this.migratedAtScan = -1; // not repaired: the next check tries again
          else if (now > 0 && now <= MAX_PFN) frames[slot] = now;
        }
      }
    }
    return checked;
  }
}

/** Maps one page populated, and reads its frame: zero means pagemap hides frames from this process. */
export function checkFramesVisible(system: PageSystem): void {
  const address = system.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (address === -1) throw systemError(system, "mmap");
  try {
    const entry = Buffer.alloc(8);
    const read = system.readPagemap(entry, 8, (address / PAGE_SIZE) * 8);
    if (read !== 8 || entryFrame(entry.readUInt32LE(0), entry.readUInt32LE(4)) <= 0) {
      throw new HvError("E_FRAMES_HIDDEN", "reading frame numbers from /proc/self/pagemap needs CAP_SYS_ADMIN (run as root): this process sees them as 0");
    }
  } finally {
    system.munmap(address, PAGE_SIZE);
  }
}
