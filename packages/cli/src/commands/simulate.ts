import { PAGE_SIZE } from "@vmballoon/protocol";
import { builtinScenario, formatTraceRecord, parseScenario, runScenario, type RunResult, type Scenario, type TraceRecord } from "@vmballoon/core/sim";
import { renderChart } from "../chart.js";
import { CycleObserver } from "../cycle-observer.js";
import { UsageError } from "../errors.js";
import { colorsFor, isTerminal, mebibytes, styler } from "../output.js";
import { driverOf, optionValue, type OptionValue } from "../options.js";
import { loadScenario } from "../scenario-file.js";
import { LineWriter } from "../trace-writer.js";

export interface SimulateOptions {
  readonly driver?: OptionValue;
  readonly scenario?: OptionValue;
  readonly trace?: OptionValue;
  readonly json?: boolean;
  readonly report?: OptionValue;
}

/** Cycles after which a run on a terminal shows its progress. */
const PROGRESS_AFTER_CYCLES = 2000;

/**
 * What `simulate` needs of a driver: its scenarios, its run, and how its
 * result is shown. The seed's is here; today's driver's is loaded only when
 * asked for (`./simulate-modern.js`).
 */
export interface SimulationKit<S extends { readonly cycles: number }, R> {
  readonly builtin: S;
  load(file: string): S;
  /** Runs the scenario: trace records to `onRecord` (commands only when `commands`), each cycle to `observer`. */
  run(scenario: S, commands: boolean, onRecord: (line: string) => void, observer: CycleObserver): R;
  /** The final debugfs text, if the driver loaded. */
  debugfs(result: R): string | undefined;
  /** A line for stderr when the run went wrong in a way the user must see. */
  warning(result: R): string | undefined;
  summary(name: string, scenario: S, result: R, observer: CycleObserver): object;
  report(name: string, scenario: S, result: R, observer: CycleObserver): string;
}

/** The seed's driver (vmw_balloon 1.2.1.3-k). */
const seedKit: SimulationKit<Scenario, RunResult> = {
  builtin: builtinScenario,
  load: (file) => loadScenario(file, parseScenario),
  run: (scenario, commands, onRecord, observer) =>
    runScenario(scenario, {
      commands,
      onRecord: (record: TraceRecord) => {
        onRecord(formatTraceRecord(record));
        if (record.t === "cycle") observer.observe(record.cycle, record.size, record.target);
      },
    }),
  debugfs: (result) => result.debugfs,
  warning: (result) => (result.initFailed ? "the balloon did not load: START or GUEST_ID failed (see the trace)" : undefined),
  summary,
  report,
};

export async function simulate(options: SimulateOptions): Promise<number> {
  const driver = driverOf(options.driver);
  const scenarioFile = optionValue(options.scenario, "--scenario", "a file name");
  const traceFile = optionValue(options.trace, "--trace", "a file name ('-' for stdout)");
  const reportFile = optionValue(options.report, "--report", "a file name ('-' for stdout)");
  if (options.json && traceFile === "-") throw new UsageError("--json and --trace - both want stdout; give --trace a file");
  if (reportFile === "-" && (options.json || traceFile === "-"))
    throw new UsageError(`--report - and ${options.json ? "--json" : "--trace -"} both want stdout; give --report a file`);
  const kit = driver === "modern" ? (await import("./simulate-modern.js")).modernKit : seedKit;
  return simulateWith(kit as SimulationKit<{ readonly cycles: number }, unknown>, options, scenarioFile, traceFile, reportFile);
}

