import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StatsParseError, format, parse } from "./index.js";
import { samples as readSamples } from "./test-fixtures.js";

/**
 * Garbled input never crashes the parser: whatever the text, `parse` either
 * gives a record that formats back to the same bytes, or throws a
 * StatsParseError that names a line (the CLI turns it into one line and exit
 * status 2). Texts are the samples of both layouts, mutated.
 */
function parsesOrSaysWhere(text: string): void {
  let record;
  try {
    record = parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(StatsParseError);
    expect((error as Error).message).toMatch(/^line \d+: /);
    return;
  }
  expect(format(record)).toBe(text);
}

const samples = readSamples().map((s) => s.text);

/** A sample with one edit: a character replaced, a span deleted or duplicated, or two lines swapped. */
const mutated = fc
  .record({
    text: fc.constantFrom(...samples),
    kind: fc.constantFrom("replace", "delete", "duplicate", "swap"),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 40 }),
    char: fc.oneof(fc.constantFrom("0", "9", "-", " ", ":", "\n", "(", ")", "x", "\t", "\u0000", "é"), fc.string({ minLength: 1, maxLength: 1 })),
  })
  .map(({ text, kind, at, length, char }) => {
    const i = at % text.length;
    if (kind === "replace") return text.slice(0, i) + char + text.slice(i + 1);
    if (kind === "delete") return text.slice(0, i) + text.slice(i + length);
    if (kind === "duplicate") return text.slice(0, i + length) + text.slice(i);
    const lines = text.split("\n");
    const a = at % lines.length;
    const b = (at + length) % lines.length;
    [lines[a], lines[b]] = [lines[b]!, lines[a]!];
    return lines.join("\n");
  });

describe("garbled vmmemctl texts", () => {
  it("a mutated sample of either layout parses back to its own bytes or fails naming a line", () => {
    fc.assert(fc.property(mutated, parsesOrSaysWhere), { numRuns: 2000 });
  });

  it("arbitrary text, binary included, does the same", () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.lorem({ mode: "sentences" })), parsesOrSaysWhere), { numRuns: 500 });
  });
});
