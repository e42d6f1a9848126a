/** What both drivers' conformance tests share: the C's traces, and one test a scenario (for tests only). */
import { readFileSync, readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";

export interface ConformanceSuite {
  /** The describe block's title. */
  readonly title: string;
  /** The folder of `NAME.scenario.json` and `NAME.trace.jsonl.gz`, below `__fixtures__/conformance/` ("" for the seed's). */
  readonly folder: string;
  /** How many public scenarios there are at least. */
  readonly minimum: number;
  /** Whose trace a scenario must reproduce, in the test's name ("the seed's trace"). */
  readonly whose: string;
  /** Runs the scenario of this text, giving the trace's lines as the engine formats them. */
  readonly run: (scenarioText: string) => string[];
}

/** The trace the C produced for a scenario of `folder`, one string per line. */
export function goldenTrace(folder: string, name: string): string[] {
  const dir = new URL(`../../../../__fixtures__/conformance/${folder}`, import.meta.url);
  const text = gunzipSync(readFileSync(new URL(`${name}.trace.jsonl.gz`, dir))).toString("utf8");
  return text.split("\n").filter((line) => line !== "");
}

/** One test a scenario of the folder: its run reproduces the C's trace record for record. */
export function describeConformance(suite: ConformanceSuite): void {
  const dir = new URL(`../../../../__fixtures__/conformance/${suite.folder}`, import.meta.url);
  const names = readdirSync(dir)
    .filter((f) => f.endsWith(".scenario.json"))
    .map((f) => f.slice(0, -".scenario.json".length));

  describe(suite.title, () => {
    it("has the public scenarios", () => {
      expect(names.length).toBeGreaterThanOrEqual(suite.minimum);
    });

    it.each(names)(`%s reproduces ${suite.whose} record for record`, (name) => {
      const lines = suite.run(readFileSync(new URL(`${name}.scenario.json`, dir), "utf8"));
      const golden = goldenTrace(suite.folder, name);
      // Compare record by record, so that a failure names the first record that differs.
      const first = lines.findIndex((line, i) => line !== golden[i]);
      expect({ at: first, got: lines[first], want: golden[first] }).toEqual({ at: -1, got: undefined, want: undefined });
      expect(lines.length).toBe(golden.length);
    });
  });
}
