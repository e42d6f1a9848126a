import { mkdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  HOST_EXPERIMENTS,
  HostSimulation,
  POLICY_NAMES,
  hostExperiment,
  parseHostScenario,
  withOverrides,
  type HostScenario,
  type HostSecond,
  type PolicyName,
  type VmTotals,
} from "@vmballoon/host";
import { CliError, EXIT, UsageError } from "../errors.js";
import { SCENARIO, inputName, readInput, writeAtomically } from "../files.js";
import { colorsFor, isTerminal, mebibytes, styler } from "../output.js";
import { driverOf, optionValue, reportFileOf, type OptionValue } from "../options.js";
import { LineWriter } from "../trace-writer.js";

export interface HostOptions {
  readonly scenario?: OptionValue;
  readonly policy?: OptionValue;
  readonly driver?: OptionValue;
  readonly trace?: OptionValue;
  readonly every?: OptionValue;
  readonly vmTraces?: OptionValue;
  readonly json?: boolean;
  readonly report?: OptionValue;
}

/** VM-seconds after which a run on a terminal shows its progress. */
const PROGRESS_AFTER = 20_000;
/** Rows of the terminal's timeline. */
const TIMELINE_ROWS = 12;

/** `--scenario`: a built-in's name, or a host scenario file ('-': stdin), its workload.csv files read beside it. */
function loadHostScenario(value: string | undefined): { name: string; title?: string; scenario: HostScenario } {
  const builtin = value === undefined ? HOST_EXPERIMENTS[0]! : hostExperiment(value);
  if (builtin !== undefined) return { name: builtin.name, title: builtin.title, scenario: builtin.scenario };
  if (value === undefined) throw new Error("no built-in host scenario");
  const text = readInput(value, SCENARIO, "read the host scenario");
  const base = value === "-" ? process.cwd() : dirname(resolve(value));
  try {
    return { name: value, scenario: parseHostScenario(text, { readFile: (file) => readInput(resolve(base, file), SCENARIO, "read the workload") }) };
  } catch (error) {
    if (error instanceof Error) error.message = `${inputName(value)}: ${error.message}`;
    throw error;
  }
}

function policyOf(value: OptionValue): PolicyName | undefined {
  const policy = optionValue(value, "--policy", "esx, mom or proxmox");
  if (policy !== undefined && !(POLICY_NAMES as readonly string[]).includes(policy)) {
    throw new UsageError(`--policy must be esx, mom or proxmox, not ${JSON.stringify(policy)}`);
  }
  return policy as PolicyName | undefined;
}

function everyOf(value: OptionValue): number {
  if (value === undefined) return 1;
  const every = typeof value === "number" ? value : Number.NaN;
  if (!Number.isInteger(every) || every < 1) throw new UsageError(`--every must be a whole number of seconds, 1 or more, not '${String(value)}'`);
  return every;
}

