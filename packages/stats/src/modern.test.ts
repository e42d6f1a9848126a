import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MODERN_COMMAND_STAT_NAMES, PAGE_SIZE_NAMES } from "@vmballoon/protocol";
import { MODERN_COMMAND_LABELS, MODERN_PAGE_COUNTERS, StatsParseError, capabilityNames, format, parse, type ModernRecord } from "./index.js";
import { sample } from "./test-fixtures.js";

function modern(text: string): ModernRecord {
  const record = parse(text);
  if (record.layout !== "modern") throw new Error(`not modern: ${record.layout}`);
  return record;
}

describe("parse of the modern layout", () => {
  it("reads 64-bit counters beyond 2^53 exactly", () => {
    const record = modern(sample("modern-huge-counters.txt"));
    expect(record.size).toBe(12326406953667846644n);
    expect(record.commands.batchUnlock).toStrictEqual({ total: 17667022505403259337n, failed: 2989839052095677n });
    expect(record.general.shrink).toBe(18163911256262422909n);
    expect(record.pages.refusedFree["4k"]).toBe(18037650586219576026n);
  });

  it("tells the target size from the GET_TARGET command's `target` line", () => {
    const record = modern(sample("modern-busy.txt"));
    expect(record.target).toBe(5433012n);
    expect(record.commands.target).toStrictEqual({ total: 1215279n, failed: 8779n });
  });

  it("reads the reset flag and the capability masks", () => {
    const record = modern(sample("modern-resetting-basic.txt"));
    expect(record.resetRequired).toBe(true);
    expect(record.balloonCapabilities).toBe(0x3en);
    expect(record.usedCapabilities).toBe(0x2n);
    expect(capabilityNames(record.usedCapabilities)).toStrictEqual(["BASIC_CMDS"]);
    expect(modern(sample("modern-busy.txt")).resetRequired).toBe(false);
  });

  it("keeps the `(N failed)` of modern-fresh.txt's page counters, and only there", () => {
    expect(modern(sample("modern-fresh.txt")).pagesFailed?.free["2M"]).toBe(0n);
    expect(modern(sample("modern-busy.txt")).pagesFailed).toBeUndefined();
  });
});

describe("the modern layout's names", () => {
  it("labels the command counters as the protocol does, in the order the text prints them", () => {
    expect([...MODERN_COMMAND_LABELS]).toEqual(Object.values(MODERN_COMMAND_STAT_NAMES));
    const printed = [...sample("modern-busy.txt").matchAll(/^(\S+)\s*:\s*\d+ \(\d+ failed\)$/gm)].map((m) => m[1]);
    expect(printed).toEqual([...MODERN_COMMAND_LABELS]);
  });
});

