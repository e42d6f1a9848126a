import { ALLOC, MODERN_COMMANDS, batchEntryPfn, batchEntryStatus, modernCommandName } from "@vmballoon/protocol";
import { ModernBalloon, type ModernBalloonSnapshot, type ModernBalloonStats } from "../modern-balloon.js";
import { NO_PAGE, type ModernHypervisor, type ModernHypervisorReply } from "../ports.js";
import { ModernSimGuest } from "./modern-guest.js";
import { ModernSimMonitor } from "./modern-monitor.js";
import type { ModernScenario, ModernScenarioEvent } from "./modern-scenario.js";
import { applyMonitorEvent } from "./runner.js";

/** A hypervisor command of today's driver, as it returns. */
export interface ModernCommandRecord {
  readonly t: "cmd";
  readonly cycle: number;
  readonly cmd: string;
  readonly arg: number;
  readonly arg2: number;
  readonly status: number;
  /** ECX for START (the capabilities), EBX otherwise. */
  readonly result: number;
  /** Batched commands: [pfn, status] of each entry as the batch page holds them after the call. */
  readonly batch?: readonly (readonly [number, number])[];
}

/** The driver's state after work cycle `cycle`. */
export interface ModernCycleRecord {
  readonly t: "cycle";
  readonly cycle: number;
  readonly size: number;
  readonly target: number;
  readonly resetRequired: boolean;
  readonly capabilities: number;
  readonly maxPageSize: "4k" | "2M";
  readonly batching: boolean;
  readonly batchMaxPages: number;
  readonly shrinkTimeout: number;
  readonly guestFree: number;
  readonly stats: ModernBalloonStats | null;
}

/** A shrink event: the shrinker core's call (`nrToScan` as given, `count` what count_objects said). */
export interface ShrinkRecord {
  readonly t: "shrink";
  readonly cycle: number;
  readonly nrToScan: number;
  readonly count: number;
  readonly freed: number;
}

/** A doorbell event: whether the driver's callback ran. */
export interface DoorbellRecord {
  readonly t: "doorbell";
  readonly cycle: number;
  readonly delivered: boolean;
}

/** A migration that ran: `result` is 0 or -EBUSY (-16). */
export interface MigrateRecord {
  readonly t: "migrate";
  readonly cycle: number;
  readonly pfn: number;
  readonly newPfn: number;
  readonly result: number;
}

/** The debugfs file, after a `debugfs` event and after the last cycle. */
export interface ModernDebugfsRecord {
  readonly t: "debugfs";
  readonly cycle: number;
  readonly text: string;
}

/** After the unload's commands: emptied (`exit`), or a pop that cannot finish (`exitHang`; the C spins for ever). */
export interface ModernExitRecord {
  readonly t: "exit" | "exitHang";
  readonly size: number;
  readonly guestFree: number;
}

/** One line of a modern trace (SIMULATION-MODERN.md, "Trace"). */
export type ModernTraceRecord =
  ModernCommandRecord | ModernCycleRecord | ShrinkRecord | DoorbellRecord | MigrateRecord | ModernDebugfsRecord | ModernExitRecord;

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

const BATCHED_FIRST = MODERN_COMMANDS.BATCHED_LOCK;
const BATCHED_LAST = MODERN_COMMANDS.BATCHED_2M_UNLOCK;
const HZ = 1000;
/** SHRINK_BATCH of mm/shrinker.c. */
const SHRINK_BATCH = 128;

/**
 * A hypervisor that reports every command of today's driver, as it returns,
 * with the batch page's entries for batched commands.
 */
export class ModernTracingHypervisor implements ModernHypervisor {
  cycle = 0;

  constructor(
    private readonly inner: ModernHypervisor,
    private readonly memoryAt: (pfn: number) => Uint32Array | undefined,
    private readonly onCommand: (record: ModernCommandRecord) => void,
  ) {}

  call(command: number, argument: number, argument2: number): ModernHypervisorReply {
    const reply = this.inner.call(command, argument, argument2);
    const record: { -readonly [K in keyof ModernCommandRecord]: ModernCommandRecord[K] } = {
      t: "cmd",
      cycle: this.cycle,
      cmd: modernCommandName(command) ?? String(command),
      arg: argument,
      arg2: argument2,
      status: reply.status,
      result: command === MODERN_COMMANDS.START ? reply.ecx : reply.result,
    };
    if (command >= BATCHED_FIRST && command <= BATCHED_LAST) {
      const words = this.memoryAt(argument);
      const batch: [number, number][] = [];
      for (let i = 0; words !== undefined && i < argument2 && i * 2 < words.length; i++) {
        batch.push([batchEntryPfn(words[i * 2]!, words[i * 2 + 1]!), batchEntryStatus(words[i * 2]!)]);
      }
      record.batch = batch;
    }
    this.onCommand(record);
    return reply;
  }
}

