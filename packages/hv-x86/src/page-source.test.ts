import { spawnSync } from "node:child_process";
import { openSync, readFileSync, readSync, closeSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ALLOC, MAX_PFN, PAGE_SIZE } from "@vmballoon/protocol";
import { Balloon, NO_PAGE } from "@vmballoon/core";
import { SimMonitor } from "@vmballoon/core/sim";
import { LinuxPageSource, type PageMemory, type PageSourceOptions } from "./page-source.js";
import { native, SYS_MEMFD_SECRET } from "./native.js";
import { shuffle } from "./test-random.js";
import { memoryWorks } from "./test-memories.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const root = typeof process.geteuid === "function" && process.geteuid() === 0;
/** Whether this kernel has memfd_secret(2) (Linux 5.14+, secretmem enabled). */
const secretMemory = linuxX64 && native().libc.syscall1(SYS_MEMFD_SECRET, 0) >= 0;

function statusKiB(field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return Number(match?.[1]);
}

/**
 * The size in KiB of the page source's mappings: those kept both out of core
 * dumps and from forked children (VmFlags `dd` and `dc` in smaps), which only
 * the page source asks for here, whatever else (koffi loading, the JavaScript
 * heap growing) maps meanwhile. (The kernel may merge neighbouring chunks
 * into one mapping: their size is what counts.)
 */
function sourceMappingKiB(): number {
  let size = 0;
  let total = 0;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    if (line.startsWith("Size:")) size = Number(/(\d+)/.exec(line)![1]);
    else if (line.startsWith("VmFlags:") && / dd( |$)/.test(line) && / dc( |$)/.test(line)) total += size;
  }
  return total;
}

const pinnedMemory = linuxX64 && root && memoryWorks("pinned");

/** The kernel's count of this process's held memory in KiB: VmPin for pinned memory, VmLck for the others. */
function heldKiB(memory: PageMemory): number {
  return statusKiB(memory === "pinned" ? "VmPin" : "VmLck");
}

/** /proc/kpageflags bits of a frame: 11 MMAP, 12 ANON, 18 UNEVICTABLE, 33 MLOCKED. */
function pageFlags(frame: number): { mapped: boolean; anonymous: boolean; unevictable: boolean; mlocked: boolean } {
  const fd = openSync("/proc/kpageflags", "r");
  const entry = Buffer.alloc(8);
  readSync(fd, entry, 0, 8, frame * 8);
  closeSync(fd);
  const flags = entry.readBigUInt64LE(0);
  const bit = (n: number) => ((flags >> BigInt(n)) & 1n) === 1n;
  return { mapped: bit(11), anonymous: bit(12), unevictable: bit(18), mlocked: bit(33) };
}

const sources: LinuxPageSource[] = [];
function open(options: PageSourceOptions = {}): LinuxPageSource {
  const source = LinuxPageSource.open(options);
  sources.push(source);
  return source;
}
afterEach(() => {
  for (const source of sources.splice(0)) source.close();
});

function allocateMany(source: LinuxPageSource, count: number, flavour: 0 | 1 = ALLOC.NOSLEEP): number[] {
  const pages: number[] = [];
  for (let i = 0; i < count; i++) {
    const page = source.allocate(flavour);
    if (page === NO_PAGE) throw new Error(`allocation ${i} failed: ${source.lastFailure}`);
    pages.push(page);
  }
  return pages;
}

