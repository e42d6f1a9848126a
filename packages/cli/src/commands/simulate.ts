import { FRAMES_PER_2M_PAGE } from "@vmballoon/protocol";
import { driver, formatTraceRecord, runSession, type AnyScenario, type AnyTraceRecord, type SessionRun } from "@vmballoon/core/sim";
import { CycleObserver } from "../cycle-observer.js";
import { UsageError } from "../errors.js";
import { isTerminal } from "../output.js";
import { driverOf, optionValue, reportFileOf, type OptionValue } from "../options.js";
import { loadScenario } from "../scenario-file.js";
import { simulateView } from "../simulate-views.js";
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

export async function simulate(options: SimulateOptions): Promise<number> {
  const kind = driver(driverOf(options.driver));
  const view = simulateView(kind.name);
  const scenarioFile = optionValue(options.scenario, "--scenario", "a file name");
  const traceFile = optionValue(options.trace, "--trace", "a file name ('-' for stdout)");
  if (options.json && traceFile === "-") throw new UsageError("--json and --trace - both want stdout; give --trace a file");
  const reportFile = reportFileOf(options.report, options.json, traceFile);

  // Everything is checked before anything runs or any file is touched.
  const scenario: AnyScenario = scenarioFile === undefined ? kind.builtin : loadScenario(scenarioFile, (text) => kind.parseScenario(text));
  const name = scenarioFile ?? "built-in scenario";

  const stdoutTaken = options.json || traceFile === "-" || reportFile === "-";
  const terminal = isTerminal(process.stdout) && !stdoutTaken;
  const observer = new CycleObserver(scenario.cycles, isTerminal(process.stderr) && scenario.cycles >= PROGRESS_AFTER_CYCLES);
  // The report reads the run's trace lines, as `vmballoon report` reads a trace file's.
  const reportCommand = reportFile === undefined ? undefined : await import("../report/index.js");
  const reporter = reportCommand === undefined ? undefined : new reportCommand.ReportWriter();
  const writer = traceFile === undefined ? undefined : new LineWriter(traceFile);

  let run: SessionRun;
  try {
    // The trace's records are made only when something reads them.
    const onRecord = (record: AnyTraceRecord) => {
      const line = formatTraceRecord(record);
      writer?.write(line);
      reporter?.line(line);
    };
    const session = kind.simulate(scenario, writer !== undefined || reporter !== undefined ? { onRecord } : {});
    run = runSession(session, scenario, (s) => {
      const snapshot = s.snapshot();
      observer.observe(s.cycleNumber, snapshot.size, snapshot.target);
      // The chart's 2 MB part, where the driver has 2 MB pages.
      if ("hugePages" in snapshot) (observer.huge ??= []).push(snapshot.hugePages * FRAMES_PER_2M_PAGE);
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
    process.stdout.write(`${JSON.stringify(view.summary(name, scenario, run, observer), null, 2)}\n`);
  } else if (!stdoutTaken) {
    if (terminal) process.stdout.write(view.report(name, scenario, run, observer));
    if (run.debugfs !== undefined) process.stdout.write(run.debugfs);
  }
  const warning = view.warning(run);
  if (warning !== undefined) process.stderr.write(`vmballoon: ${warning}\n`);
  return 0;
}
