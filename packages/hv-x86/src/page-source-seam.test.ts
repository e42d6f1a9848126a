/*
 * The page source's error paths, run for real through its system-call seam:
 * a TestKernel answers mmap, mlock, pagemap... and refuses on demand. The
 * page source above it is the real one; no memory is locked.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ALLOC, PAGE_SIZE } from "@vmballoon/protocol";
import { NO_PAGE } from "@vmballoon/core";
import { LinuxPageSource, type PageSourceOptions } from "./page-source.js";
import { EAGAIN, ENOMEM, ENOSYS, EPERM, TestKernel } from "./test-kernel.js";
import type { CgroupLevel } from "./meminfo.js";
import { SystemCallError } from "./errors.js";
import { shuffle } from "./test-random.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";

const sources: LinuxPageSource[] = [];
afterEach(() => {
  for (const source of sources.splice(0)) source.close();
});

function open(kernel: TestKernel, options: PageSourceOptions = {}) {
  const limits: string[] = [];
  const source = LinuxPageSource.open({
    system: kernel,
    cgroup: null,
    nosleepReserve: 0,
    sleepReserve: 0,
    onLimit: (message) => limits.push(message),
    ...options,
  });
  sources.push(source);
  return { source, limits };
}

function take(source: LinuxPageSource, count: number): number[] {
  const pages: number[] = [];
  for (let i = 0; i < count; i++) {
    const page = source.allocate(ALLOC.CANSLEEP);
    if (page === NO_PAGE) throw new Error(`allocation ${i} failed: ${source.lastFailure}`);
    pages.push(page);
  }
  return pages;
}

/** The page source's books agree with the kernel's: pages it counts as locked are exactly those the kernel holds for it. */
function expectBooksBalanced(source: LinuxPageSource, kernel: TestKernel): void {
  expect(source.mlockedPages).toBe(kernel.heldByProcess());
  expect(source.kernelMappings).toBe(kernel.kernelMappings());
}

