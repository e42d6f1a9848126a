// Throughput of the engine against the reference guest and monitor, in page
// operations (LOCK or UNLOCK of one page) per second, on the churning
// scenario of issue 2. Prints figures; asserts nothing.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runScenario, validateScenario } from "../dist/sim/index.js";
import { churnScenario } from "./scenarios.mjs";

const scenario = validateScenario(churnScenario());
if (process.argv[2] === "once") {
  runScenario(scenario);
  process.exit(0);
}
const REFERENCE_NS_PER_OP = 0.4e9 / 49e6; // the seed's C, -O2, same model, this machine (issue 2)

function once() {
  const start = process.hrtime.bigint();
  const result = runScenario(scenario);
  const ns = Number(process.hrtime.bigint() - start);
  const { lock, unlock } = result.snapshot.stats;
  return { ns, ops: lock + unlock };
}

const runs = [];
for (let i = 0; i < 5; i++) runs.push(once());
const best = runs.reduce((a, b) => (a.ns < b.ns ? a : b));
const fmt = (n) => n.toLocaleString("en-US");

console.log("engine throughput, churning 4 Mi-page guest, 3000 cycles (in process, 5 runs)");
console.log(`  page operations      ${fmt(best.ops)}`);
console.log(`  best run             ${(best.ns / 1e6).toFixed(0)} ms   (first run ${(runs[0].ns / 1e6).toFixed(0)} ms, JIT warm-up included)`);
console.log(`  per page operation   ${(best.ns / best.ops).toFixed(1)} ns   (${fmt(Math.round((best.ops / best.ns) * 1e9))} ops/s)`);
console.log(`  seed's C reference   ${REFERENCE_NS_PER_OP.toFixed(1)} ns/op; ratio ${(best.ns / best.ops / REFERENCE_NS_PER_OP).toFixed(2)}x (goal: within 2x)`);

// Start-up included: a fresh process that loads the engine and runs the scenario once.
const walls = [];
for (let i = 0; i < 3; i++) {
  const begin = process.hrtime.bigint();
  execFileSync(process.execPath, [fileURLToPath(import.meta.url), "once"], { stdio: "inherit" });
  walls.push(Number(process.hrtime.bigint() - begin));
}
const wall = Math.min(...walls);
console.log(`  fresh process        ${(wall / 1e6).toFixed(0)} ms (best of 3; node start-up included) = ${(wall / best.ops).toFixed(1)} ns/op; ratio ${(wall / best.ops / REFERENCE_NS_PER_OP).toFixed(2)}x`);
