/**
 * What the tests check the constants against, read (never copied or changed):
 * the conformance traces (the commands, statuses and debugfs texts the
 * drivers themselves produced) and the project's copies of the specs, `docs/`.
 */
import { readFileSync, readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";

const ROOT = new URL("../../../", import.meta.url);

/** One record of a trace: a command, a cycle, a debugfs text… */
export interface TraceLine {
  readonly t: string;
  readonly cmd?: string;
  readonly status?: number;
  readonly result?: number;
  readonly batch?: readonly (readonly [number, number])[];
  readonly text?: string;
}

/** Every record of every trace of a conformance folder (`""`: the seed's, `"modern/"`: today's driver's). */
export function conformanceRecords(folder: "" | "modern/"): TraceLine[] {
  const dir = new URL(`__fixtures__/conformance/${folder}`, ROOT);
  return readdirSync(dir)
    .filter((name) => name.endsWith(".trace.jsonl.gz"))
    .sort()
    .flatMap((name) =>
      gunzipSync(readFileSync(new URL(name, dir)))
        .toString("utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as TraceLine),
    );
}

/** The statuses the scenarios of a conformance folder force (`refuse`, `failNext`): any number a scenario chose. */
export function forcedStatuses(folder: "" | "modern/"): Set<number> {
  const dir = new URL(`__fixtures__/conformance/${folder}`, ROOT);
  const statuses = new Set<number>();
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".scenario.json"))) {
    for (const match of readFileSync(new URL(name, dir), "utf8").matchAll(/"status"\s*:\s*(\d+)/g)) statuses.add(Number(match[1]));
  }
  return statuses;
}

/** A page of the project's docs (`docs/NAME`), its text. */
export function doc(name: string): string {
  return readFileSync(new URL(`docs/${name}`, ROOT), "utf8");
}

/** Where the seed is given to the project: `shared/seed/vmw_balloon.c`, beside the repository (not in it). */
export const GIVEN_SEED = new URL("../shared/seed/vmw_balloon.c", ROOT);
