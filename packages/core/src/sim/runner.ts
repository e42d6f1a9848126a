import { COMMANDS } from "@vmballoon/protocol";
import { Balloon, type BalloonSnapshot } from "../balloon.js";
import { debugfsText } from "../debugfs.js";
import type { Hypervisor } from "../ports.js";
import { SimGuest } from "./guest.js";
import { SimMonitor } from "./monitor.js";
import type { Scenario, ScenarioEvent } from "./scenario.js";
import { TracingHypervisor, cycleRecord, type CycleRecord, type TraceRecord } from "./trace.js";

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
 * A scenario's events in time order, applied cycle by cycle: those of cycle
 * k just before cycle k runs, in the order of the file.
 */
export class EventSchedule {
  private readonly events: readonly ScenarioEvent[];
  private next = 0;

  constructor(events: readonly ScenarioEvent[]) {
    // Stable: events of one cycle keep the file's order.
    this.events = [...events].sort((a, b) => a.cycle - b.cycle);
  }

  /**
   * Applies the events of `cycle` (cycles are entered in order). Without a
   * guest (`vmballoon run`, where the guest is the real machine), guestUse and
   * guestRelease do not apply.
   */
  apply(cycle: number, monitor: SimMonitor, guest?: SimGuest): void {
    const events = this.events;
    while (this.next < events.length && events[this.next]!.cycle === cycle) {
      applyEvent(events[this.next++]!, monitor, guest);
    }
  }
}

/** One event's actions, in the order setTarget, reset, guestUse, guestRelease, refuse, failNext. */
function applyEvent(event: ScenarioEvent, monitor: SimMonitor, guest: SimGuest | undefined): void {
  applyMonitorEvent(event, monitor, guest, (cmd) => COMMANDS[cmd as keyof typeof COMMANDS]);
}

/** What both drivers' scenarios share: the event's actions a monitor and a guest take. */
export interface MonitorEvent extends Omit<ScenarioEvent, "cycle" | "failNext"> {
  /** The next `count` calls of `cmd` (a command of either driver's protocol) fail with `status`. */
  readonly failNext?: { readonly cmd: string; readonly count: number; readonly status: number };
}

/**
 * The actions both drivers' scenarios share, in their order: setTarget,
 * reset, guestUse, guestRelease, refuse, failNext (`command` gives a command
 * name's number in the driver's protocol). Without a guest (`vmballoon run`),
 * guestUse and guestRelease do not apply.
 */
export function applyMonitorEvent(
  event: MonitorEvent,
  monitor: {
    target: number;
    reset(): void;
    refuse(pfn: number, status: number): void;
    failNext(command: number, count: number, status: number): void;
  },
  guest: { use(pages: number): void; release(pages: number): void } | undefined,
  command: (name: string) => number,
): void {
  if (event.setTarget !== undefined) monitor.target = event.setTarget;
  if (event.reset === true) monitor.reset();
  if (guest && event.guestUse !== undefined) guest.use(event.guestUse);
  if (guest && event.guestRelease !== undefined) guest.release(event.guestRelease);
  if (event.refuse) monitor.refuse(event.refuse.pfn, event.refuse.status);
  if (event.failNext) {
    const { cmd, count, status } = event.failNext;
    monitor.failNext(command(cmd), count, status);
  }
}

/**
 * A scenario's guest, monitor and balloon, wired together. {@link runScenario}
 * drives it; it is exported for callers that need to look inside (tests).
 */
export class Simulation {
  readonly guest: SimGuest;
  readonly monitor: SimMonitor;
  readonly balloon: Balloon;
  private readonly tracer: TracingHypervisor | undefined;
  private readonly schedule: EventSchedule;

  constructor(
    readonly scenario: Scenario,
    options: RunOptions = {},
  ) {
    const { guest } = scenario;
    this.guest = new SimGuest(guest);
    this.monitor = new SimMonitor({ firstPfn: guest.firstPfn, frames: guest.freePages, totalPages: guest.totalPages });
    const { onRecord } = options;
    let hypervisor: Hypervisor = this.monitor;
    if (onRecord && options.commands !== false) {
      hypervisor = this.tracer = new TracingHypervisor(this.monitor, onRecord);
    }
    this.balloon = new Balloon(hypervisor, this.guest);
    this.schedule = new EventSchedule(scenario.events);
  }

  /** Stamps commands with `cycle` and applies that cycle's events. */
  enterCycle(cycle: number): void {
    if (this.tracer) this.tracer.cycle = cycle;
    this.schedule.apply(cycle, this.monitor, this.guest);
  }

  /** The driver's state as a trace record. */
  cycleRecord(cycle: number): CycleRecord {
    return cycleRecord(cycle, this.balloon.snapshot(), this.guest.freeCount);
  }
}

/**
 * Runs a scenario as SIMULATION.md defines it: cycle 0 is the load, cycles
 * 1 … n the work function, cycle n + 1 the unload (when asked for).
 */
export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  const sim = new Simulation(scenario, options);
  const { balloon, guest } = sim;
  const emit = options.onRecord;

  sim.enterCycle(0);
  if (!balloon.init()) {
    emit?.({ t: "initFailed" });
    return { initFailed: true, cycles: 0, snapshot: balloon.snapshot(), guestFree: guest.freeCount };
  }

  for (let cycle = 1; cycle <= scenario.cycles; cycle++) {
    sim.enterCycle(cycle);
    balloon.work();
    emit?.(sim.cycleRecord(cycle));
  }

  const snapshot = balloon.snapshot();
  const debugfs = debugfsText(snapshot);
  emit?.({ t: "debugfs", text: debugfs });
  const result = { initFailed: false, cycles: scenario.cycles, snapshot, debugfs, guestFree: guest.freeCount };
  if (!scenario.unload) return result;

  sim.enterCycle(scenario.cycles + 1);
  balloon.exit();
  const exit = { size: balloon.snapshot().size, guestFree: guest.freeCount };
  emit?.({ t: "exit", ...exit });
  return { ...result, exit };
}
