import { spawnSync } from "node:child_process";
import { openSync, readFileSync, readSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ALLOC, MAX_PFN, PAGE_SIZE } from "@vmballoon/protocol";
import { Balloon, NO_PAGE } from "@vmballoon/core";
import { SimMonitor } from "@vmballoon/core/sim";
import { LinuxPageSource } from "./page-source.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const root = typeof process.geteuid === "function" && process.geteuid() === 0;

function statusKiB(field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return Number(match?.[1]);
}

/**
 * The process's locked mappings (VmFlags `lo` in smaps): only the page source
 * locks memory here, so these are its own, whatever else (koffi loading, the
 * JavaScript heap growing) maps meanwhile.
 */
function lockedMappings(): number {
  return readFileSync("/proc/self/smaps", "utf8")
    .split("\n")
    .filter((line) => line.startsWith("VmFlags:") && / lo( |$)/.test(line)).length;
}

/** /proc/kpageflags bits of a frame: 11 MMAP, 12 ANON, 18 UNEVICTABLE. */
function pageFlags(frame: number): { mapped: boolean; anonymous: boolean; unevictable: boolean } {
  const fd = openSync("/proc/kpageflags", "r");
  const entry = Buffer.alloc(8);
  readSync(fd, entry, 0, 8, frame * 8);
  const flags = entry.readBigUInt64LE(0);
  const bit = (n: number) => ((flags >> BigInt(n)) & 1n) === 1n;
  return { mapped: bit(11), anonymous: bit(12), unevictable: bit(18) };
}

