// Speed and size of the host (issue 17): VM-seconds a second of wall time
// for the built-in scenario and for a fleet of 100 VMs over a simulated day,
// its peak RSS per simulated guest page, and the host's own cost beside the
// same VMs' drivers run alone through their exported scenarios. Each
// measurement is a fresh process (its peak RSS its own), `BENCH_RUNS` of
// each (3 by default; the fleet's day once unless BENCH_FLEET_RUNS says
// more); medians are printed. Prints figures; asserts nothing.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const self = fileURLToPath(import.meta.url);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FLEET_RUNS = Number(process.env.BENCH_FLEET_RUNS ?? 1);
/** The host-cost comparison's length: the same fleet, its first two hours. */
const ALONE_SECONDS = Number(process.env.BENCH_ALONE_SECONDS ?? 7200);

const peakRss = () => process.resourceUsage().maxRSS * 1024;

async function child(mode, args) {
  const host = await import("../dist/index.js");
  const { fleetScenario } = await import("./fleet.mjs");
  if (mode === "builtin") {
    const scenario = host.hostExperiment("overcommit").scenario;
    const begin = process.hrtime.bigint();
    host.runHost(scenario);
    return { ns: Number(process.hrtime.bigint() - begin), vmSeconds: scenario.vms.length * scenario.seconds, pages: pages(scenario) };
  }
  if (mode === "fleet") {
    const [policy, seconds] = args;
    const scenario = fleetScenario({ policy, seconds: Number(seconds) });
    const begin = process.hrtime.bigint();
    host.runHost(scenario);
    return { ns: Number(process.hrtime.bigint() - begin), vmSeconds: scenario.vms.length * scenario.seconds, pages: pages(scenario) };
  }
  if (mode === "export") {
    // Each VM's scenario, as `vmballoon host --vm-traces` writes it.
    const scenario = fleetScenario({ seconds: Number(args[0]) });
    const sim = new host.HostSimulation(scenario, { vmScenarios: true });
    sim.run();
    writeFileSync(args[1], JSON.stringify(scenario.vms.map((vm, i) => ({ driver: vm.driver, scenario: sim.vmScenario(i) }))));
    return {};
  }
  if (mode === "alone") {
    const { driver, runSession } = await import("@vmballoon/core/sim");
    const vms = JSON.parse(readFileSync(args[0], "utf8")).map(({ driver: name, scenario }) => ({
      kind: driver(name),
      scenario: driver(name).parseScenario(JSON.stringify(scenario)),
    }));
    const begin = process.hrtime.bigint();
    for (const { kind, scenario } of vms) runSession(kind.simulate(scenario), scenario);
    return { ns: Number(process.hrtime.bigint() - begin) };
  }
  throw new Error(`unknown mode ${mode}`);
}

function pages(scenario) {
  return scenario.vms.reduce((sum, vm) => sum + vm.guest.totalPages, 0);
}

/** One fresh process: what it prints, and its whole wall time (start-up and the scenario's building included). */
function run(mode, ...args) {
  const begin = process.hrtime.bigint();
  const out = execFileSync(process.execPath, [self, "child", mode, ...args.map(String)], { encoding: "utf8", maxBuffer: 2 ** 26 });
  return { ...JSON.parse(out), wall: Number(process.hrtime.bigint() - begin) };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const fmt = (n, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes) => `${fmt(bytes / 2 ** 20)} MiB`;
const secs = (ns) => `${(ns / 1e9).toFixed(2)} s`;

function report(title, runs) {
  const ns = median(runs.map((r) => r.ns));
  const rss = median(runs.map((r) => r.rss));
  const { vmSeconds, pages: guestPages } = runs[0];
  console.log(title);
  console.log(`  wall (the run alone)  ${secs(ns)}, median of ${runs.length} (${runs.map((r) => secs(r.ns)).join(", ")})`);
  console.log(`  whole process         ${secs(median(runs.map((r) => r.wall)))} (start-up, building the scenario)`);
  console.log(`  VM-seconds a second   ${fmt(vmSeconds / (ns / 1e9))}`);
  console.log(`  peak RSS              ${mib(rss)}: ${(rss / guestPages).toFixed(2)} bytes a simulated guest page (${fmt(guestPages)} pages)`);
}

async function main() {
  const { fleetScenario, FLEET_WORKLOAD } = await import("./fleet.mjs");
  const fleet = fleetScenario({ seconds: 1 });
  const gib = fleet.vms.reduce((sum, vm) => sum + vm.memMiB, 0) / 1024;
  console.log(`host bench (fresh processes; this machine's speed wanders: medians)`);

  report(
    "built-in scenario (overcommit: 4 VMs, 1800 s, ESX)",
    Array.from({ length: RUNS }, () => run("builtin")),
  );

  console.log(`fleet: ${fleet.vms.length} VMs of 4–16 GiB (${fmt(gib)} GiB) on ${fmt(fleet.host.memMiB / 1024)} GiB (1.5×), today's driver, 86,400 s`);
  console.log(`  workload: ${FLEET_WORKLOAD}`);
  const policies = (process.env.BENCH_POLICIES ?? "esx,mom,proxmox").split(",");
  for (const policy of policies) {
    report(
      `fleet under ${policy}`,
      Array.from({ length: FLEET_RUNS }, () => run("fleet", policy, 86400)),
    );
  }

  // The host's own cost: the same fleet (ESX), ALONE_SECONDS long, run by the host and as each VM's exported scenario.
  const dir = mkdtempSync(join(tmpdir(), "vmballoon-host-bench-"));
  try {
    const file = join(dir, "vms.json");
    run("export", ALONE_SECONDS, file);
    const hosted = [];
    const alone = [];
    for (let i = 0; i < RUNS; i++) {
      hosted.push(run("fleet", "esx", ALONE_SECONDS));
      alone.push(run("alone", file));
    }
    const h = median(hosted.map((r) => r.ns));
    const a = median(alone.map((r) => r.ns));
    const paired = median(hosted.map((r, i) => r.ns / alone[i].ns));
    console.log(`host's own cost: the fleet under ESX, ${fmt(ALONE_SECONDS)} s, in turns`);
    console.log(`  the host              ${secs(h)} (${hosted.map((r) => secs(r.ns)).join(", ")})`);
    console.log(
      `  the drivers alone     ${secs(a)} (${alone.map((r) => secs(r.ns)).join(", ")}): each VM's scenario through driver(name).simulate + runSession`,
    );
    console.log("  (runSession builds each cycle's record, as simulate does; the host builds a VM's only for --vm-traces)");
    console.log(`  host / alone          ${(h / a).toFixed(2)}× (paired median ${paired.toFixed(2)}×; goal: at most 1.5×)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "child") {
  const out = await child(process.argv[3], process.argv.slice(4));
  process.stdout.write(JSON.stringify({ ...out, rss: peakRss() }));
} else {
  await main();
}
