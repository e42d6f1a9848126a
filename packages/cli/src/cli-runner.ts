/** Runs the built `vmballoon` as a user would, for the CLI's tests. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../bin/vmballoon.js", import.meta.url));
export const FIXTURES = fileURLToPath(new URL("../../../__fixtures__/conformance/", import.meta.url));

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to stdin (empty by default). */
  readonly input?: string;
  /** Variables added to this process's environment. */
  readonly env?: Record<string, string>;
  /** Run as this user and group id, from `/` (needs root). */
  readonly uid?: number;
}

/** Runs `vmballoon ARGS` with piped stdio (not a terminal) and without colour variables. */
export function vmballoon(args: readonly string[], options: RunOptions = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  if (!options.env || !("NO_COLOR" in options.env)) delete env.NO_COLOR;
  if (!options.env || !("FORCE_COLOR" in options.env)) delete env.FORCE_COLOR;
  const ids = options.uid === undefined ? {} : { uid: options.uid, gid: options.uid, cwd: "/" };
  const result = spawnSync(process.execPath, [BIN, ...args], {
    input: options.input ?? "",
    encoding: "utf8",
    env,
    timeout: 60_000,
    maxBuffer: 256 * 2 ** 20,
    ...ids,
  });
  // A run that did not end by itself (killed at the deadline, or not started) says so, rather than showing as a status of
  // null. EPIPE is not one: the program stopped reading stdin before the end (as it should past a bound).
  if (result.error && (result.error as NodeJS.ErrnoException).code !== "EPIPE")
    throw new Error(`vmballoon ${args.join(" ")}: ${result.error.message}`, { cause: result.error });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A stack trace's marks, which an expected failure must never show. */
export const STACK = /\n\s+at |internal error/;

/**
 * The records of JSON Lines text (a trace, `run --json`'s output): one JSON value a line, the final newline ignored.
 * Typed as `JSON.parse` gives them: the tests that read them assert their shape.
 */
export function jsonLines(text: string): ReturnType<typeof JSON.parse>[] {
  return text
    .trimEnd()
    .split("\n")
    .map((line): ReturnType<typeof JSON.parse> => JSON.parse(line));
}

/** The page `vmballoon report TRACE --output F` writes; a run that says anything or fails throws what it said. */
export function reportPage(trace: string): string {
  const out = join(mkdtempSync(join(tmpdir(), "vmballoon-report-")), "report.html");
  const run = vmballoon(["report", trace, "--output", out]);
  if (run.status !== 0 || run.stderr !== "") throw new Error(`vmballoon report ${trace}: exit status ${run.status}: ${run.stderr}`);
  return readFileSync(out, "utf8");
}
