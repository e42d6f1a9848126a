import { readFileSync, readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { formatTraceRecord, parseModernScenario, runModernScenario } from "./index.js";

const dir = new URL("../../../../__fixtures__/conformance/modern/", import.meta.url);
const names = readdirSync(dir)
  .filter((f) => f.endsWith(".scenario.json"))
  .map((f) => f.slice(0, -".scenario.json".length));

/** The trace today's driver's own C produced for a scenario, one string per line. */
export function modernGoldenTrace(name: string): string[] {
  const text = gunzipSync(readFileSync(new URL(`${name}.trace.jsonl.gz`, dir))).toString("utf8");
  return text.split("\n").filter((line) => line !== "");
}

describe("conformance with today's driver", () => {
  it("has the public scenarios", () => {
    expect(names.length).toBeGreaterThanOrEqual(20);
  });

  it.each(names)("%s reproduces the C's trace record for record", (name) => {
    const scenario = parseModernScenario(readFileSync(new URL(`${name}.scenario.json`, dir), "utf8"));
    const lines: string[] = [];
    runModernScenario(scenario, { onRecord: (record) => lines.push(formatTraceRecord(record)) });
    const golden = modernGoldenTrace(name);
    // Compare record by record, so that a failure names the first record that differs.
    const first = lines.findIndex((line, i) => line !== golden[i]);
    expect({ at: first, got: lines[first], want: golden[first] }).toEqual({ at: -1, got: undefined, want: undefined });
    expect(lines.length).toBe(golden.length);
  });
});
