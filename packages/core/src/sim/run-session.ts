import type { DriverSession, DriverSnapshot, UnloadResult } from "./session.js";

/** How a session's scenario ended. */
export interface SessionRun {
  /** False when the load failed: no cycle ran. */
  readonly loaded: boolean;
  /** Work cycles run. */
  readonly cycles: number;
  /** The balloon after the last cycle and the debugfs read that follows it (before any unload). */
  readonly snapshot: DriverSnapshot;
  /** The debugfs text after the last cycle; absent when the load failed. */
  readonly debugfs?: string;
  /** The guest's free pages after the last cycle. */
  readonly guestFree: number;
  /** After the unload, when asked for. */
  readonly exit?: UnloadResult;
}

/**
 * Runs a session through a scenario's time as SIMULATION(-MODERN).md define
 * it: cycle 0 is the load, cycles 1 … n the work function (each reported),
 * then the debugfs read, and cycle n + 1 the unload when asked for.
 * `onCycle` sees the session after each cycle's record.
 */
export function runSession(
  session: DriverSession,
  scenario: { readonly cycles: number; readonly unload: boolean },
  onCycle?: (session: DriverSession) => void,
): SessionRun {
  const guestFree = () => session.guest?.freeCount ?? 0;
  if (!session.load()) return { loaded: false, cycles: 0, snapshot: session.snapshot(), guestFree: guestFree() };
  for (let cycle = 1; cycle <= scenario.cycles; cycle++) {
    session.cycle();
    session.recordCycle();
    onCycle?.(session);
  }
  const debugfs = session.finish();
  // Today's driver: the read turned the statistics on, and the snapshot shows them.
  const result = { loaded: true, cycles: scenario.cycles, snapshot: session.snapshot(), debugfs, guestFree: guestFree() };
  if (!scenario.unload) return result;
  return { ...result, exit: session.unload() };
}
