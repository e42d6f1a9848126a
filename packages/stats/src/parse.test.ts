import { describe, expect, it } from "vitest";
import { StatsParseError, format, parse } from "./index.js";
import { sample } from "./test-fixtures.js";

const seed = sample("seed-typical.txt");
const modern = sample("modern-busy.txt");

/** The text with line `n` (1-based) replaced. */
function withLine(text: string, n: number, line: string): string {
  const lines = text.split("\n");
  lines[n - 1] = line;
  return lines.join("\n");
}

function parseError(text: string): StatsParseError {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof StatsParseError) return error;
    throw error;
  }
  throw new Error("parse did not throw");
}

describe("parse of garbled input", () => {
  const cases: { name: string; text: string; line: number; message: RegExp }[] = [
    { name: "an empty file", text: "", line: 1, message: /expected a vmmemctl text, found an empty file/ },
    { name: "some other file", text: "MemTotal:       16384 kB\n", line: 1, message: /expected "target:" \(the seed's layout\) or "balloon capabilities"/ },
    {
      name: "the Linux 4.x layout",
      text: "balloon capabilities:   0x1e\nused capabilities:      0x1e\n",
      line: 1,
      message: /the layout of the Linux 4\.x drivers/,
    },
    {
      name: "a missing final newline",
      text: seed.slice(0, -1),
      line: 17,
      message: /expected a newline at the end of the line, found "errFree: +3" and the end of the file/,
    },
    { name: "Windows line endings", text: seed.replace(/\n/g, "\r\n"), line: 1, message: /with a Windows line ending/ },
    {
      name: "a word for a number",
      text: withLine(seed, 7, "timer:                 seven"),
      line: 7,
      message: /line 7: expected the timer counter: "timer: {14}%8u", found "timer: +seven"/,
    },
    {
      name: "collapsed padding",
      text: withLine(seed, 2, "current: 32770 pages"),
      line: 2,
      message: /line 2: expected the balloon's size: "current: {12}%8d pages"/,
    },
    {
      name: "a leading zero",
      text: withLine(seed, 9, "guestType:          00000001 (   0 failed)"),
      line: 9,
      message: /line 9: expected the GUEST_ID counters/,
    },
    {
      name: "a %8d out of range",
      text: withLine(seed, 1, "target:             3000000000 pages"),
      line: 1,
      message: /line 1: expected the balloon's target that fits %8d \(-2147483648 to 2147483647\), found/,
    },
    {
      name: "a %4u out of range",
      text: withLine(seed, 10, "lock:                  32773 (4294967296 failed)"),
      line: 10,
      message: /fits %4u \(0 to 4294967295\)/,
    },
    { name: "a missing blank line", text: seed.replace("\n\n", "\n"), line: 6, message: /line 6: expected an empty line: "", found "timer:/ },
    {
      name: "lines swapped",
      text: withLine(withLine(seed, 10, seed.split("\n")[10]!), 11, seed.split("\n")[9]!),
      line: 10,
      message: /line 10: expected the LOCK counters: "lock: +%8u \(%4u failed\)", found "unlock:/,
    },
    {
      name: "a truncated file",
      text: seed.split("\n").slice(0, 12).join("\n") + "\n",
      line: 13,
      message: /line 13: expected the non-sleeping allocation counters: .*, found the end of the file/,
    },
    {
      name: "a line after the end",
      text: `${seed}extra: 1\n`,
      line: 18,
      message: /line 18: expected the end of the file \(the seed layout ends after line 17\), found "extra: 1"/,
    },
    {
      name: "a 2^64 counter",
      text: withLine(modern, 16, "timer                 : 18446744073709551616"),
      line: 16,
      message: /fits %16llu \(0 to 18446744073709551615\)/,
    },
    {
      name: "a reset flag that is not y or n",
      text: withLine(modern, 3, "is resetting          :              yes"),
      line: 3,
      message: /line 3: expected whether a reset is pending \(y or n\)/,
    },
    {
      name: "a command line without its failed count",
      text: withLine(modern, 8, "lock                  :          1579240"),
      line: 8,
      message: /line 8: expected the lock command's counters: "lock +: %16llu \(%llu failed\)"/,
    },
    { name: "a modern file cut short", text: modern.split("\n").slice(0, 25).join("\n") + "\n", line: 26, message: /line 26: .*found the end of the file/ },
    {
      name: "a zero printed two ways",
      text: withLine(withLine(modern, 1, "balloon capabilities  :                0"), 2, "used capabilities     :              0x0"),
      line: 2,
      message: /a zero printed as "0", as on line 1/,
    },
  ];

  it.each(cases)("$name: a StatsParseError that names line $line", ({ text, line, message }) => {
    const error = parseError(text);
    expect(error.code).toBe("E_STATS_PARSE");
    expect(error.name).toBe("StatsParseError");
    expect(error.line).toBe(line);
    expect(error.message).toMatch(new RegExp(`^line ${line}: `));
    expect(error.message).toMatch(message);
    // One line, for a CLI to print as it is.
    expect(error.message).not.toContain("\n");
  });

  it("shortens a long garbled line in the message", () => {
    const error = parseError(withLine(seed, 7, `timer: ${"x".repeat(500)}`));
    expect(error.message.length).toBeLessThan(200);
    expect(error.found).toContain("…");
  });
});

describe("format of a record that is neither layout", () => {
  it("throws a TypeError naming the layout", () => {
    expect(() => format({ layout: "freebsd" } as never)).toThrow(/unknown layout "freebsd"/);
  });
});
