/*
 * A kernel in a test: the page source's system calls (PageSystem) answered
 * from a model, with no real memory, so that a test can make any of them fail
 * and check the page source's accounting against what the "kernel" holds.
 */
import type { PageSystem } from "./page-source.js";

const PAGE = 4096;
const MADV_DONTNEED = 4;
const MAP_POPULATE = 0x8000;
export const ENOMEM = 12;
export const EAGAIN = 11;
export const EPERM = 1;
export const ENOSYS = 38;
export const EINVAL = 22;

type Call =
  "mmap" | "munmap" | "mlock" | "munlock" | "madvise" | "memfdSecret" | "ftruncate" | "fill" | "readPagemap" | "ringSetup" | "ringSparse" | "ringUpdate";

interface Mapping {
  readonly start: number; // first virtual page
  readonly pages: number;
  readonly secret: boolean;
}

export class TestKernel implements PageSystem {
  /** Present pages: virtual page → frame. */
  readonly present = new Map<number, number>();
  /** Locked virtual pages (mlock; secret memory counts as locked while present). */
  readonly mlockedPages = new Set<number>();
  readonly mappings = new Map<number, Mapping>();
  /** Virtual pages that pagemap shows as not present even though they are. */
  readonly hidden = new Set<number>();
  readonly calls = new Map<Call, number>();
  secretAvailable = true;
  /** io_uring: setup refused with EPERM when false (kernel.io_uring_disabled, seccomp). */
  ringAvailable = true;
  /** Sparse buffer tables (Linux 5.19): refused with EINVAL when false. */
  sparseAvailable = true;
  /** Rings: fd → its table of fixed buffers (slot → first virtual page and pages), or undefined before the table is registered. */
  readonly rings = new Map<number, Map<number, { start: number; pages: number }> | undefined>();
  /** Pins on each virtual page (a page may be in two buffers while a piece is cut). */
  readonly pins = new Map<number, number>();
  /** HugePages_Free. */
  hugePages = 0;
  memlockLimitBytes = 8 * 2 ** 20;
  capIpcLock = true;
  /** The kernel's count of migrated pages. */
  migrated = 0;
  /** Pages `fill` faults in before it stops (Infinity: all). */
  fillBudget = Infinity;
  private error = 0;
  private nextPage = 0x7000_0000; // virtual page number: address 0x7000_0000_000
  private nextFrame = 0x10_0000;
  private nextFd = 100;
  private readonly refusals = new Map<Call, { errno: number; count: number }>();

  /** The next `count` calls of `call` fail with `errno`. */
  refuse(call: Call, errno: number, count = Infinity): void {
    this.refusals.set(call, { errno, count });
  }

  allow(call: Call): void {
    this.refusals.delete(call);
  }

  private refused(call: Call): boolean {
    this.calls.set(call, (this.calls.get(call) ?? 0) + 1);
    const refusal = this.refusals.get(call);
    if (refusal === undefined || refusal.count <= 0) return false;
    refusal.count--;
    this.error = refusal.errno;
    return true;
  }

  private *pagesOf(address: number, length: number): Generator<number> {
    for (let page = address / PAGE; page < (address + length) / PAGE; page++) yield page;
  }

  private mappingOf(page: number): Mapping | undefined {
    for (const mapping of this.mappings.values()) if (page >= mapping.start && page < mapping.start + mapping.pages) return mapping;
    return undefined;
  }

  private fault(page: number): void {
    if (!this.present.has(page)) this.present.set(page, this.nextFrame++);
  }

  /** The kernel migrates a present page to a new frame; returns it. */
  move(address: number): number {
    const page = address / PAGE;
    const frame = this.nextFrame++;
    this.present.set(page, frame);
    this.migrated++;
    return frame;
  }

  /** Mappings the kernel would have: one for each run of like pages (locked or not) of each mapping. */
  kernelMappings(): number {
    let count = 0;
    for (const mapping of this.mappings.values()) {
      count++;
      if (mapping.secret) continue;
      for (let page = mapping.start + 1; page < mapping.start + mapping.pages; page++) {
        if (this.mlockedPages.has(page) !== this.mlockedPages.has(page - 1)) count++;
      }
    }
    return count;
  }

  mmap(_address: number, length: number, _protection: number, flags: number, fd: number): number {
    if (this.refused("mmap")) return -1;
    const start = this.nextPage;
    this.nextPage += length / PAGE + 2 ** 18; // a gap: mappings never touch
    this.mappings.set(start, { start, pages: length / PAGE, secret: fd >= 0 });
    if (flags & MAP_POPULATE) for (const page of this.pagesOf(start * PAGE, length)) this.fault(page);
    return start * PAGE;
  }

  munmap(address: number, length: number): number {
    if (this.refused("munmap")) return -1;
    for (const page of this.pagesOf(address, length)) {
      this.present.delete(page);
      this.mlockedPages.delete(page);
    }
    this.mappings.delete(address / PAGE);
    return 0;
  }

  mlock(address: number, length: number): number {
    if (this.refused("mlock")) return -1;
    for (const page of this.pagesOf(address, length)) {
      this.fault(page);
      this.mlockedPages.add(page);
    }
    return 0;
  }