describe("variants of the modern layout", () => {
  const busy = sample("modern-busy.txt");

  it("reads and reprints the drivers that predate the memory shrinker, which have no shrink lines", () => {
    const old = busy.replace(/^shrink .*\n/m, "").replace(/^shrinkFree .*\n/m, "");
    expect(old.split("\n")).toHaveLength(busy.split("\n").length - 2);
    const record = modern(old);
    expect(record.general).toStrictEqual({ timer: 9486738n, doorbell: 2077052n, reset: 3745328n });
    expect(format(record)).toBe(old);
  });

  it("prints a zero capability mask as the kernel's %#x does (0x0): a record without hexZero, and the corrected modern-fresh.txt", () => {
    const fresh = sample("modern-fresh.txt");
    expect(fresh.split("\n")[1]).toBe("used capabilities     :              0x0");
    const record = modern(fresh);
    expect(record.usedCapabilities).toBe(0n);
    expect(format(record)).toBe(fresh);
    // A record made by a program (today's engine), which says nothing of how zero prints.
    const { hexZero: _, ...made } = record;
    expect(format(made)).toBe(fresh);
  });

  it("still reads a zero mask printed by C's printf (0), and reprints that text as it was", () => {
    const asC = sample("modern-fresh.txt").replace("used capabilities     :              0x0", "used capabilities     :                0");
    const record = modern(asC);
    expect(record.usedCapabilities).toBe(0n);
    expect(record.hexZero).toBe("0");
    expect(format(record)).toBe(asC);
  });

  it("refuses page counters that carry `(N failed)` on some lines only, naming the first odd line", () => {
    const mixed = sample("modern-fresh.txt").replace("free              (2M):                0 (0 failed)", "free              (2M):                0");
    const error = (() => {
      try {
        parse(mixed);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(StatsParseError);
    expect((error as StatsParseError).line).toBe(30);
  });

  it("refuses a shrink line without its shrinkFree line", () => {
    const half = busy.replace(/^shrinkFree .*\n/m, "");
    expect(() => parse(half)).toThrow(/^line 20: expected the shrinkFree counter/);
  });
});

describe("format of the modern layout", () => {
  it("refuses a value that is not an unsigned 64-bit bigint, naming the field", () => {
    const record = modern(sample("modern-busy.txt"));
    expect(() => format({ ...record, size: 1n << 64n })).toThrow(/^size: 18446744073709551616 is not an unsigned 64-bit/);
    expect(() => format({ ...record, target: 5 as unknown as bigint })).toThrow(/^target: 5 is not an unsigned 64-bit bigint/);
    // `%#x` of an `int`: 32 bits.
    expect(() => format({ ...record, balloonCapabilities: 1n << 32n })).toThrow(/^balloonCapabilities: 4294967296 is not an unsigned 32-bit/);
  });

  it("round-trips any record of unsigned 64-bit values (property)", () => {
    const u64 = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constantFrom(0n, 1n, (1n << 53n) + 1n, (1n << 64n) - 1n, 9999999999999999n));
    const perSize = fc.record({ "4k": u64, "2M": u64 });
    const pages = fc.record(
      Object.fromEntries(MODERN_PAGE_COUNTERS.map((name) => [name, perSize])) as Record<(typeof MODERN_PAGE_COUNTERS)[number], typeof perSize>,
    );
    const commands = fc.record(
      Object.fromEntries(MODERN_COMMAND_LABELS.map((name) => [name, fc.record({ total: u64, failed: u64 })])) as Record<
        (typeof MODERN_COMMAND_LABELS)[number],
        fc.Arbitrary<{ total: bigint; failed: bigint }>
      >,
    );
    const general = fc.oneof(
      fc.record({ timer: u64, doorbell: u64, reset: u64 }),
      fc.record({ timer: u64, doorbell: u64, reset: u64, shrink: u64, shrinkFree: u64 }),
    );
    const record = fc
      .record({
        balloonCapabilities: fc.oneof(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.constant(0n)),
        usedCapabilities: fc.oneof(u64, fc.constant(0n)),
        resetRequired: fc.boolean(),
        target: u64,
        size: u64,
        commands,
        general,
        pages,
        failed: fc.option(pages, { nil: undefined }),
        hexZero: fc.constantFrom("0" as const, "0x0" as const),
      })
      .map(({ failed, hexZero, ...rest }): ModernRecord => {
        const zero = rest.balloonCapabilities === 0n || rest.usedCapabilities === 0n;
        return { layout: "modern", ...rest, ...(failed ? { pagesFailed: failed } : {}), ...(zero ? { hexZero } : {}) };
      });
    fc.assert(
      fc.property(record, (r) => {
        const text = format(r);
        // fast-check builds its records without a prototype: compare with a plain copy.
        expect(parse(text)).toStrictEqual(structuredClone(r));
        expect(text.split("\n")).toHaveLength(
          1 + 3 + 2 + MODERN_COMMAND_LABELS.length + Object.keys(r.general).length + MODERN_PAGE_COUNTERS.length * PAGE_SIZE_NAMES.length,
        );
      }),
      { numRuns: 200 },
    );
  });
});
