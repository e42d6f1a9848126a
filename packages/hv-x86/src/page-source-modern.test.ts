/*
 * The real page source as today's driver's ModernPageSource: the batch page's
 * memory is the real page's bytes; 2 MB pages are pinned hugetlb pages where
 * the guest has a pool, and refused without one (the driver then balloons
 * 4 KB pages).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { ALLOC, CAPABILITIES, MODERN_COMMANDS, PAGE_SIZE, STATUS, batchEntryPfn, batchEntryStatus } from "@vmballoon/protocol";
import { ModernBalloon, NO_PAGE } from "@vmballoon/core";
import { ModernSimMonitor } from "@vmballoon/core/sim";
import { LinuxPageSource, type PageMemory } from "./page-source.js";
import { native, SYS_MEMFD_SECRET } from "./native.js";
import { memoryWorks } from "./test-memories.js";

/** The reference monitor as large as this machine, offering every capability but the doorbell's (0x3e: 2 MB pages among them). */
function hostOffering2M(source: LinuxPageSource, memoryAt: (pfn: number) => Uint32Array | undefined): ModernSimMonitor {
  return new ModernSimMonitor({
    firstPfn: 0,
    frames: source.frameLimit(),
    totalPages: source.totalPages(),
    capabilities: 0x3e,
    startReply: "offered",
    memoryAt,
  });
}

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const root = typeof process.geteuid === "function" && process.geteuid() === 0;
const secretMemory = linuxX64 && native().libc.syscall1(SYS_MEMFD_SECRET, 0) >= 0;

const sources: LinuxPageSource[] = [];
afterEach(() => {
  for (const source of sources.splice(0)) source.close();
});

/** The frame of a virtual page from /proc/self/pagemap. */
function frameOfAddress(address: number): number {
  const fd = openSync("/proc/self/pagemap", "r");
  const entry = Buffer.alloc(8);
  readSync(fd, entry, 0, 8, (address / PAGE_SIZE) * 8);
  closeSync(fd);
  const value = entry.readBigUInt64LE(0);
  return value >> 63n === 1n ? Number(value & ((1n << 55n) - 1n)) : -1;
}

describe.skipIf(!linuxX64 || !root)("LinuxPageSource for today's driver (needs root for frame numbers)", () => {
  const memories: PageMemory[] = [
    ...(linuxX64 && root && memoryWorks("pinned") ? (["pinned"] as const) : []),
    ...(secretMemory ? (["secret"] as const) : []),
    "mlock",
  ];

  it.each(memories)("%s: pageWords is the page's own memory, zeroed, on the frame frameNumber gives", (memory) => {
    const source = LinuxPageSource.open({ memory });
    sources.push(source);
    const page = source.allocate(ALLOC.CANSLEEP);
    expect(page).not.toBe(NO_PAGE);
    const words = source.pageWords(page);
    expect(words.length).toBe(1024);
    expect(words.every((word) => word === 0)).toBe(true);
    words[0] = 0xdeadbeef;
    words[1023] = 0x12345678;
    // The same memory through a second view: the bytes live in the page, not in a copy.
    const again = source.pageWords(page);
    expect(again[0]).toBe(0); // zeroed again: __GFP_ZERO of a fresh allocation
    again[7] = 42;
    expect(words[7]).toBe(42);
    // The view's address is the page's: pagemap says the frame the host is told.
    const address = Number(native().koffi.address(again.buffer));
    expect(frameOfAddress(address)).toBe(source.frameNumber(page));
  });

  it("without a 2 MB page to give (mlock memory), the driver goes on in 4 KB pages with BATCHED_LOCK (a host offering 2 MB)", () => {
    const source = LinuxPageSource.open({ memory: "mlock" });
    sources.push(source);
    expect(source.allocateHuge()).toBe(NO_PAGE);
    expect(() => source.splitHugePage(0)).toThrow(RangeError);
    const batchPage = { frame: -1 };
    // The host reads and writes the batch page where the driver said it is: the real page's bytes.
    const monitor = hostOffering2M(source, (pfn) => (pfn === batchPage.frame ? words : undefined));
    let words: Uint32Array | undefined;
    const batched: number[][] = [];
    const balloon = new ModernBalloon(
      {
        call(command, argument, argument2) {
          const reply = monitor.call(command, argument, argument2);
          if (command === MODERN_COMMANDS.BATCHED_LOCK && words !== undefined) {
            for (let i = 0; i < argument2; i++) {
              expect(batchEntryStatus(words[i * 2]!)).toBe(STATUS.SUCCESS);
              batched.push([batchEntryPfn(words[i * 2]!, words[i * 2 + 1]!)]);
            }
          }
          return reply;
        },
      },
      {
        allocate: (flavour) => source.allocate(flavour),
        free: (page) => source.free(page),
        frameNumber: (page) => source.frameNumber(page),
        totalPages: () => source.totalPages(),
        allocateHuge: () => source.allocateHuge(),
        freeHuge: (page) => source.freeHuge(page),
        splitHugePage: (page) => source.splitHugePage(page),
        pageWords(page) {
          words = source.pageWords(page);
          batchPage.frame = source.frameNumber(page);
          return words;
        },
      },
    );
    monitor.target = 1000;
    balloon.init();
    balloon.work();
    const snapshot = balloon.snapshot();
    expect(snapshot.capabilities & CAPABILITIES.BATCHED_2M_CMDS).not.toBe(0);
    expect(snapshot.maxPageSize).toBe("2M");
    expect(snapshot.size).toBe(1000);
    expect(snapshot.hugePages).toBe(0);
    expect(source.hugeRefused).toBeGreaterThan(0);
    // Every frame the host locked is a page the engine holds, and the monitor agrees.
    const held = new Set(Array.from(balloon.balloonedPages().pages4k, (page) => source.frameNumber(page)));
    expect(batched.length).toBe(1000);
    for (const [frame] of batched) {
      expect(held.has(frame!)).toBe(true);
      expect(monitor.isLocked(frame!)).toBe(true);
    }
    balloon.exit();
  });
});

