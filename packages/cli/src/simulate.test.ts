import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { FIXTURES, jsonLines, vmballoon } from "./cli-runner.js";

const temp = () => mkdtempSync(join(tmpdir(), "vmballoon-cli-"));
const DID_NOT_LOAD = "vmballoon: the balloon did not load: START or GUEST_ID failed (see the trace)\n";

/**
 * The same text, line for line: on a difference, the first line that differs
 * is shown as a diff (a whole trace of megabytes would be no help), then the
 * counts of lines.
 */
function expectSameLines(actual: string, expected: string): void {
  const got = actual.split("\n");
  const want = expected.split("\n");
  const first = want.findIndex((line, i) => got[i] !== line);
  if (first >= 0) expect({ line: first + 1, text: got[first] }).toStrictEqual({ line: first + 1, text: want[first] });
  expect(got.length).toBe(want.length);
}

const names = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".scenario.json"))
  .map((f) => f.slice(0, -".scenario.json".length));

describe("vmballoon simulate, conformance through the CLI", () => {
  it.each(names)("%s: --trace writes the seed's trace, byte for byte", (name) => {
    const out = join(temp(), "trace.jsonl");
    const run = vmballoon(["simulate", "--scenario", join(FIXTURES, `${name}.scenario.json`), "--trace", out]);
    const golden = gunzipSync(readFileSync(join(FIXTURES, `${name}.trace.jsonl.gz`))).toString("utf8");
    // The one scenario whose load fails says so on stderr; every other says nothing.
    expect(run.stderr).toBe(golden.includes('{"t":"initFailed"') ? DID_NOT_LOAD : "");
    expect(run.status).toBe(0);
    expectSameLines(readFileSync(out, "utf8"), golden);
  });
});

