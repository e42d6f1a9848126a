import { PAGE_SIZE } from "@vmballoon/protocol";
import {
  builtinScenario,
  formatTraceRecord,
  runScenario,
  type RunResult,
  type Scenario,
  type TraceRecord,
} from "@vmballoon/core/sim";
import { renderChart } from "../chart.js";
import { UsageError } from "../errors.js";
import { colorsFor, isTerminal, mebibytes, styler } from "../output.js";
import { optionValue, type OptionValue } from "../options.js";
import { loadScenario } from "../scenario-file.js";
import { LineWriter } from "../trace-writer.js";

export interface SimulateOptions {
  readonly scenario?: OptionValue;
  readonly trace?: OptionValue;
  readonly json?: boolean;
  readonly report?: OptionValue;
}

/** Cycles after which a run on a terminal shows its progress. */
const PROGRESS_AFTER_CYCLES = 2000;

/** Watches the cycle records: keeps the two series for the chart, and shows progress. */
class CycleObserver {
  readonly size: number[] = [];
  readonly target: number[] = [];
  peak = 0;
  peakCycle = 0;
  private lastProgress = 0;

  constructor(
    private readonly totalCycles: number,
    private readonly progress: boolean,
  ) {}

  observe(cycle: number, size: number, target: number): void {
    this.size.push(size);
    this.target.push(target);
    if (size > this.peak) {
      this.peak = size;
      this.peakCycle = cycle;
    }
    if (this.progress && (cycle & 255) === 0) {
      const now = Date.now();
      if (now - this.lastProgress >= 100) {
        this.lastProgress = now;
        process.stderr.write(`\rcycle ${cycle} of ${this.totalCycles}`);
      }
    }
  }

  done(): void {
    if (this.progress && this.lastProgress !== 0) process.stderr.write("\r\u001b[K");
  }
}

export async function simulate(options: SimulateOptions): Promise<number> {
  const scenarioFile = optionValue(options.scenario, "--scenario", "a file name");
  const traceFile = optionValue(options.trace, "--trace", "a file name ('-' for stdout)");
  const reportFile = optionValue(options.report, "--report", "a file name ('-' for stdout)");
  if (options.json && traceFile === "-") throw new UsageError("--json and --trace - both want stdout; give --trace a file");
  if (reportFile === "-" && (options.json || traceFile === "-")) throw new UsageError(`--report - and ${options.json ? "--json" : "--trace -"} both want stdout; give --report a file`);

  // Everything is checked before anything runs or any file is touched.
  const scenario = scenarioFile === undefined ? builtinScenario : loadScenario(scenarioFile);
  const name = scenarioFile ?? "built-in scenario";

  const stdoutTaken = options.json || traceFile === "-" || reportFile === "-";
  const terminal = isTerminal(process.stdout) && !stdoutTaken;
  const observer = new CycleObserver(scenario.cycles, isTerminal(process.stderr) && scenario.cycles >= PROGRESS_AFTER_CYCLES);
  // The report reads the run's trace lines, as `vmballoon report` reads a trace file's.
  const reportCommand = reportFile === undefined ? undefined : await import("./report.js");
  const reporter = reportCommand === undefined ? undefined : new reportCommand.ReportWriter();
  const writer = traceFile === undefined ? undefined : new LineWriter(traceFile);

  let result: RunResult;
  try {
    result = runScenario(scenario, {
      commands: writer !== undefined || reporter !== undefined,
      onRecord: (record: TraceRecord) => {
        const line = formatTraceRecord(record);
        writer?.write(line);
        reporter?.line(line);
        if (record.t === "cycle") observer.observe(record.cycle, record.size, record.target);
      },
    });
    writer?.close();
  } catch (error) {
    writer?.abandon();
    throw error;
  } finally {
    observer.done();
  }

  if (reporter !== undefined) reportCommand!.writePage(reportFile!, reporter.page());

  if (options.json) {
    process.stdout.write(`${JSON.stringify(summary(name, scenario, result, observer), null, 2)}\n`);
  } else if (!stdoutTaken) {
    if (terminal) process.stdout.write(report(name, scenario, result, observer));
    if (result.debugfs !== undefined) process.stdout.write(result.debugfs);
  }
  if (result.initFailed) process.stderr.write("vmballoon: the balloon did not load: START or GUEST_ID failed (see the trace)\n");
  return 0;
}

/** The `--json` summary. */
function summary(name: string, scenario: Scenario, result: RunResult, observer: CycleObserver) {
  const { snapshot } = result;
  return {
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