const hugetlb = linuxX64 && root && existsSync("/proc/sys/vm/nr_hugepages") && memoryWorks("pinned");

describe.skipIf(!hugetlb)(
  "2 MB pages of pinned memory, with a hugetlb pool (needs root and io_uring; adds 8 pages to vm.nr_hugepages, and restores it)",
  () => {
    const POOL = "/proc/sys/vm/nr_hugepages";
    const hugeFree = () => Number(/^HugePages_Free:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
    /** /proc/kpageflags bit 17: HUGE (a hugetlb page's frames). */
    const isHuge = (frame: number) => {
      const fd = openSync("/proc/kpageflags", "r");
      const entry = Buffer.alloc(8);
      readSync(fd, entry, 0, 8, frame * 8);
      closeSync(fd);
      return ((entry.readBigUInt64LE(0) >> 17n) & 1n) === 1n;
    };

    it("today's driver balloons them with BATCHED_2M_LOCK (a host offering 2 MB): 512-aligned frames the monitor holds, and the unload gives the pool back", () => {
      const before = readFileSync(POOL, "utf8").trim();
      try {
        writeFileSync(POOL, String(Number(before) + 8));
        const free = hugeFree();
        const source = LinuxPageSource.open({ memory: "pinned" });
        sources.push(source);
        const monitor = hostOffering2M(source, (pfn) => source.memoryAt(pfn));
        const balloon = new ModernBalloon(monitor, source);
        monitor.target = 3 * 512;
        balloon.init();
        for (let cycle = 0; cycle < 4 && balloon.snapshot().size < monitor.target; cycle++) {
          balloon.work();
          source.releaseIdle();
        }
        const snapshot = balloon.snapshot();
        expect([snapshot.size, snapshot.hugePages]).toStrictEqual([3 * 512, 3]);
        expect(hugeFree()).toBe(free - 3);
        for (const page of balloon.balloonedPages().pages2m) {
          const frame = source.frameNumber(page);
          expect(frame % 512).toBe(0);
          expect(monitor.isLocked(frame)).toBe(true);
          expect(source.readFrame(page)).toBe(frame);
        }
        balloon.exit();
        // The driver keeps its batch page to the end (the C's goes with the module); `run` frees it as here.
        if (balloon.batchPageHandle !== NO_PAGE) source.free(balloon.batchPageHandle);
        source.releaseIdle();
        expect([hugeFree(), source.heldPages, source.mlockedPages]).toStrictEqual([free, 0, 0]);
      } finally {
        writeFileSync(POOL, before);
      }
    });

    it("pinned MAP_HUGETLB pages with 512-aligned frames; a split page's parts go back one by one and the page with the last; no pool (or mlock) and none is given", () => {
      const before = readFileSync(POOL, "utf8").trim();
      try {
        writeFileSync(POOL, String(Number(before) + 8));
        const free = hugeFree();
        expect(free).toBeGreaterThanOrEqual(2);
        const source = LinuxPageSource.open({ memory: "pinned" });
        sources.push(source);
        const [whole, split] = [source.allocateHuge(), source.allocateHuge()];
        expect([whole === NO_PAGE, split === NO_PAGE]).toStrictEqual([false, false]);
        for (const page of [whole, split]) {
          const frame = source.frameNumber(page);
          expect(frame % 512).toBe(0);
          expect(source.readFrame(page)).toBe(frame);
          expect(isHuge(frame)).toBe(true);
        }
        expect(hugeFree()).toBe(free - 2);
        expect([source.heldPages, source.mlockedPages]).toStrictEqual([1024, 1024]);

        source.freeHuge(whole);
        expect(hugeFree()).toBe(free - 1);
        const parts = Array.from(source.splitHugePage(split));
        expect(parts).toHaveLength(512);
        const first = source.frameNumber(split);
        for (const [i, part] of parts.entries()) {
          expect(source.frameNumber(part)).toBe(first + i);
          if (i % 64 === 0) expect(source.readFrame(part)).toBe(first + i);
        }
        expect(source.checkFrames(() => true)).toBe(512);
        for (const part of parts.slice(0, 511)) source.free(part);
        expect([hugeFree(), source.heldPages]).toStrictEqual([free - 1, 1]);
        source.free(parts[511]!);
        expect([hugeFree(), source.heldPages, source.mlockedPages]).toStrictEqual([free, 0, 0]);

        // mlock memory has no pin for a 2 MB page's 512 frames: none, whatever the pool.
        const mlock = LinuxPageSource.open({ memory: "mlock" });
        sources.push(mlock);
        expect(mlock.allocateHuge()).toBe(NO_PAGE);
        expect(mlock.hugeRefused).toBe(1);

        writeFileSync(POOL, before);
        if (hugeFree() === 0) {
          expect(source.allocateHuge()).toBe(NO_PAGE);
          expect(source.lastFailure).toBe("no free 2 MB page in the hugetlb pool (vm.nr_hugepages)");
        }
      } finally {
        writeFileSync(POOL, before);
      }
    });
  },
);