/** The tests each memory passes. */
function forReal(memory: PageMemory): void {
  it("hands out pages whose frames are present, distinct, below 2^32, and locked pages in the kernel's eyes", () => {
    const source = open({ memory });
    expect(source.memory).toBe(memory);
    const pages = allocateMany(source, 4096);
    expect(new Set(pages).size).toBe(pages.length);
    for (const page of pages) expect(Number.isInteger(page) && page >= 0 && page <= 0xffffffff).toBe(true);

    const frames = pages.map((page) => source.frameNumber(page));
    expect(new Set(frames).size).toBe(frames.length);
    for (const frame of frames) expect(frame > 0 && frame <= MAX_PFN).toBe(true);
    // The kernel's own view of those frames (a sample: every 64th). Secret memory is not anonymous: it is a file's. Pinned memory is not locked.
    const locked = memory !== "pinned";
    for (let i = 0; i < frames.length; i += 64) {
      expect(pageFlags(frames[i]!)).toStrictEqual({ mapped: true, anonymous: memory !== "secret", unevictable: locked, mlocked: locked });
    }
  });

  it("keeps each page's frame while it is held, whatever else comes and goes", () => {
    const source = open({ memory });
    const kept = allocateMany(source, 1024);
    const frames = kept.map((page) => source.frameNumber(page));
    for (let round = 0; round < 2; round++) {
      const churn = allocateMany(source, 3000, round === 0 ? ALLOC.NOSLEEP : ALLOC.CANSLEEP);
      for (const page of churn.reverse()) source.free(page);
      source.releaseIdle();
    }
    expect(kept.map((page) => source.readFrame(page))).toStrictEqual(frames);
    expect(kept.map((page) => source.frameNumber(page))).toStrictEqual(frames);
  });

  it("returns the memory to the kernel when pages are freed", () => {
    const source = open({ memory, chunkPages: 1024 });
    const [kept, ...pages] = allocateMany(source, 4097); // one page kept: its chunk stays mapped
    const rssBefore = statusKiB("VmRSS");
    for (const page of pages.reverse()) source.free(page);
    source.releaseIdle();
    expect(source.readFrame(kept!)).toBe(source.frameNumber(kept!));
    // Secret memory goes a chunk at a time: the kept page's chunk stays whole.
    const returned = memory !== "secret" ? 4096 : 4096 - 1023;
    expect(source.mlockedPages).toBe(4097 - returned);
    expect(rssBefore - statusKiB("VmRSS")).toBeGreaterThanOrEqual((returned * PAGE_SIZE) / 1024 - 1024);
  });

  it("VmLck (VmPin for pinned memory) grows as pages come and falls back to where it was as they go, in any order (seed 7)", () => {
    const before = heldKiB(memory);
    const source = open({ memory, chunkPages: 1024 });
    const pages = allocateMany(source, 8192);
    const during = heldKiB(memory);
    // mlock and pins count the pages held; secret memory counts its mappings whole (RLIMIT_MEMLOCK sees the same).
    expect(during - before).toBe(memory !== "secret" ? source.mlockedPages * 4 : source.mappings * 1024 * 4);
    expect(source.mlockedPages).toBeGreaterThanOrEqual(8192);
    expect(source.mlockedPages).toBeLessThanOrEqual(8192 + 256);

    const order = [...pages];
    for (const page of order.splice(4096).reverse()) source.free(page);
    source.releaseIdle();
    expect(source.mlockedPages).toBe(4096);
    for (const page of shuffle(order, 7)) source.free(page);
    source.releaseIdle();
    expect(heldKiB(memory)).toBe(before);
    expect([source.mlockedPages, source.heldPages, source.mappings]).toStrictEqual([0, 0, 0]);
  });

  it("keeps to one mapping per chunk, and unmaps a chunk when its last page goes", () => {
    const before = sourceMappingKiB();
    const source = open({ memory, chunkPages: 2048 });
    const pages = allocateMany(source, 8192);
    expect(source.mappings).toBe(4);
    expect(sourceMappingKiB() - before).toBe(4 * 2048 * 4);
    for (const page of pages.reverse()) source.free(page);
    source.releaseIdle();
    expect(source.mappings).toBe(0);
    expect(sourceMappingKiB()).toBe(before);
  });

  it("NOSLEEP fails rather than dip into the reserve of free memory; CANSLEEP may still go on", () => {
    const total = Math.floor(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 4);
    const source = open({ memory, nosleepReserve: total });
    expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
    expect(source.lastFailure).toMatch(/MemFree/);
    expect(source.mlockedPages).toBe(0);
    expect(source.allocate(ALLOC.CANSLEEP)).not.toBe(NO_PAGE);

    const strict = open({ memory, sleepReserve: total });
    expect(strict.allocate(ALLOC.CANSLEEP)).toBe(NO_PAGE);
    expect(strict.lastFailure).toMatch(/MemAvailable/);
  });

  it("serves the engine: every ballooned page's frame is locked at the monitor, the frame check finds nothing moved, and unload gives all back", () => {
    const before = heldKiB(memory);
    const source = open({ memory, frameCheck: "always" });
    const monitor = new SimMonitor({ firstPfn: 0, frames: source.frameLimit(), totalPages: source.totalPages() });
    const balloon = new Balloon(monitor, source);
    expect(balloon.init()).toBe(true);
    monitor.target = 5000;
    balloon.work();
    source.releaseIdle();
    expect(balloon.snapshot().size).toBe(5000);
    expect(monitor.lockedFrames).toBe(5000);
    for (const page of balloon.balloonedPages()) expect(monitor.isLocked(source.frameNumber(page))).toBe(true);
    expect(source.heldPages).toBe(5000);
    // mlock and pinned memory return the rest of the last batch at once; secret memory keeps it with its chunk, free, for the next inflate.
    if (memory !== "secret") expect(source.mlockedPages).toBe(5000);
    else expect(source.mlockedPages).toBe(Math.ceil(5000 / 256) * 256);
    expect(balloon.checkFrames()).toStrictEqual({ checked: 5000, moved: 0, repaired: 0, released: 0 });

    balloon.exit();
    source.releaseIdle();
    expect(source.heldPages).toBe(0);
    expect(heldKiB(memory)).toBe(before);
    expect(monitor.lockedFrames).toBe(0); // START at unload
  });

  it("close() unmaps everything, and allocating afterwards is an error", () => {
    const before = heldKiB(memory);
    const source = LinuxPageSource.open({ memory });
    allocateMany(source, 300);
    source.close();
    expect(heldKiB(memory)).toBe(before);
    expect(() => source.allocate(ALLOC.NOSLEEP)).toThrow(/closed/);
  });
}

