/** The seed's conformance set, read for tests (never copied or changed). */
import { readFileSync, readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";

export const CONFORMANCE = new URL("../../../__fixtures__/conformance/", import.meta.url);
const DEBUGFS = new URL("debugfs/", CONFORMANCE);

/** The vmmemctl samples: file name and text. */
export function samples(): { name: string; text: string }[] {
  return readdirSync(DEBUGFS)
    .filter((name) => name.endsWith(".txt"))
    .sort()
    .map((name) => ({ name, text: readFileSync(new URL(name, DEBUGFS), "utf8") }));
}

/** One sample's text. */
export function sample(name: string): string {
  return readFileSync(new URL(name, DEBUGFS), "utf8");
}

/** A trace's records, parsed. */
export function traceRecords(scenario: string): Record<string, unknown>[] {
  const text = gunzipSync(readFileSync(new URL(`${scenario}.trace.jsonl.gz`, CONFORMANCE))).toString("utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The scenarios of the conformance set. */
export function scenarios(): string[] {
  return readdirSync(CONFORMANCE)
    .filter((name) => name.endsWith(".trace.jsonl.gz"))
    .map((name) => name.slice(0, -".trace.jsonl.gz".length))
    .sort();
}