describe("vmballoon simulate", () => {
  it("prints the seed's debugfs text for the final state when stdout is not a terminal", () => {
    const scenario = join(FIXTURES, "deflate-basic.scenario.json");
    const run = vmballoon(["simulate", "--scenario", scenario]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const golden = gunzipSync(readFileSync(join(FIXTURES, "deflate-basic.trace.jsonl.gz"))).toString("utf8");
    const debugfs = golden
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { t: string; text?: string })
      .find((r) => r.t === "debugfs")!.text;
    expect(run.stdout).toBe(debugfs);
  });

  it("writes the trace to stdout with --trace -, and nothing else there", () => {
    const run = vmballoon(["simulate", "--scenario", join(FIXTURES, "notneeded.scenario.json"), "--trace", "-"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const golden = gunzipSync(readFileSync(join(FIXTURES, "notneeded.trace.jsonl.gz"))).toString("utf8");
    expectSameLines(run.stdout, golden);
  });

  it("runs a built-in scenario with the whole story: inflate, pressure, a reset, a deflate, the unload", () => {
    const run = vmballoon(["simulate", "--json"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    const stats = summary.final.stats;
    expect(summary.scenario).toBe("built-in scenario");
    expect(stats.lock).toBeGreaterThan(0);
    expect(stats.allocFail).toBeGreaterThan(0); // memory pressure: NOSLEEP allocations failed
    expect(stats.sleepAlloc).toBeGreaterThan(0); // … and sleeping ones took over
    expect(stats.start).toBeGreaterThanOrEqual(2); // a reset: START again
    expect(stats.unlock).toBeGreaterThan(0); // a deflate
    expect(summary.unload).toStrictEqual({ size: 0, guestFree: summary.guest.freePages });
    expect(summary.debugfs).toMatch(/^target: {13}/);
  });

  it("prints one JSON document with --json, matching the trace's final state", () => {
    const dir = temp();
    const out = join(dir, "t.jsonl");
    const run = vmballoon(["simulate", "--scenario", join(FIXTURES, "inflate-basic.scenario.json"), "--json", "--trace", out]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    const records = jsonLines(readFileSync(out, "utf8"));
    // The scenario does not unload: the final state is the last cycle's record, field for field.
    expect(records.some((r) => r.t === "exit")).toBe(false);
    const { t: _t, cycle: _cycle, ...last } = records.filter((r) => r.t === "cycle").at(-1);
    expect(summary.final).toStrictEqual(last);
    expect(summary.debugfs).toBe(records.find((r) => r.t === "debugfs").text);
  });

  it("reports a failed load on stderr and prints no debugfs text", () => {
    const run = vmballoon(["simulate", "--scenario", join(FIXTURES, "init-fails.scenario.json")]);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(DID_NOT_LOAD);
  });

  describe("bad input: one line naming what is wrong, exit status 2, nothing run", () => {
    const cases: [string, unknown, string][] = [
      ["a missing field", { cycles: 3, guest: { totalPages: 1, freePages: 1, firstPfn: 0, nosleepReserve: 0 }, events: [] }, "guest.sleepReserve: missing"],
      [
        "an unknown command",
        {
          cycles: 3,
          guest: { totalPages: 1, freePages: 1, firstPfn: 0, nosleepReserve: 0, sleepReserve: 0 },
          events: [{ cycle: 1, failNext: { cmd: "NOPE", count: 1, status: 1 } }],
        },
        'events[0].failNext.cmd: unknown command "NOPE" (expected START, GET_TARGET, LOCK, UNLOCK, GUEST_ID)',
      ],
      [
        "an event past the last cycle",
        { cycles: 3, guest: { totalPages: 1, freePages: 1, firstPfn: 0, nosleepReserve: 0, sleepReserve: 0 }, events: [{ cycle: 4, setTarget: 1 }] },
        "events[0].cycle: cycle 4 is past the scenario's last cycle (3)",
      ],
    ];

    it.each(cases)("%s", (_what, scenario, message) => {
      const dir = temp();
      const file = join(dir, "bad.json");
      const trace = join(dir, "trace.jsonl");
      writeFileSync(file, JSON.stringify(scenario));
      const run = vmballoon(["simulate", "--scenario", file, "--trace", trace]);
      expect(run.status).toBe(2);
      expect(run.stdout).toBe("");
      // One line: the file, where in it, and what is wrong.
      expect(run.stderr).toBe(`vmballoon: ${file}: ${message}\n`);
      expect(existsSync(trace)).toBe(false);
    });

    it("a file that is not JSON", () => {
      const file = join(temp(), "bad.json");
      writeFileSync(file, "{ cycles: 3 }");
      const run = vmballoon(["simulate", "--scenario", file]);
      expect(run.status).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toBe(`vmballoon: ${file}: not valid JSON: Expected property name or '}' in JSON at position 2\n`);
    });

    it("a scenario file that does not exist", () => {
      const run = vmballoon(["simulate", "--scenario", "/nonexistent/scenario.json"]);
      expect(run.status).toBe(2);
      expect(run.stderr).toBe("vmballoon: cannot read the scenario /nonexistent/scenario.json: no such file or directory\n");
    });

    it("a scenario file that never ends (/dev/zero): exit 2, one line", () => {
      const run = vmballoon(["simulate", "--scenario", "/dev/zero"]);
      expect(run.status).toBe(2);
      expect(run.stderr).toBe("vmballoon: cannot read the scenario /dev/zero: more than 64 MiB, too much for a scenario\n");
    });

    it("keeps an existing trace file when the scenario is bad", () => {
      const dir = temp();
      const trace = join(dir, "trace.jsonl");
      writeFileSync(trace, "precious\n");
      const bad = join(dir, "bad.json");
      writeFileSync(bad, "[]");
      const run = vmballoon(["simulate", "--scenario", bad, "--trace", trace]);
      expect(run.stderr).toBe(`vmballoon: ${bad}: expected a JSON object at the top level, got an array\n`);
      expect(run.status).toBe(2);
      expect(readFileSync(trace, "utf8")).toBe("precious\n");
      expect(readdirSync(dir).sort()).toStrictEqual(["bad.json", "trace.jsonl"]);
    });

    it("--json with --trace - (both want stdout)", () => {
      const run = vmballoon(["simulate", "--json", "--trace", "-"]);
      expect(run.status).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toBe("vmballoon: --json and --trace - both want stdout; give --trace a file\nRun 'vmballoon --help' for usage.\n");
    });
  });
});
