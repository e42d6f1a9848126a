// What the benchmarks share: fresh processes timed whole, taken in turns,
// and the seed's own C built against a model of SIMULATION.md. Prints
// nothing itself.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Fresh processes of each side (`BENCH_RUNS`, 7 by default). */
export const RUNS = Number(process.env.BENCH_RUNS ?? 7);

/**
 * One fresh process: it prints {ops, ns, …}, or the CLI's JSON summary (ops
 * from its counters, no inside time); the whole process's wall time is added.
 */
export function once(command, args) {
  const begin = process.hrtime.bigint();
  const out = execFileSync(command, args, { encoding: "utf8", maxBuffer: 2 ** 26 });
  const wall = Number(process.hrtime.bigint() - begin);
  const printed = JSON.parse(out);
  if (printed.final === undefined) return { ...printed, wall };
  return { ops: printed.final.stats.lock + printed.final.stats.unlock, ns: undefined, wall };
}

/**
 * RUNS fresh processes of each side, taken in turns (ours, the C, ours, …),
 * so that both sides see the same quiet and noisy spells of this machine.
 */
export function measure(sides) {
  const runs = sides.map(() => []);
  for (let i = 0; i < RUNS; i++) sides.forEach(([command, args], side) => runs[side].push(once(command, args)));
  return runs;
}

export const best = (values) => Math.min(...values);
export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
export const ms = (ns) => `${(ns / 1e6).toFixed(0)} ms`;
export const perOp = (ns, ops) => `${(ns / ops).toFixed(1)} ns/op`;

/**
 * The seed's C built with gcc -O2 against a model in C: `folder` (beside this
 * file) holds kernel.h and model.c, ours; `source` is the driver's file, which
 * the repository does not keep (only our code is in it): the seed is given to
 * the project beside it, in ../shared/seed/ from the repository's root.
 * `patch` turns its text into what the model compiles (its #include lines are
 * dropped first). `{ program }`, or `{ why }` it could not be built.
 */
export function buildC(folder, source, patch) {
  if (!existsSync(source)) return { why: `no ${source} here` };
  const cc = spawnSync("gcc", ["--version"]);
  if (cc.status !== 0) return { why: "no gcc here" };
  const here = new URL(`./${folder}/`, import.meta.url);
  const dir = mkdtempSync(join(tmpdir(), `vmballoon-${folder}-`));
  const text = readFileSync(source, "utf8").replace(/^#include <[^>]+>\n/gm, "");
  writeFileSync(join(dir, "vmw_balloon.c"), patch(text));
  for (const file of ["kernel.h", "model.c"]) copyFileSync(fileURLToPath(new URL(file, here)), join(dir, file));
  execFileSync("gcc", ["-O2", "-w", "-o", join(dir, "model"), join(dir, "model.c")]);
  return { program: join(dir, "model") };
}
