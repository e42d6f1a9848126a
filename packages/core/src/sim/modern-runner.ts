import type { ModernBalloonSnapshot } from "../modern-balloon.js";
import { modernSimSession } from "./modern-session.js";
import type { ModernScenario } from "./modern-scenario.js";
import type { ModernTraceRecord } from "./modern-trace.js";
import { runSession } from "./run-session.js";
import type { AnyTraceRecord } from "./session.js";

export interface ModernRunOptions {
  /** Receives the trace records, in the order things happen. */
  readonly onRecord?: (record: ModernTraceRecord) => void;
  /** Whether command records are sent to `onRecord` (default true). */
  readonly commands?: boolean;
  /** Called after each work cycle with the balloon's state (which has more than the trace's record: `hugePages`). */
  readonly onCycle?: (cycle: number, snapshot: ModernBalloonSnapshot) => void;
}

/** How a modern scenario ended. */
export interface ModernRunResult {
  readonly cycles: number;
  /** The balloon after the last cycle (before any unload). */
  readonly snapshot: ModernBalloonSnapshot;
  /** The debugfs text after the last cycle. */
  readonly debugfs: string;
  /** The guest's free frames after the last cycle. */
  readonly guestFree: number;
  /** After the unload, when the scenario asks for one; `hang`: the pop could not finish. */
  readonly exit?: { readonly size: number; readonly guestFree: number; readonly hang: boolean };
}

/**
 * Runs a modern scenario as SIMULATION-MODERN.md defines it (a session of
 * today's driver through {@link runSession}): cycle 0 is the load (no
 * command), cycles 1 … n the work function, cycle n + 1 the unload (when
 * asked for).
 */
export function runModernScenario(scenario: ModernScenario, options: ModernRunOptions = {}): ModernRunResult {
  const onRecord = options.onRecord as ((record: AnyTraceRecord) => void) | undefined;
  const session = modernSimSession(scenario, { ...(onRecord && { onRecord }), ...(options.commands !== undefined && { commands: options.commands }) });
  const { onCycle } = options;
  const run = runSession(session, scenario, onCycle && ((s) => onCycle(s.cycleNumber, s.snapshot() as ModernBalloonSnapshot)));
  const result = { cycles: run.cycles, snapshot: run.snapshot as ModernBalloonSnapshot, debugfs: run.debugfs!, guestFree: run.guestFree };
  return run.exit === undefined ? result : { ...result, exit: run.exit };
}