async function simulateWith<S extends { readonly cycles: number }, R>(
  kit: SimulationKit<S, R>,
  options: SimulateOptions,
  scenarioFile: string | undefined,
  traceFile: string | undefined,
  reportFile: string | undefined,
): Promise<number> {
  // Everything is checked before anything runs or any file is touched.
  const scenario = scenarioFile === undefined ? kit.builtin : kit.load(scenarioFile);
  const name = scenarioFile ?? "built-in scenario";

  const stdoutTaken = options.json || traceFile === "-" || reportFile === "-";
  const terminal = isTerminal(process.stdout) && !stdoutTaken;
  const observer = new CycleObserver(scenario.cycles, isTerminal(process.stderr) && scenario.cycles >= PROGRESS_AFTER_CYCLES);
  // The report reads the run's trace lines, as `vmballoon report` reads a trace file's.
  const reportCommand = reportFile === undefined ? undefined : await import("../report/index.js");
  const reporter = reportCommand === undefined ? undefined : new reportCommand.ReportWriter();
  const writer = traceFile === undefined ? undefined : new LineWriter(traceFile);

  let result: R;
  try {
    result = kit.run(
      scenario,
      writer !== undefined || reporter !== undefined,
      (line) => {
        writer?.write(line);
        reporter?.line(line);
      },
      observer,
    );
    writer?.close();
  } catch (error) {
    writer?.abandon();
    throw error;
  } finally {
    observer.done();
  }

  if (reporter !== undefined) reportCommand!.writePage(reportFile!, reporter.page());

  const debugfs = kit.debugfs(result);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(kit.summary(name, scenario, result, observer), null, 2)}\n`);
  } else if (!stdoutTaken) {
    if (terminal) process.stdout.write(kit.report(name, scenario, result, observer));
    if (debugfs !== undefined) process.stdout.write(debugfs);
  }
  const warning = kit.warning(result);
  if (warning !== undefined) process.stderr.write(`vmballoon: ${warning}\n`);
  return 0;
}

/** The `--json` summary. */
function summary(name: string, scenario: Scenario, result: RunResult, observer: CycleObserver) {
  const { snapshot } = result;
  return {
    driver: "seed",
    scenario: name,
    cycles: result.cycles,
    loaded: !result.initFailed,
    pageSize: PAGE_SIZE,
    guest: scenario.guest,
    final: { ...snapshot, guestFree: result.guestFree },
    peak: { size: observer.peak, cycle: observer.peakCycle },
    unload: result.exit ?? null,
    debugfs: result.debugfs ?? null,
  };
}

/** The terminal's report: a short summary and the chart. */
function report(name: string, scenario: Scenario, result: RunResult, observer: CycleObserver): string {
  const paint = styler(colorsFor(process.stdout));
  const { snapshot } = result;
  const s = snapshot.stats;
  const lines = [
    `${paint("bold", "vmballoon simulate")} — ${name}: ${scenario.cycles} cycles, guest of ${scenario.guest.totalPages} pages (${mebibytes(scenario.guest.totalPages)})`,
  ];
  if (result.initFailed) {
    lines.push(`  ${paint("red", "the load failed")}: START ${s.startFail ? "failed" : "succeeded"}, GUEST_ID ${s.guestTypeFail ? "failed" : "succeeded"}`);
    return `${lines.join("\n")}\n`;
  }
  const failures = (total: number, failed: number) => `${total}${failed ? paint("yellow", ` (${failed} failed)`) : ""}`;
  lines.push(
    `  balloon   ${snapshot.size} pages (${mebibytes(snapshot.size)}), target ${snapshot.target}; peak ${observer.peak} pages at cycle ${observer.peakCycle}`,
    `  rates     sleeping allocations ${snapshot.rateAlloc}/s, releases ${snapshot.rateFree}/s${snapshot.slowCycles ? `, ${snapshot.slowCycles} slow cycles left` : ""}`,
    `  commands  LOCK ${failures(s.lock, s.lockFail)}, UNLOCK ${failures(s.unlock, s.unlockFail)}, GET_TARGET ${failures(s.target, s.targetFail)}, START ${failures(s.start, s.startFail)}`,
    `  pressure  NOSLEEP allocations ${failures(s.alloc, s.allocFail)}, CANSLEEP ${failures(s.sleepAlloc, s.sleepAllocFail)}, refused pages ${s.refusedAlloc}`,
  );
  if (result.exit) {
    lines.push(`  unload    START, then ${snapshot.size} pages freed without UNLOCK; the guest has ${result.exit.guestFree} free pages`);
  }
  const width = Math.max(20, Math.min(72, (process.stdout.columns || 80) - 12));
  return `${lines.join("\n")}\n\n${renderChart(observer, { width, style: paint })}\n`;
}
