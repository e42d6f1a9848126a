/** The seed's conformance set, read for tests (never copied or changed). */
import { readFileSync, readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import fc from "fast-check";

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

/**
 * The seed of fast-check's runs: `FC_SEED` from the environment, or a fixed
 * one, so that every run of the suite tries the same cases and a failure on
 * one machine is the same failure on another. Printed once per test file
 * that uses it; fast-check prints it again, with the path to the failing
 * case, when a property fails. Replay: `FC_SEED=<seed> npx vitest run`.
 */
export function seedFastCheck(): number {
  const fromEnv = process.env.FC_SEED;
  const seed = fromEnv === undefined || fromEnv === "" ? FIXED_SEED : Number(fromEnv);
  if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer, not ${JSON.stringify(fromEnv)}`);
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
  console.info(`fast-check seed ${seed}${fromEnv ? " (FC_SEED)" : " (fixed; set FC_SEED to try others)"}`);
  return seed;
}

const FIXED_SEED = 20260529;