/** The driver's state after work cycle `cycle`, as a trace record. */
export function modernCycleRecord(cycle: number, s: ModernBalloonSnapshot, guestFree: number): ModernCycleRecord {
  return {
    t: "cycle",
    cycle,
    size: s.size,
    target: s.target,
    resetRequired: s.resetRequired,
    capabilities: s.capabilities,
    maxPageSize: s.maxPageSize,
    batching: s.batching,
    batchMaxPages: s.batchMaxPages,
    shrinkTimeout: s.shrinkTimeout,
    guestFree,
    stats: s.stats,
  };
}

/** What a modern scenario's events act on: {@link ModernEventSchedule.apply}. */
export interface ModernEventTargets {
  readonly monitor: ModernSimMonitor;
  /** The simulated guest; absent where the guest is the real machine (`vmballoon run`): guestUse, guestRelease and huge do not apply. */
  readonly guest?: ModernSimGuest;
  /** The host rings the doorbell. */
  doorbell(): void;
  /** Compaction moves a ballooned frame; absent where the real kernel's compaction does that. */
  migrate?(pfn: number): void;
  /** One call of the shrinker core. */
  shrink(nrToScan: number): void;
  /** The debugfs file is read. */
  debugfs(): void;
}

/**
 * A modern scenario's events in time order, applied cycle by cycle: those of
 * cycle k just before cycle k runs, in the order of the file, each event's
 * actions in the order of SIMULATION-MODERN.md.
 */
export class ModernEventSchedule {
  private readonly events: readonly ModernScenarioEvent[];
  private next = 0;

  constructor(events: readonly ModernScenarioEvent[]) {
    // Stable: events of one cycle keep the file's order.
    this.events = [...events].sort((a, b) => a.cycle - b.cycle);
  }

  /** Applies the events of `cycle` (cycles are entered in order). */
  apply(cycle: number, targets: ModernEventTargets): void {
    const events = this.events;
    while (this.next < events.length && events[this.next]!.cycle === cycle) applyModernEvent(events[this.next++]!, targets);
  }
}

function applyModernEvent(event: ModernScenarioEvent, targets: ModernEventTargets): void {
  const { monitor, guest } = targets;
  applyMonitorEvent(event, monitor, guest, (cmd) => MODERN_COMMANDS[cmd as keyof typeof MODERN_COMMANDS]);
  if (guest && event.huge !== undefined) guest.huge = event.huge;
  if (event.doorbell === true) targets.doorbell();
  if (event.migrate !== undefined) targets.migrate?.(event.migrate);
  if (event.shrink !== undefined) targets.shrink(event.shrink);
  if (event.debugfs === true) targets.debugfs();
}

/**
 * One call of the shrinker core (`do_shrink_slab`) with `nrToScan` objects:
 * `count_objects` once, then `scan_objects` in batches of up to SHRINK_BATCH
 * (128) while at least a batch, or all that can be freed, is left to scan.
 * Returns what count said and the frames freed.
 */
export function shrinkSlab(balloon: ModernBalloon, nrToScan: number): { readonly count: number; readonly freed: number } {
  const freeable = balloon.shrinkerCount();
  let freed = 0;
  if (freeable !== 0) {
    let totalScan = Math.min(nrToScan, 2 * freeable);
    while (totalScan >= SHRINK_BATCH || totalScan >= freeable) {
      const scan = Math.min(SHRINK_BATCH, totalScan);
      freed += balloon.shrinkerScan(scan);
      totalScan -= scan;
    }
  }
  return { count: freeable, freed };
}

/**
 * A modern scenario's guest, monitor and balloon, wired together, with the
 * events of SIMULATION-MODERN.md. {@link runModernScenario} drives it.
 */
export class ModernSimulation {
  readonly guest: ModernSimGuest;
  readonly monitor: ModernSimMonitor;
  readonly balloon: ModernBalloon;
  /** The kernel's jiffies: cycle × HZ. */
  jiffies = 0;
  private readonly tracer: ModernTracingHypervisor | undefined;
  private readonly emit: ((record: ModernTraceRecord) => void) | undefined;
  private readonly schedule: ModernEventSchedule;
  private readonly targets: ModernEventTargets;
  private cycle = 0;