describe.skipIf(!linuxX64 || !root || !pinnedMemory)("the Linux page source, for real, with pinned memory (needs root: frame numbers, and io_uring)", () =>
  forReal("pinned"),
);
describe.skipIf(!linuxX64 || !root)("the Linux page source, for real, with mlock memory (needs root: frame numbers)", () => forReal("mlock"));
describe.skipIf(!linuxX64 || !root || !secretMemory)("the Linux page source, for real, with secret memory (needs root: frame numbers, and memfd_secret)", () =>
  forReal("secret"),
);

describe.skipIf(!linuxX64 || !root)("the Linux page source: the rest (needs root: frame numbers)", () => {
  it("chooses pinned memory where io_uring can pin, else secret memory, with chunks small enough to go back often and few enough to map", () => {
    const source = open();
    expect(source.memory).toBe(pinnedMemory ? "pinned" : secretMemory ? "secret" : "mlock");
    const total = source.totalPages();
    const secret = source.memory === "secret";
    if (secret) expect(total / source.chunkPages).toBeLessThanOrEqual(8192);
    expect(source.chunkPages).toBe(secret ? Math.max(1024, 2 ** Math.ceil(Math.log2(total / 8192))) : 65536);
  });

  it("reports the guest's total pages as MemTotal does", () => {
    const source = open();
    const memTotal = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
    expect(source.totalPages()).toBe(Math.floor(memTotal / 4));
    expect(source.frameLimit()).toBeGreaterThan(source.totalPages() / 2);
  });

  it("rejects bad options", () => {
    expect(() => LinuxPageSource.open({ chunkPages: 1000 })).toThrow(RangeError);
    expect(() => LinuxPageSource.open({ batchPages: 0 })).toThrow(RangeError);
    expect(() => LinuxPageSource.open({ nosleepReserve: -1 })).toThrow(RangeError);
    expect(() => LinuxPageSource.open({ memory: "swap" as PageMemory })).toThrow(RangeError);
  });

  it("4 GiB freed in random order (seed 20261129, mlock): every free succeeds, the mappings stay far below vm.max_map_count, the books match the kernel's", () => {
    const maxMapCount = Number(readFileSync("/proc/sys/vm/max_map_count", "utf8"));
    const mapsNow = () => readFileSync("/proc/self/maps", "utf8").split("\n").length - 1;
    const mapsBefore = mapsNow();
    const vmLckBefore = statusKiB("VmLck");
    const source = open({ memory: "mlock" });
    const pages = shuffle(allocateMany(source, 1 << 20, ALLOC.CANSLEEP), 20261129);
    source.releaseIdle();
    expect(statusKiB("VmLck") - vmLckBefore).toBe(source.mlockedPages * 4);
    let most = 0;
    let mostOwn = 0;
    for (const [i, page] of pages.entries()) {
      source.free(page);
      if ((i & 0xfff) === 0) mostOwn = Math.max(mostOwn, source.kernelMappings);
      if ((i & 0xffff) === 0xffff) {
        most = Math.max(most, mapsNow() - mapsBefore);
        // The kernel's count of locked memory is the source's, page for page.
        expect(statusKiB("VmLck") - vmLckBefore).toBe(source.mlockedPages * 4);
        expect(source.heldPages).toBe(pages.length - i - 1);
      }
    }
    source.releaseIdle();
    // The source's own mappings stay within its budget; the rest is the JavaScript heap growing meanwhile.
    expect(mostOwn).toBeLessThanOrEqual(source.mappingBudget);
    expect(mostOwn).toBeGreaterThan(source.mappingBudget / 2); // random frees do split: the budget is what held them
    expect(most).toBeLessThanOrEqual(source.mappingBudget + 256);
    expect(most).toBeLessThan(maxMapCount / 4);
    expect([source.heldPages, source.mlockedPages, source.mappings]).toStrictEqual([0, 0, 0]);
    expect(statusKiB("VmLck")).toBe(vmLckBefore);
  }, 300_000);

  it.skipIf(!pinnedMemory)(
    "the kernel's direct map is untouched by pinned memory (the default): DirectMap4k, 2M and 1G the same before and after 1 GiB is ballooned and given back (needs io_uring)",
    () => {
      const directMap = () => readFileSync("/proc/meminfo", "utf8").match(/^DirectMap\w+:.*$/gm);
      const before = directMap();
      expect(before?.length).toBeGreaterThan(0);
      const source = open();
      expect(source.memory).toBe("pinned");
      const pages = allocateMany(source, 1 << 18, ALLOC.CANSLEEP);
      source.releaseIdle();
      expect(source.mlockedPages).toBe(1 << 18);
      expect(directMap()).toStrictEqual(before);
      for (const page of pages.reverse()) source.free(page);
      source.releaseIdle();
      expect(source.mlockedPages).toBe(0);
      expect(directMap()).toStrictEqual(before);
    },
    300_000,
  );

  it.skipIf(!pinnedMemory)(
    "4 GiB of pinned memory freed in random order (seed 20261203): every free succeeds, no split of a mapping, VmPin is the source's count page for page, and all comes back (needs io_uring)",
    () => {
      const vmPinBefore = statusKiB("VmPin");
      const source = open({ memory: "pinned" });
      const pages = shuffle(allocateMany(source, 1 << 20, ALLOC.CANSLEEP), 20261203);
      source.releaseIdle();
      expect(statusKiB("VmPin") - vmPinBefore).toBe(source.mlockedPages * 4);
      for (const [i, page] of pages.entries()) {
        source.free(page);
        if ((i & 0x3ffff) === 0x3ffff) {
          source.releaseIdle();
          expect(statusKiB("VmPin") - vmPinBefore).toBe(source.mlockedPages * 4);
          expect(source.mlockedPages).toBe(pages.length - i - 1);
          expect(source.kernelMappings).toBe(source.mappings);
        }
      }
      source.releaseIdle();
      expect([source.heldPages, source.mlockedPages, source.mappings, source.lastFailure]).toStrictEqual([0, 0, 0, undefined]);
      expect(statusKiB("VmPin")).toBe(vmPinBefore);
    },
    300_000,
  );

  it.skipIf(!secretMemory)(
    "512 MiB of secret memory freed in random order (seed 99): every page comes back (needs memfd_secret)",
    () => {
      const vmLckBefore = statusKiB("VmLck");
      const source = open({ memory: "secret" });
      const pages = shuffle(allocateMany(source, 1 << 17, ALLOC.CANSLEEP), 99);
      for (const page of pages) source.free(page);
      source.releaseIdle();
      expect([source.heldPages, source.mlockedPages, source.mappings]).toStrictEqual([0, 0, 0]);
      expect(statusKiB("VmLck")).toBe(vmLckBefore);
    },
    300_000,
  );
});

