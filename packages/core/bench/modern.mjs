// Today's driver's engine (ModernBalloon) against its reference guest and
// monitor, on the seed's churning scenario (a 4 Mi-page guest, 3000 cycles,
// the target moving between 3,000,000 and 200,000 frames every 150 cycles),
// twice: with batching offered but not 2 MB pages (capabilities 0x36: up to
// 512 4 KB pages a command), and with everything offered (0x3e: 2 MB pages).
// Beside it, in the same turns, the seed's engine (Balloon) on the same
// scenario: one hypervisor call a frame, the figure batching is there to beat.
// Then memory: a full inflate of a 16 Mi-page guest, in bytes of peak RSS per
// ballooned frame. Prints figures; asserts nothing.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { RUNS, best, measure, median, ms, perOp } from "./measure.mjs";

const child = fileURLToPath(new URL("./modern-child.mjs", import.meta.url));
const seedChild = [process.execPath, [fileURLToPath(new URL("./throughput.mjs", import.meta.url)), "once"]];

console.log(`today's driver: churning 4 Mi-page guest, 3000 cycles (the seed's scenario); ${RUNS} fresh processes each`);
/** A side's line: whole-process times, and the scenario alone per unit of work. */
const row = (name, runs, count, unit) => {
  const inside = ` · scenario alone best ${perOp(best(runs.map((r) => r.ns)), count)} (${unit})`;
  console.log(`    ${name.padEnd(26)} whole process best ${ms(best(runs.map((r) => r.wall)))}, median ${ms(median(runs.map((r) => r.wall)))}${inside}`);
};
for (const [capabilities, what] of [
  [0x36, "batched 4 KB pages (host offers 0x36)"],
  [0x3e, "2 MB pages too (host offers 0x3e)"],
]) {
  const [ours, seed] = measure([[process.execPath, [child, "churn", String(capabilities)]], seedChild]);
  const frames = ours[0].frames;
  console.log(`  ${what}`);
  row("today's engine", ours, frames, "a frame allocated or freed");
  row("the seed's engine", seed, seed[0].ops, "a page locked or unlocked");
  const paired = median(ours.map((r, i) => r.wall / seed[i].wall)).toFixed(2);
  console.log(`    today's / the seed's, start-up included: median of side-by-side runs ${paired}x`);
  console.log(
    `    hypervisor calls: ${ours[0].calls.toLocaleString("en-US")} for ${frames.toLocaleString("en-US")} frames allocated or freed: one per ${(frames / ours[0].calls).toFixed(0)} (the seed: one LOCK or UNLOCK a page, ${seed[0].ops.toLocaleString("en-US")} of them)`,
  );
}

const memory = (capabilities, pages) =>
  JSON.parse(execFileSync(process.execPath, [child, "memory", String(capabilities), String(pages)], { encoding: "utf8" }));
console.log("memory, full inflate of a 16 Mi-page (64 GiB) simulated guest, today's driver");
for (const [capabilities, what] of [
  [0x36, "4 KB pages (0x36)"],
  [0x3e, "2 MB pages (0x3e)"],
]) {
  const tiny = memory(capabilities, 1024);
  const full = memory(capabilities, 16 << 20);
  const perFrame = (full.peak - tiny.peak) / full.size;
  console.log(
    `  ${what.padEnd(18)} ${full.size.toLocaleString("en-US")} frames ballooned (${full.huge.toLocaleString("en-US")} 2 MB pages), peak RSS ${(full.peak / 2 ** 20).toFixed(0)} MiB: ${perFrame.toFixed(2)} bytes a ballooned frame above a tiny run (the seed's engine: about 8)`,
  );
}