/** `--vm-traces DIR`: made if missing; a file there is bad input. */
function vmTracesDir(dir: string): string {
  try {
    if (!statSync(dir).isDirectory()) throw new CliError(`--vm-traces: ${dir} is not a directory`, EXIT.USAGE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    mkdirSync(dir, { recursive: true });
  }
  return dir;
}

/** The host's figures over time: each second folded into one of a fixed number of rows. */
class Timeline {
  readonly rows: { from: number; to: number; state: string | null; minFree: number; balloon: number; swapped: number; swapIn: number; shortfall: number }[] =
    [];
  peakSwapped = 0;
  minFree = Infinity;
  swapIn = 0;
  swapOut = 0;
  private readonly width: number;

  constructor(seconds: number) {
    this.width = Math.max(1, Math.ceil((seconds + 1) / TIMELINE_ROWS));
  }

  observe(s: HostSecond): void {
    const at = Math.floor(s.second / this.width);
    let row = this.rows[at];
    if (row === undefined) {
      row = { from: s.second, to: s.second, state: s.state, minFree: s.free, balloon: 0, swapped: 0, swapIn: 0, shortfall: 0 };
      this.rows[at] = row;
    }
    row.to = s.second;
    row.state = s.state;
    row.minFree = Math.min(row.minFree, s.free);
    row.balloon = s.balloon;
    row.swapped = s.swapped;
    row.swapIn += s.swapIn;
    row.shortfall = Math.max(row.shortfall, s.shortfall);
    this.peakSwapped = Math.max(this.peakSwapped, s.swapped);
    this.minFree = Math.min(this.minFree, s.free);
    this.swapIn += s.swapIn;
    this.swapOut += s.swapOut;
  }
}

export async function host(options: HostOptions): Promise<number> {
  // Everything is checked before anything runs or any file is touched.
  const scenarioValue = optionValue(options.scenario, "--scenario", "a built-in's name or a file name ('-' for stdin)");
  const policy = policyOf(options.policy);
  const driver = options.driver === undefined ? undefined : driverOf(options.driver);
  const traceFile = optionValue(options.trace, "--trace", "a file name ('-' for stdout)");
  const every = everyOf(options.every);
  const vmTraces = optionValue(options.vmTraces, "--vm-traces", "a directory");
  if (options.json && traceFile === "-") throw new UsageError("--json and --trace - both want stdout; give --trace a file");
  const reportFile = reportFileOf(options.report, options.json, traceFile);
  const loaded = loadHostScenario(scenarioValue);
  const scenario = withOverrides(loaded.scenario, { ...(driver ? { driver } : {}), ...(policy ? { policy } : {}) });
  const dir = vmTraces === undefined ? undefined : vmTracesDir(vmTraces);

  const stdoutTaken = options.json === true || traceFile === "-" || reportFile === "-";
  const progress = isTerminal(process.stderr) && (scenario.seconds + 1) * scenario.vms.length >= PROGRESS_AFTER;
  const writer = traceFile === undefined ? undefined : new LineWriter(traceFile);
  // --report: the page `vmballoon report` makes of this run's --trace, from the same lines.
  const reporter = reportFile === undefined ? undefined : new (await import("../report/index.js")).ReportWriter();
  const vmWriters =
    dir === undefined ? undefined : scenario.vms.map((vm) => (vm.driver === "none" ? undefined : new LineWriter(join(dir, `${vm.name}.trace.jsonl`))));
  const timeline = new Timeline(scenario.seconds);
  let lastProgress = 0;
  let totals: readonly VmTotals[];
  let sim: HostSimulation;
  try {
    sim = new HostSimulation(scenario, {
      every,
      ...(writer || reporter ? { onLine: (line: string) => (writer?.write(line), reporter?.line(line)) } : {}),
      ...(vmWriters ? { onVmLine: (i: number, line: string) => vmWriters[i]?.write(line) } : {}),
      onSecond: (s) => {
        timeline.observe(s);
        if (progress && (s.second & 63) === 0) {
          const now = Date.now();
          if (now - lastProgress >= 100) {
            lastProgress = now;
            process.stderr.write(`\rsecond ${s.second} of ${scenario.seconds}`);
          }
        }
      },
    });
    totals = sim.run();
    writer?.close();
    vmWriters?.forEach((w) => w?.close());
  } catch (error) {
    writer?.abandon();
    vmWriters?.forEach((w) => w?.abandon());
    throw error;
  } finally {
    if (progress && lastProgress !== 0) process.stderr.write("\r\u001b[K");
  }
  if (dir !== undefined) {
    scenario.vms.forEach((vm, i) => {
      if (vm.driver !== "none")
        writeAtomically(join(dir, `${vm.name}.scenario.json`), `${JSON.stringify(sim.vmScenario(i), null, 2)}\n`, "write the VM's scenario to");
    });
  }

  if (reporter !== undefined) (await import("../report/index.js")).writePage(reportFile!, reporter.page());
  if (options.json) process.stdout.write(`${JSON.stringify(summary(loaded.name, scenario, totals, timeline), null, 2)}\n`);
  else if (!stdoutTaken) process.stdout.write(report(loaded, scenario, totals, timeline, isTerminal(process.stdout)));
  return EXIT.OK;
}

function summary(name: string, scenario: HostScenario, totals: readonly VmTotals[], timeline: Timeline) {
  return {
    scenario: name,
    policy: scenario.policy.name,
    params: scenario.policy.params,
    seconds: scenario.seconds,
    host: { pages: scenario.host.memMiB * 256, overheadPages: scenario.host.overheadMiB * 256, swapMiBps: scenario.host.swapMiBps },
    totals: { swapIn: timeline.swapIn, swapOut: timeline.swapOut, peakSwapped: timeline.peakSwapped, minFree: timeline.minFree },
    vms: scenario.vms.map((vm, i) => ({ ...totals[i]!, driver: vm.driver, pages: vm.guest.totalPages })),
    timeline: timeline.rows.map((r) => ({
      from: r.from,
      to: r.to,
      state: r.state,
      minFree: r.minFree,
      balloon: r.balloon,
      swapped: r.swapped,
      swapIn: r.swapIn,
    })),
  };
}

function report(loaded: { name: string; title?: string }, scenario: HostScenario, totals: readonly VmTotals[], timeline: Timeline, terminal: boolean): string {
  const { name } = loaded;
  const paint = styler(terminal && colorsFor(process.stdout));
  const H = scenario.host.memMiB * 256;
  const guests = scenario.vms.reduce((a, vm) => a + vm.guest.totalPages, 0);
  const lines = [
    `${paint("bold", "vmballoon host")} — ${name}: ${scenario.seconds} s, ${scenario.vms.length} VMs with ${mebibytes(guests)} of guest memory in all, on a host of ${mebibytes(H)} ` +
      `(${(guests / H).toFixed(2)}×), policy ${scenario.policy.name}`,
    ...(loaded.title === undefined ? [] : [`  ${loaded.title}`]),
    `  swap      ${mebibytes(timeline.swapOut)} out, ${mebibytes(timeline.swapIn)} back in; at most ${mebibytes(timeline.peakSwapped)} swapped; least free ${mebibytes(timeline.minFree)}`,
    "",
    paint("bold", "  seconds        state  least free    balloon    swapped   swap-in  shortfall"),
  ];
  const mib = (pages: number) => (pages / 256).toFixed(0).padStart(6) + " MiB";
  for (const r of timeline.rows) {
    const state = (r.state ?? "-").padStart(6);
    lines.push(
      `  ${`${r.from}–${r.to}`.padEnd(12)} ${r.state === "low" || r.state === "hard" ? paint("red", state) : state} ${mib(r.minFree)} ${mib(r.balloon)} ${mib(r.swapped)} ${mib(r.swapIn)} ${mib(r.shortfall)}`,
    );
  }
  lines.push("", paint("bold", "  VM              driver  peak balloon   swapped out   swapped in   shortfall (MiB·s)"));
  scenario.vms.forEach((vm, i) => {
    const t = totals[i]!;
    lines.push(
      `  ${vm.name.padEnd(16)}${vm.driver.padStart(6)}  ${mib(t.peakBalloon).padStart(12)}  ${mib(t.swapOut).padStart(12)} ${mib(t.swapIn).padStart(12)}   ${(t.shortfallSeconds / 256).toFixed(0).padStart(10)}`,
    );
  });
  return `${lines.join("\n")}\n`;
}
