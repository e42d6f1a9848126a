import { STAT_NAMES } from "@vmballoon/protocol";
import { describe, expect, it } from "vitest";
import { format, parse } from "./index.js";
import { samples, scenarios, traceRecords } from "./test-fixtures.js";

describe("the conformance traces' debugfs records", () => {
  const cases = scenarios()
    .map((scenario) => {
      const records = traceRecords(scenario);
      const debugfs = records.find((record) => record.t === "debugfs");
      const lastCycle = records.filter((record) => record.t === "cycle").at(-1);
      return { scenario, text: debugfs?.text as string | undefined, lastCycle };
    })
    .filter((c): c is { scenario: string; text: string; lastCycle: Record<string, unknown> } => c.text !== undefined && c.lastCycle !== undefined);

  it("has a debugfs record in most scenarios", () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)("$scenario: parse then format gives back the same bytes", ({ text }) => {
    expect(format(parse(text))).toBe(text);
  });

  it.each(cases)("$scenario: parse reads the numbers of the trace's last cycle record", ({ text, lastCycle }) => {
    const record = parse(text);
    if (record.layout !== "seed") throw new Error(`${record.layout} layout, not the seed's`);
    // The cycle record is the seed's own state, written independently of the debugfs text.
    expect({
      target: record.target,
      size: record.size,
      rateAlloc: record.rateAlloc,
      rateFree: record.rateFree,
      stats: record.stats,
    }).toStrictEqual({
      target: lastCycle.target,
      size: lastCycle.size,
      rateAlloc: lastCycle.rateAlloc,
      rateFree: lastCycle.rateFree,
      stats: lastCycle.stats,
    });
    expect(record.rateNosleepAlloc).toBe(16384);
    expect(Object.keys(record.stats)).toStrictEqual([...STAT_NAMES]);
  });
});

describe("the vmmemctl samples", () => {
  const all = samples();

  it("has samples of both layouts", () => {
    expect(all.filter((s) => s.name.startsWith("seed-")).length).toBeGreaterThanOrEqual(3);
    expect(all.filter((s) => s.name.startsWith("modern-")).length).toBeGreaterThanOrEqual(4);
  });

  it.each(all)("$name: parse says which layout it is, by the file's prefix", ({ name, text }) => {
    expect(parse(text).layout).toBe(name.split("-")[0]);
  });

  it.each(all)("$name: parse then format gives back the same bytes", ({ text }) => {
    expect(format(parse(text))).toBe(text);
  });
});