describe.skipIf(!linuxX64)("the page source's error paths, through its system-call seam (Linux x64: strerror comes from libc)", () => {
  describe("choosing the memory", () => {
    it("uses pinned memory where io_uring can pin, says nothing, and leaves no ring open from the probe", () => {
      const kernel = new TestKernel();
      const { source, limits } = open(kernel);
      expect(source.memory).toBe("pinned");
      expect(limits).toStrictEqual([]);
      expect(kernel.rings.size).toBe(0);
    });

    it.each([
      [
        "io_uring refused (EPERM: kernel.io_uring_disabled, seccomp)",
        (kernel: TestKernel) => (kernel.ringAvailable = false),
        /^EPERM: Operation not permitted, io_uring_setup: kernel\.io_uring_disabled or a seccomp profile/,
      ],
      [
        "no sparse buffer table (EINVAL: before Linux 5.19)",
        (kernel: TestKernel) => (kernel.sparseAvailable = false),
        /^EINVAL: Invalid argument, io_uring_register: this kernel has no sparse buffer tables/,
      ],
      [
        "no io_uring at all (ENOSYS)",
        (kernel: TestKernel) => kernel.refuse("ringSetup", ENOSYS),
        /^ENOSYS: Function not implemented, io_uring_setup: this kernel has no io_uring/,
      ],
    ])("%s: falls back to secret memory, says so once in one line with the reason and the cost, and no ring stays open", (_, breakIt, reason) => {
      const kernel = new TestKernel();
      breakIt(kernel);
      const { source, limits } = open(kernel);
      expect(source.memory).toBe("secret");
      take(source, 600);
      expect(limits).toHaveLength(1);
      expect(limits[0]).toMatch(/^io_uring cannot pin memory \((.*)\): pages come from memfd_secret instead, .*direct map/);
      expect(/^io_uring cannot pin memory \((.*)\):/.exec(limits[0]!)![1]).toMatch(reason);
      expect(limits[0]).not.toContain("\n");
      expect(kernel.rings.size).toBe(0);
    });

    it('memory: "pinned" where io_uring is refused is that SystemCallError', () => {
      const kernel = new TestKernel();
      kernel.ringAvailable = false;
      expect(() => open(kernel, { memory: "pinned" })).toThrow(/^EPERM: Operation not permitted, io_uring_setup$/);
    });

    it("without io_uring nor memfd_secret (ENOSYS) falls back to mlock and says each fall-back once, with what it costs and what prevents moves", () => {
      const kernel = new TestKernel();
      kernel.ringAvailable = false;
      kernel.secretAvailable = false;
      const { source, limits } = open(kernel);
      expect(source.memory).toBe("mlock");
      take(source, 600);
      expect(limits).toHaveLength(2);
      expect(limits[0]).toMatch(/^io_uring cannot pin memory \(EPERM: .* forbids it\)$/);
      limits.shift();
      expect(limits[0]).toMatch(
        /^memfd_secret is not available \(this kernel has no secret memory .*\): pages are locked with mlock instead, which compaction may move; the frame check .* repairs moved pages .*vm\.compact_unevictable_allowed=0/,
      );
      expect(limits[0]).not.toContain("\n");
    });

    it('memory: "secret" where the kernel has none is a SystemCallError (ENOSYS)', () => {
      const kernel = new TestKernel();
      kernel.secretAvailable = false;
      expect(() => open(kernel, { memory: "secret" })).toThrow(SystemCallError);
      expect(() => open(kernel, { memory: "secret" })).toThrow(/^ENOSYS: Function not implemented, memfd_secret$/);
    });
  });

  describe("RLIMIT_MEMLOCK and CAP_IPC_LOCK", () => {
    it("mlock refused (ENOMEM) without CAP_IPC_LOCK: no page, nothing counted, one line saying how to raise the limit, once", () => {
      const kernel = new TestKernel();
      kernel.capIpcLock = false;
      const { source, limits } = open(kernel, { memory: "mlock" });
      kernel.refuse("mlock", ENOMEM);
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(source.allocate(ALLOC.CANSLEEP)).toBe(NO_PAGE);
      expect(source.lastFailure).toBe("ENOMEM: Cannot allocate memory, mlock");
      expect(limits).toStrictEqual([
        "cannot lock more memory (ENOMEM from mlock): RLIMIT_MEMLOCK (8 MiB) is reached and this process lacks CAP_IPC_LOCK; raise it (ulimit -l unlimited, LimitMEMLOCK=infinity in a systemd unit) or run as root with CAP_IPC_LOCK",
      ]);
      expect([source.heldPages, source.mlockedPages]).toStrictEqual([0, 0]);
      expectBooksBalanced(source, kernel);

      // The limit raised: pages come again.
      kernel.allow("mlock");
      expect(take(source, 10)).toHaveLength(10);
      expect(source.heldPages).toBe(10);
      expectBooksBalanced(source, kernel);
    });

    it("an RLIMIT_MEMLOCK of 0 (EPERM) is the same line", () => {
      const kernel = new TestKernel();
      kernel.capIpcLock = false;
      kernel.memlockLimitBytes = 0;
      const { source, limits } = open(kernel, { memory: "mlock" });
      kernel.refuse("mlock", EPERM);
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(limits).toHaveLength(1);
      expect(limits[0]).toMatch(/^cannot lock more memory \(EPERM from mlock\): RLIMIT_MEMLOCK \(0 MiB\) is reached/);
    });

    it("secret memory's mapping refused (EAGAIN: it counts against RLIMIT_MEMLOCK by size) is said too", () => {
      const kernel = new TestKernel();
      kernel.capIpcLock = false;
      const { source, limits } = open(kernel, { memory: "secret" });
      kernel.refuse("mmap", EAGAIN);
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(limits).toHaveLength(1);
      expect(limits[0]).toMatch(
        /^cannot lock more memory \(EAGAIN from mmap\): RLIMIT_MEMLOCK \(8 MiB\) is reached, which counts secret memory by the size of its mappings and this process lacks CAP_IPC_LOCK/,
      );
      expect(source.mappings).toBe(0);
    });

    it("with CAP_IPC_LOCK an ENOMEM is memory running out, not a limit: no line", () => {
      const kernel = new TestKernel();
      const { source, limits } = open(kernel, { memory: "mlock" });
      kernel.refuse("mlock", ENOMEM);
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(limits).toStrictEqual([]);
      expect(source.lastFailure).toBe("ENOMEM: Cannot allocate memory, mlock");
    });
  });

  describe("a failed call never loses a page from the books", () => {
    it("mmap failing: no page, no chunk, the reason kept", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock" });
      kernel.refuse("mmap", ENOMEM);
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(source.lastFailure).toBe("ENOMEM: Cannot allocate memory, mmap");
      expect([source.mappings, source.mlockedPages, source.heldPages]).toStrictEqual([0, 0, 0]);
    });

    it("a page that pagemap says is not present after mlock is never offered, and goes back to the kernel", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock", batchPages: 8, chunkPages: 512 });
      take(source, 1); // slots 0-7 locked, 0 handed out
      // Slot 8 is the first of the next batch: pagemap will say it is not present.
      const chunk = [...kernel.mappings.values()].find((m) => !m.secret && m.pages === 512)!;
      kernel.hidden.add(chunk.start + 8);
      const pages = take(source, 20);
      expect(pages).not.toContain(8);
      expect(source.lastFailure).toBe("page not present after it was held");
      expect(kernel.mlockedPages.has(chunk.start + 8)).toBe(false);
      source.releaseIdle();
      expect(source.heldPages).toBe(21);
      expect(source.mlockedPages).toBe(21);
      expectBooksBalanced(source, kernel);
    });

    it("munlock failing: the pages stay locked and counted, and the next releaseIdle returns them", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock", chunkPages: 512 });
      const [keep, ...pages] = take(source, 300);
      kernel.refuse("munlock", ENOMEM);
      for (const page of pages.reverse()) source.free(page);
      source.releaseIdle();
      expect(source.heldPages).toBe(1);
      expect(source.mlockedPages).toBe(512); // two batches of 256 were locked
      expect(source.lastFailure).toBe("ENOMEM: Cannot allocate memory, munlock");
      expectBooksBalanced(source, kernel);

      kernel.allow("munlock");
      source.releaseIdle();
      expect(source.mlockedPages).toBe(1);
      expectBooksBalanced(source, kernel);
      source.free(keep!);
      source.releaseIdle();
      expect([source.mlockedPages, source.mappings, kernel.mappings.size]).toStrictEqual([0, 0, 0]);
    });

    it("madvise(MADV_DONTNEED) failing: unlocked (so no longer counted as locked), and the reason kept", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock", chunkPages: 512 });
      const [, ...pages] = take(source, 100);
      kernel.refuse("madvise", ENOMEM);
      for (const page of pages.reverse()) source.free(page);
      source.releaseIdle();
      expect(source.mlockedPages).toBe(1);
      expect(kernel.mlockedPages.size).toBe(1);
      expect(source.lastFailure).toBe("ENOMEM: Cannot allocate memory, madvise");
    });

    it("munmap failing: the chunk is kept, and close() still unmaps it", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock", chunkPages: 512 });
      const pages = take(source, 10);
      kernel.refuse("munmap", ENOMEM, 1);
      for (const page of pages.reverse()) source.free(page);
      source.releaseIdle();
      expect(source.lastFailure).toBe("ENOMEM: Cannot allocate memory, munmap");
      expect(source.mappings).toBe(1);
      source.close();
      expect(kernel.mappings.size).toBe(0);
    });

    it("secret memory that the kernel cannot fault in partway: the faulted pages stay counted, free, and are used first later", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "secret", batchPages: 64 });
      take(source, 64);
      kernel.fillBudget = 40;
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(source.lastFailure).toBe("the kernel could not fault in secret memory");
      expect([source.heldPages, source.mlockedPages]).toStrictEqual([64, 104]);
      expectBooksBalanced(source, kernel);
      kernel.fillBudget = Infinity;
      const fills = kernel.calls.get("fill");
      take(source, 64);
      expect([source.heldPages, source.mlockedPages]).toStrictEqual([128, 128]);
      expect(kernel.calls.get("fill")).toBe(fills! + 1); // the 40 were not faulted in again
      expectBooksBalanced(source, kernel);
    });

    it("secret memory goes back a whole chunk at a time: when its last page is freed", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "secret", chunkPages: 1024 });
      const pages = take(source, 1500);
      expect(source.mappings).toBe(2);
      for (const page of pages.slice(1024).reverse()) source.free(page);
      source.releaseIdle(); // the rest of the last batch
      expect(source.mappings).toBe(1);
      expect(source.mlockedPages).toBe(1024);
      for (const page of pages.slice(0, 1023).reverse()) source.free(page);
      source.releaseIdle();
      expect([source.mappings, source.mlockedPages]).toStrictEqual([1, 1024]); // one page still held keeps its chunk
      source.free(pages[1023]!);
      expect([source.mappings, source.mlockedPages, kernel.mappings.size]).toStrictEqual([0, 0, 0]);
    });
  });

  describe("pinned memory", () => {
    it("pins each run of a batch as one fixed buffer, reads frames after the pin, and gives back any page in any order: the kept parts pinned anew first (seed 3)", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { chunkPages: 1024, batchPages: 64 });
      const pages = take(source, 1000);
      source.releaseIdle();
      expect(kernel.pinnedBuffers()).toBe(Math.ceil(1000 / 64));
      expectBooksBalanced(source, kernel);
      for (const page of pages.slice(0, 100)) expect(source.readFrame(page)).toBe(source.frameNumber(page));
      const order = shuffle([...pages], 3);
      for (const [i, page] of order.entries()) {
        source.free(page);
        if (i % 97 === 0) {
          source.releaseIdle();
          expectBooksBalanced(source, kernel);
          expect(source.mlockedPages).toBe(1000 - i - 1);
        }
      }
      source.releaseIdle();
      expect([source.mlockedPages, source.mappings, kernel.pinnedBuffers(), kernel.heldByProcess(), source.kernelMappings]).toStrictEqual([0, 0, 0, 0, 0]);
    });

    it("a pin refused (ENOMEM) without CAP_IPC_LOCK: no page, nothing held, one line saying how to raise RLIMIT_MEMLOCK, once", () => {
      const kernel = new TestKernel();
      kernel.capIpcLock = false;
      const { source, limits } = open(kernel);
      take(source, 10);
      kernel.refuse("ringUpdate", ENOMEM);
      source.releaseIdle();
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(source.lastFailure).toBe("ENOMEM: Cannot allocate memory, io_uring_register");
      expect(limits).toStrictEqual([
        "cannot lock more memory (ENOMEM from io_uring_register): RLIMIT_MEMLOCK (8 MiB) is reached and this process lacks CAP_IPC_LOCK; raise it (ulimit -l unlimited, LimitMEMLOCK=infinity in a systemd unit) or run as root with CAP_IPC_LOCK",
      ]);
      expectBooksBalanced(source, kernel);
      // The rest of the first batch waits, pinned: cutting it out needs a pin too. Once the kernel allows pins again it goes.
      expect(source.mlockedPages).toBe(256);
      kernel.allow("ringUpdate");
      source.releaseIdle();
      expect(source.mlockedPages).toBe(10);
      expectBooksBalanced(source, kernel);
    });

    it("a cut whose kept part cannot be pinned anew waits, pinned and counted, and goes at the next releaseIdle", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { chunkPages: 1024, batchPages: 64 });
      const pages = take(source, 64);
      source.free(pages[10]!);
      kernel.refuse("ringUpdate", ENOMEM, 1);
      source.releaseIdle();
      expect(source.lastFailure).toBe("the release waits: ENOMEM: Cannot allocate memory, io_uring_register");
      expect(source.mlockedPages).toBe(64);
      expectBooksBalanced(source, kernel);
      source.releaseIdle();
      expect(source.mlockedPages).toBe(63);
      expect(kernel.pinnedBuffers()).toBe(2); // [0, 10) and [11, 64)
      expectBooksBalanced(source, kernel);
      for (const page of pages) if (page !== pages[10]) expect(source.readFrame(page)).toBe(source.frameNumber(page));
    });

    it("opens another ring when one's 16,384 slots are taken, and closes them all at close()", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { chunkPages: 65536, batchPages: 1 });
      take(source, 16_385);
      expect(kernel.rings.size).toBe(2);
      expect(kernel.pinnedBuffers()).toBe(16_385);
      expectBooksBalanced(source, kernel);
      source.close();
      expect([kernel.rings.size, kernel.heldByProcess()]).toStrictEqual([0, 0]);
    });
  });

  describe("any order of frees, within a budget of mappings", () => {
    it.each([1, 2, 3])("random-order frees (seed %i) never split the mappings past the budget, and every page comes back", (seed) => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock", chunkPages: 2048, mappingBudget: 40 });
      const pages = shuffle(take(source, 5000), seed);
      let most = 0;
      for (const [i, page] of pages.entries()) {
        source.free(page);
        if (i % 500 === 0) source.releaseIdle();
        if (i % 20 === 0) most = Math.max(most, kernel.kernelMappings());
        if (i % 1000 === 0) expectBooksBalanced(source, kernel);
      }
      source.releaseIdle();
      expect(most).toBeLessThanOrEqual(40);
      expect(most).toBeGreaterThan(10); // the budget was what held it
      expect([source.heldPages, source.mlockedPages, source.mappings, kernel.mappings.size]).toStrictEqual([0, 0, 0, 0]);
    });

    it("a release that waits for room is counted as locked, and goes as soon as its neighbours do", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock", chunkPages: 512, batchPages: 16, mappingBudget: 3 });
      const pages = take(source, 512);
      // Every other page: each release would add two mappings.
      for (let i = 1; i < 500; i += 2) source.free(pages[i]!);
      source.releaseIdle();
      expect(kernel.kernelMappings()).toBeLessThanOrEqual(3);
      expect(source.mlockedPages).toBe(511); // one release fitted the budget; the others wait
      expect(source.lastFailure).toBe("the release waits: the mappings are at their budget");
      expectBooksBalanced(source, kernel);
      for (let i = 0; i < 500; i += 2) source.free(pages[i]!);
      source.releaseIdle();
      expect(source.mlockedPages).toBe(12);
      expect(source.kernelMappings).toBe(2);
      expectBooksBalanced(source, kernel);
    });
  });

  describe("the frame check", () => {
    function moving(options: PageSourceOptions = {}) {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock", chunkPages: 1024, ...options });
      const pages = take(source, 2000);
      source.releaseIdle();
      const address = (page: number) => {
        const chunk = (source as unknown as { table: { chunks: { address: number }[] } }).table.chunks[Math.floor(page / 1024)]!;
        return chunk.address + (page % 1024) * PAGE_SIZE;
      };
      return { kernel, source, pages, address };
    }

    it("finds exactly the pages the kernel moved, with the frame told and the frame now; a repaired page's frame is the new one", () => {
      const { kernel, source, pages, address } = moving();
      const told = source.frameNumber(pages[7]!);
      const now7 = kernel.move(address(pages[7]!));
      const now1500 = kernel.move(address(pages[1500]!));
      const seen: [number, number, number][] = [];
      expect(source.checkFrames((page, was, now) => (seen.push([page, was, now]), true))).toBe(2000);
      expect(seen).toStrictEqual([
        [pages[7], told, now7],
        [pages[1500], expect.any(Number), now1500],
      ]);
      expect(source.frameNumber(pages[7]!)).toBe(now7);
      expect(source.readFrame(pages[7]!)).toBe(now7);
      expect(source.checkFrames(() => true)).toBe(2000);
    });

    it("a page not repaired keeps the frame told, and is offered again at the next check", () => {
      const { kernel, source, pages, address } = moving();
      const told = source.frameNumber(pages[3]!);
      kernel.move(address(pages[3]!));
      let calls = 0;
      source.checkFrames(() => (calls++, false));
      expect(source.frameNumber(pages[3]!)).toBe(told);
      source.checkFrames(() => (calls++, true));
      expect(calls).toBe(2);
    });

    it("a page not present is reported with -1", () => {
      const { kernel, source, pages, address } = moving();
      kernel.hidden.add(address(pages[9]!) / PAGE_SIZE);
      const seen: number[] = [];
      source.checkFrames((_page, _was, now) => (seen.push(now), true));
      expect(seen).toStrictEqual([-1]);
    });

    it("reads pagemap only when the kernel has migrated pages since the last read, and at least every 64th check", () => {
      const { kernel, source, pages, address } = moving();
      source.checkFrames(() => true);
      const reads = () => kernel.calls.get("readPagemap") ?? 0;
      let before = reads();
      for (let i = 0; i < 10; i++) expect(source.checkFrames(() => true)).toBe(2000);
      expect(reads()).toBe(before);
      const scans = source.frameScans;
      kernel.move(address(pages[0]!));
      let moved = 0;
      source.checkFrames(() => (moved++, true));
      expect([moved, source.frameScans, reads() > before]).toStrictEqual([1, scans + 1, true]);
      before = reads();
      for (let i = 0; i < 64; i++) source.checkFrames(() => true);
      expect(source.frameScans).toBe(scans + 2);
    });

    it('frameCheck: "always" reads pagemap every time; a failed read checks nothing and tries again next time', () => {
      const { kernel, source } = moving({ frameCheck: "always" });
      const scans = source.frameScans;
      source.checkFrames(() => true);
      source.checkFrames(() => true);
      expect(source.frameScans).toBe(scans + 2);
      kernel.refuse("readPagemap", EAGAIN, 2);
      expect(source.checkFrames(() => true)).toBe(0);
      expect(source.lastFailure).toBe("reading /proc/self/pagemap failed: frames not checked");
    });

    it("the pages of the last batch not handed out are not checked", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { memory: "mlock", chunkPages: 1024 });
      take(source, 10); // a batch of 256 was locked
      expect(source.mlockedPages).toBe(256);
      expect(source.checkFrames(() => true)).toBe(10);
    });
  });

  describe("a memory cgroup's limit", () => {
    /** A cgroup of 512 MiB whose usage is `base` plus the pages the kernel holds locked for the source. */
    function cgroup(kernel: TestKernel, base: number, inactiveFilePages = 0) {
      const level = (): CgroupLevel => ({
        path: "/sys/fs/cgroup/memory/box",
        limitFile: "memory.limit_in_bytes",
        limitPages: 131072,
        usagePages: base + kernel.mlockedPages.size,
        inactiveFilePages,
      });
      return { read: () => [level()], close: () => {} };
    }

    it("NOSLEEP stops 1/16 of the limit (at least 32 MiB) below it; the line says which cgroup and how to raise it, once", () => {
      const kernel = new TestKernel();
      const { source, limits } = open(kernel, { cgroup: cgroup(kernel, 100_000), memory: "mlock" });
      let pages = 0;
      while (source.allocate(ALLOC.NOSLEEP) !== NO_PAGE) pages++;
      expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
      expect(100_000 + source.mlockedPages).toBe(131072 - 8192);
      expect(pages).toBe(source.mlockedPages);
      expect(source.lastFailure).toBe("the memory cgroup /sys/fs/cgroup/memory/box is at its reserve");
      expect(limits).toStrictEqual([
        "the memory cgroup /sys/fs/cgroup/memory/box limits this process to 512 MiB (memory.limit_in_bytes), 480 MiB in use: the balloon stops 32 MiB below it; raise memory.limit_in_bytes (MemoryMax= in a systemd unit) to balloon more",
      ]);
    });

    it("CANSLEEP may take the cgroup's inactive file cache (reclaim) but stops 1/32 of the limit (at least 16 MiB) below the rest", () => {
      const kernel = new TestKernel();
      const { source } = open(kernel, { cgroup: cgroup(kernel, 100_000, 5000), memory: "mlock" });
      while (source.allocate(ALLOC.CANSLEEP) !== NO_PAGE);
      expect(100_000 + source.mlockedPages).toBe(131072 + 5000 - 4096);
    });
  });
});
