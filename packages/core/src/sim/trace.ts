import { commandName } from "@vmballoon/protocol";
import type { BalloonSnapshot } from "../balloon.js";
import type { Hypervisor, HypervisorReply } from "../ports.js";

/** A hypervisor command, as it returns. */
export interface CommandRecord {
  readonly t: "cmd";
  readonly cycle: number;
  readonly cmd: string;
  readonly arg: number;
  readonly status: number;
  readonly result: number;
}

/** The driver's state after work cycle `cycle` (keys in this order: t, cycle, size, target, rateAlloc, rateFree, slowCycles, resetRequired, guestFree, stats). */
export interface CycleRecord extends BalloonSnapshot {
  readonly t: "cycle";
  readonly cycle: number;
  /** Depth of the guest's free stack. */
  readonly guestFree: number;
}

/** The cycle record of SIMULATION.md for a snapshot: its fields picked, in the trace's key order. */
export function cycleRecord(cycle: number, snapshot: BalloonSnapshot, guestFree: number): CycleRecord {
  const s = snapshot;
  return {
    t: "cycle",
    cycle,
    size: s.size,
    target: s.target,
    rateAlloc: s.rateAlloc,
    rateFree: s.rateFree,
    slowCycles: s.slowCycles,
    resetRequired: s.resetRequired,
    guestFree,
    stats: s.stats,
  };
}

/** The debugfs file after the last cycle, exactly as the seed prints it. */
export interface DebugfsTraceRecord {
  readonly t: "debugfs";
  readonly text: string;
}

/** After the unload's commands. */
export interface ExitRecord {
  readonly t: "exit";
  readonly size: number;
  readonly guestFree: number;
}

/** The load failed (START or GUEST_ID); nothing follows. */
export interface InitFailedRecord {
  readonly t: "initFailed";
}

/** One line of a trace (SIMULATION.md, "Trace"). */
export type TraceRecord = CommandRecord | CycleRecord | DebugfsTraceRecord | ExitRecord | InitFailedRecord;

/**
 * A hypervisor that reports every command, as it returns, to `onCommand`.
 * `cycle` is stamped on each record; the caller moves it on.
 */
export class TracingHypervisor implements Hypervisor {
  cycle = 0;

  constructor(
    private readonly inner: Hypervisor,
    private readonly onCommand: (record: CommandRecord) => void,
  ) {}

  call(command: number, argument: number): HypervisorReply {
    const reply = this.inner.call(command, argument);
    this.onCommand({
      t: "cmd",
      cycle: this.cycle,
      cmd: commandName(command) ?? String(command),
      arg: argument,
      status: reply.status,
      result: reply.result,
    });
    return reply;
  }
}
