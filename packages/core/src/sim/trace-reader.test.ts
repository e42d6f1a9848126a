import { readFileSync, readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { builtinScenario, formatTraceRecord, readTrace, runScenario, TraceError, type ReadRecord } from "./index.js";

const seedDir = new URL("../../../../__fixtures__/conformance/", import.meta.url);
const modernDir = new URL("modern/", seedDir);
const traces = (dir: URL) => readdirSync(dir).filter((f) => f.endsWith(".trace.jsonl.gz"));
const text = (dir: URL, file: string) => gunzipSync(readFileSync(new URL(file, dir))).toString("utf8");

/** The message readTrace throws for `input`, or "ok". */
function verdict(input: string): string {
  try {
    readTrace(input);
    return "ok";
  } catch (error) {
    if (!(error instanceof TraceError)) throw error;
    expect(error.code).toBe("E_TRACE");
    return error.message;
  }
}

const cmd = (cycle: number, name = "GET_TARGET", status = 0) => JSON.stringify({ t: "cmd", cycle, cmd: name, arg: 100, status, result: 0 });
const cycleRecord = (cycle: number, extra: object = {}) => JSON.stringify({ t: "cycle", cycle, size: 0, target: 10, guestFree: 5, ...extra });
const debugfs = JSON.stringify({ t: "debugfs", text: "target: 0\n" });
const lines = (...records: string[]) => records.map((r) => `${r}\n`).join("");

describe("readTrace", () => {
  it.each(traces(seedDir))("reads the seed's %s, every line a record, in order", (file) => {
    const input = text(seedDir, file);
    const seen: number[] = [];
    const count = readTrace(input, (_record, line) => seen.push(line));
    const expected = input.split("\n").length - 1;
    expect(count).toBe(expected);
    expect(seen).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
  });

  it.each(traces(modernDir))("reads the modern driver's %s (its extra kinds and fields)", (file) => {
    const input = text(modernDir, file);
    const kinds = new Set<string>();
    readTrace(input, (record) => kinds.add(record.t));
    expect(kinds.has("cmd") || kinds.has("cycle")).toBe(true);
  });

  it("reads what the engine writes: the built-in scenario's records come back equal", () => {
    const written: string[] = [];
    runScenario(builtinScenario, { onRecord: (record) => written.push(formatTraceRecord(record)) });
    const read: ReadRecord[] = [];
    readTrace(`${written.join("\n")}\n`, (record) => read.push(record));
    expect(read.map((r) => JSON.stringify(r))).toEqual(written);
  });

  it("keeps a kind of record it does not know, when it carries a cycle", () => {
    const kinds: string[] = [];
    readTrace(lines(cmd(0, "START"), JSON.stringify({ t: "balloonInfo", cycle: 1, note: "x" }), cycleRecord(1), debugfs), (r) => kinds.push(r.t));
    expect(kinds).toEqual(["cmd", "balloonInfo", "cycle", "debugfs"]);
  });

  it.each([
    ["an empty file", "", "line 1: no records: an empty file is not a trace"],
    ["binary data", "\u0000\u0001\u0002garbage\n", "line 1: binary data, not a trace (JSON Lines text)"],
    [
      "a scenario, pretty-printed",
      '{\n "cycles": 3,\n "guest": {}\n}\n',
      'line 1: "{" alone: one JSON document over several lines (a scenario?), not a trace, which has one JSON object on each line',
    ],
    [
      "a scenario on one line",
      '{"cycles":3,"guest":{},"events":[]}\n',
      'line 1: no "t" field: not a trace record (this is a scenario: `vmballoon simulate --scenario F --report F.html` runs it)',
    ],
    [
      "a vmmemctl text",
      "target:                20000 pages\ncurrent: 1 pages\n",
      'line 1: "target:                20000 pages": a text of "name: value" lines (a vmmemctl text?), not a trace',
    ],
    [
      "vmballoon run --json's output",
      '{"t":"start","host":"simulated"}\n',
      'line 1: a trace cannot begin with a "start" record (the output of `vmballoon run --json`?): it begins with the load\'s commands',
    ],
    ["a JSON array", "[1,2]\n", "line 1: an array, not a trace record (a JSON object)"],
    [
      "a record with a mistyped field",
      lines(cmd(0, "START"), cycleRecord(1, { size: "12" })),
      'line 2: "size" of a "cycle" record should be a whole number, 0 or more, not "12"',
    ],
    ["a command without its status", lines(JSON.stringify({ t: "cmd", cycle: 0, cmd: "START", arg: 2, result: 0 })), 'line 1: a "cmd" record without "status"'],
    ["cycles that go back", lines(cmd(0, "START"), cmd(2), cmd(1)), "line 3: cycle 1 after cycle 2: the cycles of a trace never go back"],
    ["two records for one cycle", lines(cmd(0, "START"), cycleRecord(1), cycleRecord(1)), 'line 3: a second "cycle" record for cycle 1'],
    [
      "a record after the end",
      lines(cmd(0, "START"), '{"t":"initFailed"}', cmd(1)),
      'line 3: a "cmd" record after the trace\'s end (its "initFailed" record on line 2)',
    ],
    [
      "a file cut in the middle of a line",
      `${lines(cmd(0, "START"), cycleRecord(1))}{"t":"cycle","cycle":2,"si`,
      "line 3: no line break at its end: the file is cut short in the middle of a record",
    ],
    [
      "a file cut where the JSON still parses",
      `${lines(cmd(0, "START"))}${cmd(1).slice(0, -1).replace('"result":0', '"result":1')}}`,
      "line 2: no line break at its end: the file is cut short in the middle of a record",
    ],
    [
      "a file without its end record",
      lines(cmd(0, "START"), cycleRecord(1), cmd(2)),
      'line 4: the file ends after cycle 1 without the trace\'s end (its final "debugfs", "exit" or "initFailed" record): cut short?',
    ],
    [
      "a modern trace cut after a debugfs printed before its cycle",
      lines(cmd(1, "START"), cycleRecord(1), JSON.stringify({ t: "debugfs", cycle: 2, text: "x" })),
      'line 4: the file ends after cycle 1 without the trace\'s end (its final "debugfs", "exit" or "initFailed" record): cut short?',
    ],
    ["a blank line", lines(cmd(0, "START"), ""), "line 2: an empty line: a trace has one JSON object on every line"],
  ])("refuses %s with one line naming the line", (_what, input, message) => {
    expect(verdict(input)).toBe(message);
  });

  it("accepts a whole trace of each ending: final debugfs, exit, initFailed, a modern debugfs at the last cycle", () => {
    expect(verdict(lines(cmd(0, "START"), cycleRecord(1), debugfs))).toBe("ok");
    expect(verdict(lines(cmd(0, "START"), cycleRecord(1), debugfs, cmd(2, "START"), '{"t":"exit","size":0,"guestFree":5}'))).toBe("ok");
    expect(verdict(lines(cmd(0, "START", 1), '{"t":"initFailed"}'))).toBe("ok");
    expect(verdict(lines(cmd(1, "START"), cycleRecord(1), JSON.stringify({ t: "debugfs", cycle: 1, text: "x" })))).toBe("ok");
  });

  it("names the line of a golden trace cut anywhere", () => {
    const all = text(seedDir, "reset-midway.trace.jsonl.gz").split("\n");
    for (const keep of [16400, 20000, all.length - 3]) {
      const kept = all.slice(0, keep);
      expect(verdict(`${kept.join("\n")}\n`)).toBe(
        `line ${keep + 1}: the file ends after cycle ${lastCycle(kept)} without the trace's end (its final "debugfs", "exit" or "initFailed" record): cut short?`,
      );
      expect(verdict(kept.join("\n").slice(0, -5))).toBe(`line ${keep}: no line break at its end: the file is cut short in the middle of a record`);
    }
    expect(verdict(`${all.slice(0, 2).join("\n")}\n`)).toBe(
      `line 3: the file ends without the trace's end (its final "debugfs", "exit" or "initFailed" record): cut short?`,
    );
  });
});

function lastCycle(records: string[]): number {
  const cycles = records.map((r) => JSON.parse(r) as { t: string; cycle: number }).filter((r) => r.t === "cycle");
  return cycles[cycles.length - 1]!.cycle;
}
