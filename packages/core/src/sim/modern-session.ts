import { ALLOC, MODERN_COMMANDS } from "@vmballoon/protocol";
import { ModernBalloon, type ModernBalloonSnapshot } from "../modern-balloon.js";
import { NO_PAGE, type ModernHypervisor, type ModernPageSource } from "../ports.js";
import { applyMonitorEvent, type MonitorEvent } from "./event-schedule.js";
import { builtinModernScenario } from "./builtin.js";
import { ModernSimGuest } from "./modern-guest.js";
import { ModernSimMonitor } from "./modern-monitor.js";
import type { ModernScenario, ModernScenarioEvent } from "./modern-scenario.js";
import { ModernTracingHypervisor, modernCycleRecord, type ModernCycleRecord } from "./modern-trace.js";
import { SessionBase } from "./session-base.js";
import type { DriverSession, MachineOptions, MachinePageSource, SessionOptions, ShrinkResult, UnloadResult } from "./session.js";

/** The kernel's HZ: jiffies a second. */
const HZ = 1000;
/** SHRINK_BATCH of mm/shrinker.c. */
const SHRINK_BATCH = 128;

/** What today's driver is built from: its host, its pages, and the reference monitor and guest that events act on, where they are the host and the guest. */
export interface ModernSessionPorts {
  /** What the driver talks to: the reference monitor, or a real host's port. */
  readonly hypervisor: ModernHypervisor;
  readonly pageSource: ModernPageSource & { releaseIdle?(): void };
  /** The batch page's memory at a frame, for the trace's batch entries. */
  readonly memoryAt: (pfn: number) => Uint32Array | undefined;
  readonly monitor?: ModernSimMonitor;
  /** The reference guest: guestUse, guestRelease, huge and migrate act on it (absent on a real machine, whose kernel moves pages itself). */
  readonly guest?: ModernSimGuest;
  /** The scenario's events, applied as their cycles are entered. */
  readonly events?: readonly ModernScenarioEvent[];
}

