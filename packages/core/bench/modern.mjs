// Today's driver's engine (ModernBalloon) against its reference guest and
// monitor, on the seed's churning scenario (a 4 Mi-page guest, 3000 cycles,
// the target moving between 3,000,000 and 200,000 frames every 150 cycles),
// twice: with batching offered but not 2 MB pages (capabilities 0x36: up to
// 512 4 KB pages a command), and with everything offered (0x3e: 2 MB pages).
// Beside it, in the same run, the driver's own C (drivers/misc/vmw_balloon.c)
// compiled with gcc -O2 against the same model in C (bench/modern/), and an
// empty Node program (Node's own start-up, the floor of any ratio). Then
// memory: a full inflate of a 16 Mi-page guest, in bytes of peak RSS per
// ballooned frame. Prints figures; asserts nothing.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { RUNS, best, buildC, measure, median, ms, perOp } from "./measure.mjs";
import { modernChurn } from "./modern-child.mjs";

const child = fileURLToPath(new URL("./modern-child.mjs", import.meta.url));

/** Today's driver with its #includes dropped and its one `inl` replaced by the model's monitor. */
function buildModern() {
  return buildC("modern", "modern/vmw_balloon.c", (driver) => {
    const start = driver.indexOf('asm volatile ("inl %%dx"');
    const end = driver.indexOf('"memory");', start) + '"memory");'.length;
    return `${driver.slice(0, start)}status = model_command(cmd, arg1, arg2, &local_result, &dummy1); (void)dummy2; (void)dummy3;${driver.slice(end)}`;
  });
}

const model = buildModern();
console.log(`today's driver: churning 4 Mi-page guest, 3000 cycles (the seed's scenario); ${RUNS} fresh processes each`);
for (const [capabilities, what] of [
  [0x36, "batched 4 KB pages (host offers 0x36)"],
  [0x3e, "2 MB pages too (host offers 0x3e)"],
]) {
  const { guest, cycles, events } = modernChurn(capabilities);
  const args = [guest.totalPages, guest.freePages, guest.firstPfn, guest.nosleepReserve, guest.sleepReserve, cycles, capabilities]
    .map(String)
    .concat(events.map((e) => `${e.cycle}:${e.setTarget}`));
  // Node's own start-up, in the same turns: an empty program (it prints the JSON the measure expects).
  const floor = [process.execPath, ["-e", "process.stdout.write('{}')"]];
  const sides = [floor, [process.execPath, [child, "churn", String(capabilities)]], ...(model ? [[model, args]] : [])];
  const [empty, ours, theirs] = measure(sides);
  const c = theirs?.[0];
  // Frames locked and unlocked: the model in C counts them; the two models do the same work when they agree.
  const ops = c?.ops;
  console.log(`  ${what}`);
  const row = (name, runs) => {
    const inside = ops === undefined ? "" : ` · scenario alone best ${perOp(best(runs.map((r) => r.ns)), ops)}`;
    console.log(`    ${name.padEnd(20)} whole process best ${ms(best(runs.map((r) => r.wall)))}, median ${ms(median(runs.map((r) => r.wall)))}${inside}`);
  };
  row("TypeScript engine", ours);
  if (theirs) {
    row("the driver's C, -O2", theirs);
    const same = ["calls", "size", "free"].every((key) => ours[0][key] === c[key]);
    if (!same) console.log(`    (the two models differ: TypeScript ${JSON.stringify(ours[0])}, C ${JSON.stringify(c)})`);
    const paired = median(ours.map((r, i) => r.wall / theirs[i].wall)).toFixed(2);
    const floorRatio = median(empty.map((r, i) => r.wall / theirs[i].wall)).toFixed(2);
    console.log(
      `    Node doing nothing   whole process best ${ms(best(empty.map((r) => r.wall)))}, median ${ms(median(empty.map((r) => r.wall)))}: ${floorRatio}x the C (paired median), the floor of any ratio here`,
    );
    console.log(
      `    ratio, start-up included: best ${(best(ours.map((r) => r.wall)) / best(theirs.map((r) => r.wall))).toFixed(2)}x, median of side-by-side runs ${paired}x (goal: within 2x)`,
    );
    console.log(
      `    hypervisor calls: ${ours[0].calls.toLocaleString("en-US")} for ${ops.toLocaleString("en-US")} frames locked or unlocked: one per ${(ops / ours[0].calls).toFixed(0)} (the C: one per ${(ops / c.calls).toFixed(0)}; the seed: one per frame)`,
    );
  } else {
    console.log("    (no gcc here: the driver's C was not built)");
  }
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