const sources: LinuxPageSource[] = [];
function open(options: Parameters<typeof LinuxPageSource.open>[0] = {}): LinuxPageSource {
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

describe.skipIf(!linuxX64 || !root)("the Linux page source, for real", () => {
  it("hands out pages whose frames are present, distinct, below 2^32, and real locked anonymous pages", () => {
    const source = open();
    const pages = allocateMany(source, 4096);
    expect(new Set(pages).size).toBe(pages.length);
    for (const page of pages) expect(Number.isInteger(page) && page >= 0 && page <= 0xffffffff).toBe(true);

    const frames = pages.map((page) => source.frameNumber(page));
    expect(new Set(frames).size).toBe(frames.length);
    for (const frame of frames) expect(frame > 0 && frame <= MAX_PFN).toBe(true);
    // The kernel's own view of those frames (a sample: every 64th).
    for (let i = 0; i < frames.length; i += 64) {
      expect(pageFlags(frames[i]!)).toEqual({ mapped: true, anonymous: true, unevictable: true });
    }
  });

  it("keeps each page's frame while it is held, whatever else comes and goes", () => {
    const source = open();
    const kept = allocateMany(source, 1024);
    const frames = kept.map((page) => source.frameNumber(page));
    // Churn: more pages in, then out again, twice.
    for (let round = 0; round < 2; round++) {
      const churn = allocateMany(source, 3000, round === 0 ? ALLOC.NOSLEEP : ALLOC.CANSLEEP);
      for (const page of churn.reverse()) source.free(page);
      source.releaseIdle();
    }
    expect(kept.map((page) => source.readFrame(page))).toEqual(frames);
    expect(kept.map((page) => source.frameNumber(page))).toEqual(frames);
  });

  it("returns the frames to the kernel when pages are freed: the pages are no longer present", () => {
    const source = open();
    const [kept, ...pages] = allocateMany(source, 513); // one page kept: the chunk stays mapped
    const rssBefore = statusKiB("RssAnon");
    for (const page of pages.reverse()) source.free(page);
    source.releaseIdle();
    expect(pages.map((page) => source.readFrame(page)).filter((frame) => frame !== -1)).toEqual([]);
    expect(source.readFrame(kept!)).toBe(source.frameNumber(kept!));
    expect(rssBefore - statusKiB("RssAnon")).toBeGreaterThanOrEqual((256 * PAGE_SIZE) / 1024);
  });

  it("VmLck grows as pages come and falls back as they go, in any order", () => {
    const before = statusKiB("VmLck");
    const source = open();
    const pages = allocateMany(source, 8192);
    const during = statusKiB("VmLck");
    expect(during - before).toBeGreaterThanOrEqual((8192 * PAGE_SIZE) / 1024);
    // ...and no more than one batch beyond what was asked for.
    expect(during - before).toBeLessThanOrEqual(((8192 + 256) * PAGE_SIZE) / 1024);
    expect(source.lockedPages * 4).toBe(during - before);

    // Free half, newest first, then the rest in a shuffled order.
    const order = [...pages];
    for (const page of order.splice(4096).reverse()) source.free(page);
    source.releaseIdle();
    const half = statusKiB("VmLck");
    expect(half - before).toBe((4096 * PAGE_SIZE) / 1024);
    order.sort(() => Math.random() - 0.5);
    for (const page of order) source.free(page);
    source.releaseIdle();
    expect(statusKiB("VmLck")).toBe(before);
    expect(source.lockedPages).toBe(0);
    expect(source.heldPages).toBe(0);
  });

  it.each([
    // 64 MiB, within one 256 MiB chunk.
    [{}, 16384, 1],
    // 8 MiB in chunks of 2 MiB.
    [{ chunkPages: 512 }, 2048, 4],
  ])("keeps to one mapping per chunk, and unmaps a chunk when its last page goes (%j, %i pages: %i)", (options, count, chunks) => {
    const before = lockedMappings();
    const source = open(options);
    const pages = allocateMany(source, count);
    expect(source.mappings).toBe(chunks);
    // The pages locked so far are one range of the kernel's mappings a chunk, not thousands.
    expect(lockedMappings() - before).toBe(chunks);
    for (const page of pages.reverse()) source.free(page);
    source.releaseIdle();
    expect(source.mappings).toBe(0);
    expect(lockedMappings()).toBe(before);
  });

  it("reuses freed slots, so churn does not multiply the mappings", () => {
    const source = open({ chunkPages: 4096 });
    const held: number[] = [];
    for (let round = 0; round < 20; round++) {
      held.push(...allocateMany(source, 1000));
      // The engine frees newest first, and some refused pages out of order.
      for (const page of held.splice(held.length - 600).reverse()) source.free(page);
      for (let i = 0; i < 5 && held.length > 0; i++) source.free(held.splice(Math.floor(Math.random() * held.length), 1)[0]!);
      source.releaseIdle();
    }
    expect(source.heldPages).toBe(held.length);
    expect(source.mappings).toBeLessThanOrEqual(Math.ceil(held.length / 4096) + 1);
  });

  it("NOSLEEP fails rather than dip into the reserve of free memory; CANSLEEP may still go on", () => {
    const total = Math.floor(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 4);
    const source = open({ nosleepReservePages: total });
    expect(source.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
    expect(source.lastFailure).toMatch(/MemFree/);
    expect(source.lockedPages).toBe(0);
    expect(source.allocate(ALLOC.CANSLEEP)).not.toBe(NO_PAGE);

    const strict = open({ sleepReservePages: total });
    expect(strict.allocate(ALLOC.CANSLEEP)).toBe(NO_PAGE);
    expect(strict.lastFailure).toMatch(/MemAvailable/);
  });

  it("reports the guest's total pages as MemTotal does", () => {
    const source = open();
    const memTotal = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
    expect(source.totalPages()).toBe(Math.floor(memTotal / 4));
    expect(source.frameLimit()).toBeGreaterThan(source.totalPages() / 2);
  });

  it("serves the engine: every ballooned page's frame is locked at the monitor, and unload gives all back", () => {
    const before = statusKiB("VmLck");
    const source = open();
    const monitor = new SimMonitor({ firstPfn: 0, frames: source.frameLimit(), totalPages: source.totalPages() });
    const balloon = new Balloon(monitor, source);
    expect(balloon.init()).toBe(true);
    monitor.target = 5000;
    balloon.work();
    source.releaseIdle();
    expect(balloon.snapshot().size).toBe(5000);
    expect(monitor.lockedFrames).toBe(5000);
    for (const page of balloon.balloonedPages()) expect(monitor.isLocked(source.frameNumber(page))).toBe(true);
    expect(statusKiB("VmLck") - before).toBe((5000 * PAGE_SIZE) / 1024);

    balloon.exit();
    source.releaseIdle();
    expect(source.heldPages).toBe(0);
    expect(statusKiB("VmLck")).toBe(before);
    expect(monitor.lockedFrames).toBe(0); // START at unload
  });

  it("close() unmaps everything, and allocating afterwards is an error", () => {
    const before = statusKiB("VmLck");
    const source = LinuxPageSource.open();
    allocateMany(source, 300);
    source.close();
    expect(statusKiB("VmLck")).toBe(before);
    expect(() => source.allocate(ALLOC.NOSLEEP)).toThrow(/closed/);
  });

  it("rejects bad options", () => {
    expect(() => LinuxPageSource.open({ chunkPages: 1000 })).toThrow(RangeError);
    expect(() => LinuxPageSource.open({ batchPages: 0 })).toThrow(RangeError);
    expect(() => LinuxPageSource.open({ nosleepReservePages: -1 })).toThrow(RangeError);
  });
});

describe.skipIf(!linuxX64 || !root)("without CAP_SYS_ADMIN", () => {
  it("refuses to open: pagemap hides the frames (E_FRAMES_HIDDEN)", () => {
    const entry = fileURLToPath(new URL("../dist/index.js", import.meta.url));
    const script = `import(${JSON.stringify(entry)}).then((hv) => { try { hv.LinuxPageSource.open(); console.log("opened"); } catch (error) { console.log(error.code); } })`;
    const child = spawnSync(process.execPath, ["-e", script], { uid: 65534, gid: 65534, encoding: "utf8", cwd: "/" });
    expect(child.stderr).toBe("");
    expect(child.stdout.trim()).toBe("E_FRAMES_HIDDEN");
  });
});
