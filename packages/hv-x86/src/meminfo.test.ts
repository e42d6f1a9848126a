import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MeminfoReader, parseFrameLimit, parseMeminfo } from "./meminfo.js";

const MEMINFO = `MemTotal:       24684092 kB
MemFree:        21654912 kB
MemAvailable:   23895548 kB
Buffers:           56456 kB
`;

const ZONEINFO = `Node 0, zone      DMA
  per-node stats
  pages free     3840
        spanned  4095
        present  3998
  start_pfn:           1
Node 0, zone    DMA32
        spanned  1044480
  start_pfn:           4096
Node 0, zone   Normal
        spanned  5505024
  start_pfn:           1048576
Node 0, zone  Movable
        spanned  0
        present  0
`;

describe("/proc/meminfo and /proc/zoneinfo", () => {
  it("reads MemTotal, MemFree and MemAvailable in pages", () => {
    expect(parseMeminfo(MEMINFO)).toEqual({ totalPages: 6171023, freePages: 5413728, availablePages: 5973887 });
  });

  it("says which line is missing", () => {
    expect(() => parseMeminfo("MemTotal: 1 kB\nMemFree: 1 kB\n")).toThrow("/proc/meminfo has no MemAvailable line");
  });

  it("finds one past the highest frame of the zones", () => {
    expect(parseFrameLimit(ZONEINFO)).toBe(1048576 + 5505024);
    expect(parseFrameLimit("")).toBe(0);
  });

  it.skipIf(process.platform !== "linux")("reads this machine's figures again and again through one open file (needs Linux)", () => {
    const reader = new MeminfoReader();
    const first = reader.read();
    const second = reader.read();
    reader.close();
    expect(second.totalPages).toBe(first.totalPages);
    expect(first.totalPages).toBe(Math.floor(Number(/^MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 4));
    expect(first.availablePages).toBeLessThanOrEqual(first.totalPages);
  });
});