export interface ModernSessionOptions extends SessionOptions {
  /** The kernel's jiffies (default: the cycle × HZ, the simulation's clock). */
  readonly jiffies?: () => number;
  /** Whether debugfs is read once at the load, turning the statistics on (default true). */
  readonly statsOn?: boolean;
  /** Whether the shrinker is registered (default false). */
  readonly shrinker?: boolean;
  /** Whether the unload gives the batch page back too (the C keeps it to the module's end: the simulation does as the C). */
  readonly returnBatchPage?: boolean;
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

const commandNumber = (name: string) => MODERN_COMMANDS[name as keyof typeof MODERN_COMMANDS];

/** Today's Linux driver (drivers/misc/vmw_balloon.c, 6.7 and later) as a {@link DriverSession}, with the events of SIMULATION-MODERN.md. */
export class ModernSession
  extends SessionBase<ModernHypervisor, ModernBalloon, ModernBalloonSnapshot, ModernSimMonitor, ModernSimGuest, ModernScenarioEvent>
  implements DriverSession
{
  readonly driver = "modern";
  private readonly options: ModernSessionOptions;
  private readonly pages: ModernPageSource;

  constructor(ports: ModernSessionPorts, options: ModernSessionOptions = {}) {
    const clock = { cycle: 0 };
    const jiffies = options.jiffies ?? (() => clock.cycle * HZ);
    super(
      {
        ...ports,
        monitor: ports.monitor,
        guest: ports.guest,
        events: ports.events,
        tracer: (hypervisor, emit) => new ModernTracingHypervisor(hypervisor, ports.memoryAt, emit),
        engine: (hypervisor) => new ModernBalloon(hypervisor, ports.pageSource, options.onError ? { jiffies, onError: options.onError } : { jiffies }),
      },
      options,
    );
    this.options = options;
    this.pages = ports.pageSource;
    this.clock = clock;
  }

  /** The simulation's clock: the cycle, for the default jiffies. */
  private readonly clock: { cycle: number };

  protected override enter(cycle: number): void {
    this.clock.cycle = cycle;
    super.enter(cycle);
  }

  /** An event's actions in the order of SIMULATION-MODERN.md. */
  protected applyEvent(event: ModernScenarioEvent): void {
    applyMonitorEvent(event, this.monitor, this.guest, commandNumber);
    if (this.guest && event.huge !== undefined) this.guest.huge = event.huge;
    if (event.doorbell === true) this.doorbell();
    if (event.migrate !== undefined) this.migrate(event.migrate);
    if (event.shrink !== undefined) this.shrink(event.shrink);
    if (event.debugfs === true) this.emit?.({ t: "debugfs", cycle: this.cycleNumber, text: this.balloon.debugfsText() });
  }

  protected cycleRecordOf(cycle: number, snapshot: ModernBalloonSnapshot, guestFree: number): ModernCycleRecord {
    return modernCycleRecord(cycle, snapshot, guestFree);
  }

  load(): boolean {
    this.enter(0);
    this.balloon.init();
    // Read once after the load (the scenario's statsOn): the statistics are on from then.
    if (this.options.statsOn ?? true) this.balloon.debugfsRecord();
    return true;
  }

  loadFailure(): { readonly command: string; readonly status: number } {
    // Today's driver has no failed load: a START that fails is retried each cycle.
    return { command: "START", status: 0 };
  }

  debugfsText(): string {
    return this.balloon.debugfsText();
  }

  finish(): string {
    const text = this.balloon.debugfsText();
    this.emit?.({ t: "debugfs", cycle: this.cycleNumber, text });
    return text;
  }

  unload(): UnloadResult {
    this.enter(this.cycleNumber + 1);
    const emptied = this.balloon.exit();
    // The C keeps its batch page to the end (the module's memory goes with it); a real machine's goes back with the rest.
    if (this.options.returnBatchPage === true && this.balloon.batchPageHandle !== NO_PAGE) this.pages.free(this.balloon.batchPageHandle);
    this.source.releaseIdle?.();
    const exit = { size: this.balloon.snapshot().size, guestFree: this.guestFree(), hang: !emptied };
    this.emit?.({ t: emptied ? "exit" : "exitHang", size: exit.size, guestFree: exit.guestFree });
    return exit;
  }

  apply(event: MonitorEvent): void {
    applyMonitorEvent(event, this.monitor, this.guest, commandNumber);
  }

  /** One call of the shrinker core, reported as a `shrink` record; nothing when the shrinker is not registered. */
  shrink(nrToScan: number): ShrinkResult | undefined {
    if (this.options.shrinker !== true) return undefined;
    const { count, freed } = shrinkSlab(this.balloon, nrToScan);
    this.emit?.({ t: "shrink", cycle: this.cycleNumber, nrToScan, count, freed });
    return { nrToScan, count, freed };
  }

  shrinkable(): number {
    return this.options.shrinker === true ? this.balloon.shrinkerCount() : 0;
  }

  /** The host rings: the callback runs when the host has a doorbell registered and the driver holds one. */
  private doorbell(): void {
    const delivered = this.monitor !== undefined && this.monitor.doorbellRegistered && this.balloon.doorbellHandle !== null;
    if (delivered) this.balloon.doorbell();
    this.emit?.({ t: "doorbell", cycle: this.cycleNumber, delivered });
  }

  /**
   * Compaction moves a ballooned 4 KB frame of the reference guest: isolate,
   * a new page (the sleeping allocation's reserve), the driver's
   * migratepage, and the migration core's clean-up. On a real machine the
   * kernel does this itself (the frame check repairs it).
   */
  private migrate(pfn: number): void {
    const { guest, balloon } = this;
    if (guest === undefined) return;
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
    this.emit?.({ t: "migrate", cycle: this.cycleNumber, pfn, newPfn: guest.frameNumber(newPage), result });
  }
}

/** A session of today's driver against the reference guest and monitor of a scenario, its events scheduled. */
export function modernSimSession(scenario: ModernScenario, options: SessionOptions = {}): ModernSession {
  const { guest: spec, events, capabilities, startReply, statsOn, shrinker } = scenario;
  const guest = new ModernSimGuest(spec);
  const memoryAt = (pfn: number) => guest.memoryAt(pfn);
  const monitor = new ModernSimMonitor({ firstPfn: spec.firstPfn, frames: spec.freePages, totalPages: spec.totalPages, capabilities, startReply, memoryAt });
  return new ModernSession({ hypervisor: monitor, pageSource: guest, memoryAt, monitor, guest, events }, { ...options, statsOn, shrinker });
}

/**
 * A session of today's driver on this machine's memory: the real host, or
 * the reference monitor (the scenario's capabilities, START reply and monitor
 * events; the built-in scenario's host without one). Its batch page is a
 * page of this machine, read and written by the reference monitor through
 * the page source, and given back at the unload.
 */
export function modernMachineSession(source: MachinePageSource, options: MachineOptions<ModernScenario>): ModernSession {
  const scenario = options.scenario ?? builtinModernScenario;
  const memoryAt = (pfn: number) => source.memoryAt(pfn);
  const settings = { ...options, statsOn: scenario.statsOn, returnBatchPage: true };
  const host = options.host as ModernHypervisor | undefined;
  if (host !== undefined) return new ModernSession({ hypervisor: host, pageSource: source, memoryAt }, settings);
  const { capabilities, startReply } = scenario;
  const monitor = new ModernSimMonitor({ firstPfn: 0, frames: source.frameLimit(), totalPages: source.totalPages(), capabilities, startReply, memoryAt });
  if (options.target !== undefined) monitor.target = options.target;
  return new ModernSession({ hypervisor: monitor, pageSource: source, memoryAt, monitor, events: options.scenario?.events ?? [] }, settings);
}
