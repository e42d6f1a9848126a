import fc from "fast-check";
import { STAT_NAMES, type BalloonStats } from "@vmballoon/protocol";
import { describe, expect, it } from "vitest";
import { format, formatSeed, parse, type SeedRecord } from "./index.js";
import { sample } from "./test-fixtures.js";

function zeroStats(): Record<keyof BalloonStats, number> {
  return Object.fromEntries(STAT_NAMES.map((name) => [name, 0])) as Record<keyof BalloonStats, number>;
}

function seedRecord(fields: Partial<Omit<SeedRecord, "stats" | "layout">>, stats: Partial<BalloonStats> = {}): SeedRecord {
  return {
    layout: "seed",
    target: 0,
    size: 0,
    rateNosleepAlloc: 16384,
    rateAlloc: 2048,
    rateFree: 16384,
    ...fields,
    stats: { ...zeroStats(), ...stats },
  };
}

describe("formatSeed", () => {
  it("prints seed-typical.txt from its numbers", () => {
    const record = seedRecord(
      { target: 40000, size: 32770, rateAlloc: 2048, rateFree: 16400 },
      { timer: 7, start: 1, guestType: 1, lock: 32773, lockFail: 3, target: 7, targetFail: 1, alloc: 32770, refusedAlloc: 3, refusedFree: 3 },
    );
    expect(formatSeed(record)).toBe(sample("seed-typical.txt"));
  });

  it("prints a target of 2^31 pages as -2147483648, and 2^32 - 1 pages as -1", () => {
    const text = formatSeed(seedRecord({ target: 2 ** 31, size: 2 ** 32 - 1 }));
    expect(text.split("\n").slice(0, 2)).toStrictEqual(["target:             -2147483648 pages", "current:                  -1 pages"]);
  });

  it("widens a counter of 2^32 - 1 past its %8u and %4u columns", () => {
    const text = formatSeed(seedRecord({}, { lock: 2 ** 32 - 1, lockFail: 2 ** 32 - 1, timer: 123456789 }));
    expect(text).toContain("\nlock:               4294967295 (4294967295 failed)\n");
    expect(text).toContain("\ntimer:              123456789\n");
  });

  it("refuses a value that is not an unsigned 32-bit integer, naming the field", () => {
    expect(() => formatSeed(seedRecord({ target: 2 ** 32 }))).toThrow(/^target: 4294967296 is not an unsigned 32-bit integer/);
    expect(() => formatSeed(seedRecord({}, { lockFail: -1 }))).toThrow(/^stats\.lockFail: -1/);
    expect(() => formatSeed(seedRecord({ rateFree: 1.5 }))).toThrow(/^rateFree: 1\.5/);
  });
});

describe("parse of the seed layout", () => {
  it("recovers 2^31 and 2^32 - 1 from negative %8d fields", () => {
    const record = parse(sample("seed-signed.txt"));
    expect(record).toMatchObject({ layout: "seed", target: 2147483648, size: 4294967295 });
    expect(record.layout === "seed" && record.stats.guestTypeFail).toBe(4294967295);
  });

  it("round-trips edge values: 2^31, 2^32 - 1 and counters wider than their columns", () => {
    const record = seedRecord(
      { target: 2 ** 31, size: 2 ** 32 - 1, rateNosleepAlloc: 2 ** 31 - 1, rateAlloc: 0, rateFree: 2 ** 31 + 1 },
      Object.fromEntries(STAT_NAMES.map((name, i) => [name, i % 2 ? 2 ** 32 - 1 - i : 10 ** (i % 10)])),
    );
    const text = format(record);
    expect(parse(text)).toStrictEqual(record);
    expect(format(parse(text))).toBe(text);
  });

  it("round-trips any record of unsigned 32-bit values (property)", () => {
    const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
    const edgy = fc.oneof(u32, fc.constantFrom(0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 99999999, 100000000, 9999, 10000));
    const stats = fc.record(Object.fromEntries(STAT_NAMES.map((name) => [name, edgy])) as Record<keyof BalloonStats, typeof edgy>);
    fc.assert(
      fc.property(edgy, edgy, edgy, edgy, edgy, stats, (target, size, rateNosleepAlloc, rateAlloc, rateFree, s) => {
        const record: SeedRecord = { layout: "seed", target, size, rateNosleepAlloc, rateAlloc, rateFree, stats: s };
        const text = format(record);
        // fast-check builds its records without a prototype: compare with a plain copy.
        expect(parse(text)).toStrictEqual(structuredClone(record));
      }),
      { numRuns: 300 },
    );
  });
});
