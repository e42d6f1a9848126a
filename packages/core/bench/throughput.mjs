// Throughput of the engine against the reference guest and monitor, in page
// operations (LOCK or UNLOCK of one page) a second, on issue 2's churning
// scenario: a 4 Mi-page guest, 3000 cycles, the target moving between
// 3,000,000 and 200,000 pages every 150 cycles (about 49 million operations).
//
// Beside it, in the same run, the seed's own vmw_balloon.c compiled with
// gcc -O2 against the same model in C (bench/seed/), when gcc is there and so
// is the seed (../shared/seed/vmw_balloon.c from the repository's root: given
// to the project, not kept in the repository). Each
// run is a fresh process, timed whole (start-up included) and inside (the
// scenario alone). This machine's speed wanders from run to run, so each side
// runs several times, the two sides in turns: best and median are printed.
// Prints figures; asserts nothing.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runScenario, validateScenario } from "../dist/sim/index.js";
import { RUNS, best, buildC, measure, median, ms, perOp } from "./measure.mjs";
import { churnScenario } from "./scenarios.mjs";
const scenario = validateScenario(churnScenario());

if (process.argv[2] === "once") {
  const begin = process.hrtime.bigint();
  const result = runScenario(scenario);
  const ns = Number(process.hrtime.bigint() - begin);
  const { lock, unlock } = result.snapshot.stats;
  process.stdout.write(JSON.stringify({ ops: lock + unlock, ns }));
  process.exit(0);
}

/** Where the seed is given to the project: shared/seed/ beside the repository. */
const SEED_SOURCE = fileURLToPath(new URL("../../../../shared/seed/vmw_balloon.c", import.meta.url));

/** The seed's vmw_balloon.c with its inline-asm backdoor replaced by the model's. */
function buildSeed() {
  return buildC("seed", SEED_SOURCE, (seed) => {
    const start = seed.indexOf("#define VMWARE_BALLOON_CMD(cmd, data, result)");
    const end = seed.indexOf("})", start) + 2;
    return `${seed.slice(0, start)}#define VMWARE_BALLOON_CMD(cmd, data, result) model_command(VMW_BALLOON_CMD_##cmd, (data), &(result))${seed.slice(end)}`;
  });
}

const { guest } = scenario;
const seedArgs = [guest.totalPages, guest.freePages, guest.firstPfn, guest.nosleepReserve, guest.sleepReserve, scenario.cycles]
  .map(String)
  .concat(scenario.events.map((e) => `${e.cycle}:${e.setTarget}`));

// The same scenario through the CLI a user runs: its start-up (argument
// parsing, the command's modules, the JSON summary) included.
const cli = fileURLToPath(new URL("../../cli/bin/vmballoon.js", import.meta.url));
const scenarioFile = join(mkdtempSync(join(tmpdir(), "vmballoon-churn-")), "churn.json");
writeFileSync(scenarioFile, JSON.stringify(churnScenario()));
const cliSide = existsSync(join(dirname(cli), "../dist/cli.js")) ? [[process.execPath, [cli, "simulate", "--scenario", scenarioFile, "--json"]]] : [];

const { program: seedModel, why: noSeed } = buildSeed();
const [ours, ...others] = measure([[process.execPath, [fileURLToPath(import.meta.url), "once"]], ...cliSide, ...(seedModel ? [[seedModel, seedArgs]] : [])]);
const viaCli = cliSide.length > 0 ? others.shift() : undefined;
const seed = others.shift();
const ops = ours[0].ops;

console.log(`engine throughput: churning 4 Mi-page guest, 3000 cycles, ${ops.toLocaleString("en-US")} page operations; ${RUNS} fresh processes each`);
/** A side's line: whole-process times, and the scenario alone where the process timed it. */
const row = (name, runs, note = "") => {
  const inside =
    runs[0].ns === undefined
      ? ""
      : ` · scenario alone best ${perOp(best(runs.map((r) => r.ns)), ops)} (${Math.round((ops / best(runs.map((r) => r.ns))) * 1e9).toLocaleString("en-US")} ops/s)`;
  console.log(`  ${name.padEnd(22)} whole process best ${ms(best(runs.map((r) => r.wall)))}, median ${ms(median(runs.map((r) => r.wall)))}${inside}${note}`);
};
row("TypeScript engine", ours);
if (viaCli) {
  if (viaCli[0].ops !== ops) console.log(`  (the CLI did ${viaCli[0].ops} operations: it ran another scenario!)`);
  row("vmballoon simulate", viaCli, " (the CLI, --json)");
}
if (seed) {
  if (seed[0].ops !== ops) console.log(`  (the seed's C did ${seed[0].ops} operations: the two models differ!)`);
  row("seed's C, gcc -O2", seed);
  const ratios = (name, runs) => {
    const ratio = (f) => (f(runs.map((r) => r.wall)) / f(seed.map((r) => r.wall))).toFixed(2);
    // Each run beside the C's run of the same turn: the two saw the same spell of the machine.
    const paired = median(runs.map((r, i) => r.wall / seed[i].wall)).toFixed(2);
    console.log(
      `  ratio, start-up included, ${name}: best ${ratio(best)}x, median ${ratio(median)}x, median of side-by-side runs ${paired}x (goal: within 2x)`,
    );
  };
  ratios("engine", ours);
  if (viaCli) ratios("CLI", viaCli);
} else {
  console.log(`  (the seed's C was not built: ${noSeed}; issue 2 measured it at about 400 ms on this machine)`);
}