/** util-linux's prlimit and setpriv, to run a child with a small RLIMIT_MEMLOCK and without CAP_IPC_LOCK. */
const limitTools = spawnSync("setpriv", ["--version"]).status === 0 && spawnSync("prlimit", ["--version"]).status === 0;

describe.skipIf(!linuxX64 || !root || !limitTools)("RLIMIT_MEMLOCK of 8 MiB without CAP_IPC_LOCK (needs root, setpriv and prlimit)", () => {
  it.each([...(pinnedMemory ? (["pinned"] as const) : []), ...(secretMemory ? (["secret"] as const) : []), "mlock" as const])(
    "%s memory: the balloon stops at the limit, and one line says what and how to raise it",
    (memory) => {
      const entry = fileURLToPath(new URL("../dist/index.js", import.meta.url));
      const script = `import(${JSON.stringify(entry)}).then((hv) => {
      const limits = [];
      const source = hv.LinuxPageSource.open({ memory: ${JSON.stringify(memory)}, onLimit: (message) => limits.push(message) });
      let pages = 0;
      while (pages < 100000 && source.allocate(pages % 2) !== -1) pages++;
      while (pages < 100000 && source.allocate(pages % 2) !== -1) pages++;
      console.log(JSON.stringify({ pages, locked: source.mlockedPages, limits, chunkPages: source.chunkPages }));
    })`;
      const child = spawnSync(
        "prlimit",
        ["--memlock=8388608", "setpriv", "--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock", process.execPath, "-e", script],
        { encoding: "utf8" },
      );
      expect(child.stderr).toBe("");
      const { pages, locked, limits, chunkPages } = JSON.parse(child.stdout) as { pages: number; locked: number; limits: string[]; chunkPages: number };
      // 8 MiB: 2048 pages of mlock; of pins, the batches of 256 that fit beside the ring's own pages (counted too); of secret memory, the chunks (mappings, counted whole) that fit.
      const expected = { pinned: 2048 - 256, secret: Math.floor(2048 / chunkPages) * chunkPages, mlock: 2048 }[memory];
      expect([pages, locked]).toStrictEqual([expected, expected]);
      const call = { pinned: "ENOMEM from io_uring_register", secret: "EAGAIN from mmap", mlock: "ENOMEM from mlock" }[memory];
      const counted = memory === "secret" ? ", which counts secret memory by the size of its mappings" : "";
      expect(limits).toStrictEqual([
        `cannot lock more memory (${call}): RLIMIT_MEMLOCK (8 MiB) is reached${counted} and this process lacks CAP_IPC_LOCK; raise it (ulimit -l unlimited, LimitMEMLOCK=infinity in a systemd unit) or run as root with CAP_IPC_LOCK`,
      ]);
    },
  );
});

describe.skipIf(!linuxX64 || !root)("without CAP_SYS_ADMIN (needs root to drop to nobody)", () => {
  it("refuses to open: pagemap hides the frames (E_FRAMES_HIDDEN)", () => {
    const entry = fileURLToPath(new URL("../dist/index.js", import.meta.url));
    const script = `import(${JSON.stringify(entry)}).then((hv) => { try { hv.LinuxPageSource.open(); console.log("opened"); } catch (error) { console.log(error.code); } })`;
    const child = spawnSync(process.execPath, ["-e", script], { uid: 65534, gid: 65534, encoding: "utf8", cwd: "/" });
    expect(child.stderr).toBe("");
    expect(child.stdout.trim()).toBe("E_FRAMES_HIDDEN");
  });
});
