/*
 * 2 MB pages for today's driver, where the guest has a hugetlb pool
 * (vm.nr_hugepages) and the memory can pin (pinned memory): each a
 * MAP_HUGETLB mapping of its own, pinned as one io_uring fixed buffer, its
 * first frame read after the pin and checked 512-aligned. Hugetlb pages are
 * never compacted, and the pin keeps them from offlining and migration too.
 *
 * Handles: {@link HUGE_BASE} + index * 512 for a 2 MB page, and + i for its
 * 4 KB parts once it is split (the driver splits a 2 MB page the host
 * refused, and balloons or frees the 512 parts one by one). A hugetlb page
 * cannot go back in parts: it is unpinned and unmapped when its last part is
 * freed.
 */
import { MAX_PFN } from "@vmballoon/protocol";
import { NO_PAGE } from "@vmballoon/core";
import type { FrameReader, MovedPage } from "./frame-scan.js";
import type { PinnedBuffers } from "./memory.js";
import { MADV_DONTDUMP, MADV_DONTFORK, MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./native.js";
import { systemError, type PageSystem } from "./page-system.js";

/** The first handle of a 2 MB page: 4 KB pages of chunks have the handles below. */
export const HUGE_BASE = 2 ** 31;
const HUGE_PAGES = 512;
const HUGE_BYTES = HUGE_PAGES * 4096;

interface HugePage {
  readonly address: number;
  readonly pin: number;
  readonly frame: number;
  /** After a split: which of the 512 parts are still held; before, undefined. */
  parts: Uint8Array | undefined;
  held: number;
}

export class HugePages {
  private readonly pages: (HugePage | undefined)[] = [];
  /** 4 KB pages held in 2 MB pages now (512 for each). */
  present = 0;

  constructor(
    private readonly system: PageSystem,
    private readonly buffers: PinnedBuffers,
    private readonly frames: FrameReader,
    private readonly failed: (why: string) => void,
  ) {}

  /** One 2 MB page, pinned, its frames 512-aligned; or NO_PAGE (why told) without a pool, or when the kernel refuses. */
  allocate(): number {
    if (this.system.hugePagesFree() <= 0) {
      this.failed("no free 2 MB page in the hugetlb pool (vm.nr_hugepages)");
      return NO_PAGE;
    }
    let index = this.pages.indexOf(undefined);
    if (index === -1) index = this.pages.length;
    if (HUGE_BASE + (index + 1) * HUGE_PAGES >= 2 ** 32) {
      this.failed("no 2 MB page handles left");
      return NO_PAGE;
    }
    // Reserved at mmap (no MAP_NORESERVE): a pool emptied meanwhile is an ENOMEM here, not a SIGBUS later.
    const address = this.system.mmap(0, HUGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (address === -1) {
      this.failed(systemError(this.system, "mmap").message);
      return NO_PAGE;
    }
    this.system.madvise(address, HUGE_BYTES, MADV_DONTFORK);
    this.system.madvise(address, HUGE_BYTES, MADV_DONTDUMP);
    const pin = this.buffers.pinBuffer(address, HUGE_BYTES);
    if (pin === -1) {
      this.system.munmap(address, HUGE_BYTES);
      return NO_PAGE;
    }
    const frame = this.frames.frameAt(address);
    if (frame <= 0 || frame % HUGE_PAGES !== 0 || frame + HUGE_PAGES - 1 > MAX_PFN) {
      this.failed(frame <= 0 ? "2 MB page not present after it was pinned" : `2 MB page at frame ${frame}: not 512-aligned below 2^32`);
      this.buffers.unpinBuffer(pin);
      this.system.munmap(address, HUGE_BYTES);
      return NO_PAGE;
    }
    this.pages[index] = { address, pin, frame, parts: undefined, held: HUGE_PAGES };
    this.present += HUGE_PAGES;
    return HUGE_BASE + index * HUGE_PAGES;
  }

  /** Pages of 4 KB the engine holds in 2 MB pages: whole ones, and parts of split ones. */
  get held(): number {
    let held = 0;
    for (const page of this.pages) held += page?.held ?? 0;
    return held;
  }

  /** The page of a handle, or a RangeError. */
  private pageOf(handle: number, what: string): HugePage {
    const page = this.pages[Math.floor((handle - HUGE_BASE) / HUGE_PAGES)];
    if (page === undefined) throw new RangeError(`${handle >>> 0} is not a 2 MB page handed out: it cannot be ${what}`);
    return page;
  }

  /** The 2 MB page back, whole. */
  freeWhole(handle: number): void {
    const page = this.pageOf(handle, "freed as one");
    if (page.parts !== undefined) throw new RangeError(`2 MB page ${handle >>> 0} was split: its parts are freed one by one`);
    this.release(handle, page);
  }

  /** `split_page`: the 512 4 KB parts, first frame first. */
  split(handle: number): Uint32Array {
    const page = this.pageOf(handle, "split");
    page.parts = new Uint8Array(HUGE_PAGES).fill(1);
    const parts = new Uint32Array(HUGE_PAGES);
    for (let i = 0; i < HUGE_PAGES; i++) parts[i] = handle + i;
    return parts;
  }

  /** A 4 KB part back; the 2 MB page goes when its last part does. */
  freePart(handle: number): void {
    const first = HUGE_BASE + Math.floor((handle - HUGE_BASE) / HUGE_PAGES) * HUGE_PAGES;
    const page = this.pageOf(first, "freed");
    const part = handle - first;
    if (page.parts === undefined || page.parts[part] === 0) return;
    page.parts[part] = 0;
    if (--page.held === 0) this.release(first, page);
  }

  frameNumber(handle: number): number {
    return this.pageOf(handle - ((handle - HUGE_BASE) % HUGE_PAGES), "read").frame + ((handle - HUGE_BASE) % HUGE_PAGES);
  }

  /** The address of a handle's 4 KB page. */
  addressOf(handle: number): number {
    return this.pageOf(handle - ((handle - HUGE_BASE) % HUGE_PAGES), "read").address + ((handle - HUGE_BASE) % HUGE_PAGES) * 4096;
  }

  /** The frame check of the parts of split pages, which the engine holds as 4 KB pages: see `LinuxPageSource.checkFrames`. */
  check(moved: MovedPage): number {
    let checked = 0;
    for (const [index, page] of this.pages.entries()) {
      if (page?.parts === undefined) continue;
      this.frames.readRun(page.address, HUGE_PAGES, (i, now) => {
        if (page.parts![i] === 0) return;
        checked++;
        // A 2 MB page moves whole or not at all; a part that moved is reported, but cannot take a new frame alone.
        if (now !== page.frame + i) moved(HUGE_BASE + index * HUGE_PAGES + i, page.frame + i, now);
      });
    }
    return checked;
  }

  /** Unpins and unmaps every 2 MB page (the source closes). */
  close(): void {
    for (const [index, page] of this.pages.entries()) if (page !== undefined) this.release(HUGE_BASE + index * HUGE_PAGES, page);
    this.pages.length = 0;
  }

  private release(handle: number, page: HugePage): void {
    if (!this.buffers.unpinBuffer(page.pin) || this.system.munmap(page.address, HUGE_BYTES) !== 0) {
      this.failed(systemError(this.system, "munmap").message);
    }
    this.pages[(handle - HUGE_BASE) / HUGE_PAGES] = undefined;
    this.present -= HUGE_PAGES;
  }
}