  constructor(
    readonly scenario: ModernScenario,
    options: ModernRunOptions = {},
  ) {
    const { guest } = scenario;
    this.guest = new ModernSimGuest(guest);
    const memoryAt = (pfn: number) => this.guest.memoryAt(pfn);
    this.monitor = new ModernSimMonitor({
      firstPfn: guest.firstPfn,
      frames: guest.freePages,
      totalPages: guest.totalPages,
      capabilities: scenario.capabilities,
      startReply: scenario.startReply,
      memoryAt,
    });
    this.emit = options.onRecord;
    let hypervisor: ModernHypervisor = this.monitor;
    if (this.emit && options.commands !== false) hypervisor = this.tracer = new ModernTracingHypervisor(this.monitor, memoryAt, this.emit);
    this.balloon = new ModernBalloon(hypervisor, this.guest, { jiffies: () => this.jiffies });
    this.schedule = new ModernEventSchedule(scenario.events);
    this.targets = {
      monitor: this.monitor,
      guest: this.guest,
      doorbell: () => this.doorbell(),
      migrate: (pfn) => this.migrate(pfn),
      shrink: (nrToScan) => this.shrink(nrToScan),
      debugfs: () => this.emit?.({ t: "debugfs", cycle: this.cycle, text: this.balloon.debugfsText() }),
    };
  }

  /** Sets the clock to `cycle`, stamps commands with it and applies its events (cycles are entered in order). */
  enterCycle(cycle: number): void {
    this.cycle = cycle;
    this.jiffies = cycle * HZ;
    if (this.tracer) this.tracer.cycle = cycle;
    this.schedule.apply(cycle, this.targets);
  }

  /** The driver's state as a trace record. */
  cycleRecord(cycle: number): ModernCycleRecord {
    return modernCycleRecord(cycle, this.balloon.snapshot(), this.guest.freeCount);
  }

  /** The host rings: the callback runs when the host has a doorbell registered and the driver holds one. */
  private doorbell(): void {
    const delivered = this.monitor.doorbellRegistered && this.balloon.doorbellHandle !== null;
    if (delivered) this.balloon.doorbell();
    this.emit?.({ t: "doorbell", cycle: this.cycle, delivered });
  }

  /**
   * Compaction moves a ballooned 4 KB frame: isolate, a new page (the
   * sleeping allocation's reserve), the driver's migratepage, and the
   * migration core's clean-up.
   */
  private migrate(pfn: number): void {
    const { guest, balloon } = this;
    const page = guest.pageOf(pfn);
    if (page === NO_PAGE) return;
    const newPage = guest.allocate(ALLOC.CANSLEEP);
    if (newPage === NO_PAGE) return;
    if (!balloon.isolatePage(page)) {
      // Not a ballooned 4 KB page: nothing happens (the new page goes back where it was).
      guest.free(newPage);
      return;
    }
    const result = balloon.migratePage(newPage, page);
    if (result === 0) {
      guest.free(page);
    } else if (balloon.lastMigrationUnlocked) {
      // The migration core undoes the source, then the destination.
      guest.free(page);
      guest.free(newPage);
    } else {
      balloon.putbackPage(page);
      guest.free(newPage);
    }
    this.emit?.({ t: "migrate", cycle: this.cycle, pfn, newPfn: guest.frameNumber(newPage), result });
  }

  /**
   * One call of the shrinker core (`do_shrink_slab`) with `nrToScan`
   * objects: count once, then scans of up to SHRINK_BATCH. Nothing when the
   * shrinker is not enabled (it is not registered).
   */
  private shrink(nrToScan: number): void {
    if (!this.scenario.shrinker) return;
    const { count, freed } = shrinkSlab(this.balloon, nrToScan);
    this.emit?.({ t: "shrink", cycle: this.cycle, nrToScan, count, freed });
  }
}

/**
 * Runs a modern scenario as SIMULATION-MODERN.md defines it: cycle 0 is the
 * load (no command), cycles 1 … n the work function, cycle n + 1 the unload
 * (when asked for).
 */
export function runModernScenario(scenario: ModernScenario, options: ModernRunOptions = {}): ModernRunResult {
  const sim = new ModernSimulation(scenario, options);
  const { balloon, guest } = sim;
  const emit = options.onRecord;

  sim.enterCycle(0);
  balloon.init();
  // The simulation reads debugfs once after the load: the statistics are on from then.
  if (scenario.statsOn) balloon.debugfsRecord();

  for (let cycle = 1; cycle <= scenario.cycles; cycle++) {
    sim.enterCycle(cycle);
    balloon.work();
    emit?.(sim.cycleRecord(cycle));
    options.onCycle?.(cycle, balloon.snapshot());
  }

  const snapshotBefore = balloon.snapshot();
  const debugfs = balloon.debugfsText();
  emit?.({ t: "debugfs", cycle: scenario.cycles, text: debugfs });
  // The read enabled the statistics: the snapshot shows them.
  const snapshot = snapshotBefore.stats === null ? balloon.snapshot() : snapshotBefore;
  const result = { cycles: scenario.cycles, snapshot, debugfs, guestFree: guest.freeCount };
  if (!scenario.unload) return result;

  sim.enterCycle(scenario.cycles + 1);
  const emptied = balloon.exit();
  const exit = { size: balloon.snapshot().size, guestFree: guest.freeCount, hang: !emptied };
  emit?.({ t: emptied ? "exit" : "exitHang", size: exit.size, guestFree: exit.guestFree });
  return { ...result, exit };
}
