import type { BalloonSnapshot } from "../balloon.js";
import { seedSimSession } from "./seed-session.js";
import { runSession } from "./run-session.js";
import type { Scenario } from "./scenario.js";
import type { AnyTraceRecord } from "./session.js";
import type { TraceRecord } from "./trace.js";

export interface RunOptions {
  /** Receives the trace records, in the order things happen. */
  readonly onRecord?: (record: TraceRecord) => void;
  /** Whether command records are sent to `onRecord` (default true). */
  readonly commands?: boolean;
}

/** How a scenario ended. */
export interface RunResult {
  /** The load failed: no cycle ran. */
  readonly initFailed: boolean;
  /** Work cycles run. */
  readonly cycles: number;
  /** The balloon after the last cycle (before any unload). */
  readonly snapshot: BalloonSnapshot;
  /** The debugfs text after the last cycle; absent when the load failed. */
  readonly debugfs?: string;
  /** The guest's free pages after the last cycle. */
  readonly guestFree: number;
  /** After the unload, when the scenario asks for one. */
  readonly exit?: { readonly size: number; readonly guestFree: number };
}

/**
 * Runs a seed scenario as SIMULATION.md defines it (a seed session through
 * {@link runSession}): cycle 0 is the load, cycles 1 … n the work function,
 * cycle n + 1 the unload (when asked for).
 */
export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  const onRecord = options.onRecord as ((record: AnyTraceRecord) => void) | undefined;
  const session = seedSimSession(scenario, { ...(onRecord && { onRecord }), ...(options.commands !== undefined && { commands: options.commands }) });
  const run = runSession(session, scenario);
  const result = { initFailed: !run.loaded, cycles: run.cycles, snapshot: run.snapshot as BalloonSnapshot, guestFree: run.guestFree };
  if (run.debugfs === undefined) return result;
  return run.exit === undefined
    ? { ...result, debugfs: run.debugfs }
    : { ...result, debugfs: run.debugfs, exit: { size: run.exit.size, guestFree: run.exit.guestFree } };
}