  munlock(address: number, length: number): number {
    if (this.refused("munlock")) return -1;
    for (const page of this.pagesOf(address, length)) this.mlockedPages.delete(page);
    return 0;
  }

  madvise(address: number, length: number, advice: number): number {
    if (this.refused("madvise")) return -1;
    if (advice !== MADV_DONTNEED) return 0;
    for (const page of this.pagesOf(address, length)) {
      if (this.mlockedPages.has(page)) {
        this.error = EINVAL;
        return -1;
      }
      this.present.delete(page);
    }
    return 0;
  }

  memfdSecret(): number {
    if (!this.secretAvailable) {
      this.calls.set("memfdSecret", (this.calls.get("memfdSecret") ?? 0) + 1);
      this.error = ENOSYS;
      return -1;
    }
    if (this.refused("memfdSecret")) return -1;
    return this.nextFd++;
  }

  ftruncate(): number {
    return this.refused("ftruncate") ? -1 : 0;
  }

  close(fd: number): number {
    const table = this.rings.get(fd);
    if (table !== undefined) for (const slot of [...table.keys()]) this.unpinSlot(table, slot);
    this.rings.delete(fd);
    return 0;
  }

  ringSetup(): number {
    if (this.refused("ringSetup")) return -1;
    if (!this.ringAvailable) {
      this.error = EPERM;
      return -1;
    }
    const fd = this.nextFd++;
    this.rings.set(fd, undefined);
    return fd;
  }

  ringSparse(ring: number, slots: number): number {
    if (this.refused("ringSparse")) return -1;
    if (!this.sparseAvailable || !this.rings.has(ring) || this.rings.get(ring) !== undefined || slots > 16384) {
      this.error = EINVAL;
      return -1;
    }
    this.rings.set(ring, new Map());
    return 0;
  }

  ringUpdate(ring: number, slot: number, address: number, length: number): number {
    if (this.refused("ringUpdate")) return -1;
    const table = this.rings.get(ring);
    if (table === undefined || slot >= 16384) {
      this.error = EINVAL;
      return -1;
    }
    // The new buffer is pinned before the old one is dropped.
    const pages = length / PAGE;
    if (pages > 0) {
      for (const page of this.pagesOf(address, length)) {
        if (this.mappingOf(page) === undefined) {
          this.error = 14; // EFAULT
          return -1;
        }
      }
      for (const page of this.pagesOf(address, length)) {
        this.fault(page);
        this.pins.set(page, (this.pins.get(page) ?? 0) + 1);
      }
    }
    if (table.has(slot)) this.unpinSlot(table, slot);
    if (pages > 0) table.set(slot, { start: address / PAGE, pages });
    return 1;
  }

  private unpinSlot(table: Map<number, { start: number; pages: number }>, slot: number): void {
    const buffer = table.get(slot)!;
    for (let page = buffer.start; page < buffer.start + buffer.pages; page++) {
      const count = this.pins.get(page)! - 1;
      if (count === 0) this.pins.delete(page);
      else this.pins.set(page, count);
    }
    table.delete(slot);
  }

  ringUnregister(ring: number): number {
    const table = this.rings.get(ring);
    if (table === undefined) {
      this.error = EINVAL;
      return -1;
    }
    for (const slot of [...table.keys()]) this.unpinSlot(table, slot);
    return 0;
  }

  /** Fixed buffers registered now, over all rings. */
  pinnedBuffers(): number {
    let count = 0;
    for (const table of this.rings.values()) count += table?.size ?? 0;
    return count;
  }

  hugePagesFree(): number {
    return this.hugePages;
  }

  fill(address: number, length: number): number {
    if (this.refused("fill")) return -1;
    let filled = 0;
    for (const page of this.pagesOf(address, length)) {
      if (filled >= this.fillBudget) break;
      this.fault(page);
      this.mlockedPages.add(page);
      filled++;
    }
    this.fillBudget -= filled;
    return filled * PAGE;
  }

  readPagemap(buffer: Uint8Array, length: number, position: number): number {
    if (this.refused("readPagemap")) return -1;
    const view = new DataView(buffer.buffer, buffer.byteOffset, length);
    for (let i = 0; i < length / 8; i++) {
      const page = position / 8 + i;
      const frame = this.hidden.has(page) ? undefined : this.present.get(page);
      view.setUint32(i * 8, frame === undefined ? 0 : frame % 2 ** 32, true);
      view.setUint32(i * 8 + 4, frame === undefined ? 0 : 0x8000_0000 | Math.floor(frame / 2 ** 32), true);
    }
    return length;
  }

  migratedPages(): number {
    return this.migrated;
  }

  errno(): number {
    return this.error;
  }

  memlock(): { limitBytes: number; capIpcLock: boolean } {
    return { limitBytes: this.memlockLimitBytes, capIpcLock: this.capIpcLock };
  }

  /** Present pages in secret mappings, locked ones elsewhere, and pinned pages (present or not: a pin holds the frame): what the page source holds. */
  heldByProcess(): number {
    let count = 0;
    for (const page of this.present.keys()) {
      const mapping = this.mappingOf(page);
      if (mapping !== undefined && (mapping.secret || this.mlockedPages.has(page)) && !this.pins.has(page)) count++;
    }
    return count + this.pins.size;
  }
}
