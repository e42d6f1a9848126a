/**
 * The one place that drives core's runners (`Simulation`, `ModernSimulation`)
 * for the host: a VM's driver engine against its reference guest and
 * monitor, behind {@link VmDriver}. The host does only what a scenario's
 * events could do (setTarget, guestUse, guestRelease), so that each VM's
 * inputs can be written out as an ordinary scenario.
 */
import { debugfsText } from "@vmballoon/core";
import {
  ModernSimulation,
  SimGuest,
  Simulation,
  formatTraceRecord,
  validateModernScenario,
  validateScenario,
  type ModernTraceRecord,
  type TraceRecord,
} from "@vmballoon/core/sim";
import type { DriverName } from "./policy/types.js";
import type { HostGuestSpec } from "./scenario.js";

/** A VM's driver, guest and monitor, as the host sees them. */
export interface VmDriver {
  /** Cycle 0: the load. */
  load(): void;
  /** Work cycle `cycle` (1, 2, …). */
  cycle(cycle: number): void;
  /** After the last work cycle (`cycles`): the trace's debugfs record; with `unload`, cycle `cycles + 1`, the unload. */
  end(unload: boolean): void;
  /** The monitor's target from now on. */
  setTarget(pages: number): void;
  /** `guestUse`: the workload takes up to `pages` free frames. */
  use(pages: number): void;
  /** `guestRelease`: the workload gives back up to `pages` pages. */
  release(pages: number): void;
  /** B: frames locked at the monitor. */
  readonly locked: number;
  /** What the monitor answers GET_TARGET: `min(target, totalPages)` (0 without a driver). */
  readonly target: number;
  /** The guest's free frames. */
  readonly guestFree: number;
  /** Pages the workload holds. */
  readonly workload: number;
}

export interface VmDriverOptions {
  readonly driver: DriverName;
  readonly guest: HostGuestSpec;
  /** Work cycles, for the trace's last records. */
  readonly cycles: number;
  /** Each frame the workload pops. */
  readonly onUse: (pfn: number) => void;
  /** Each successful lock: its frame and frame count (1 or 512). */
  readonly onLock: (pfn: number, frames: number) => void;
  /** The VM's own driver trace, line by line (SIMULATION(-MODERN).md); absent: no trace is built. */
  readonly onLine?: (line: string) => void;
}

/** A VM's driver: the seed's, today's, or none (a guest the host can only swap). */
export function createVmDriver(options: VmDriverOptions): VmDriver {
  if (options.driver === "none") return new NoDriver(options);
  return options.driver === "seed" ? new SeedDriver(options) : new ModernDriver(options);
}

/** The guest spec of the seed's scenarios (no `huge`). */
export function seedGuest(g: HostGuestSpec) {
  return { totalPages: g.totalPages, freePages: g.freePages, firstPfn: g.firstPfn, nosleepReserve: g.nosleepReserve, sleepReserve: g.sleepReserve };
}

class NoDriver implements VmDriver {
  private readonly guest: SimGuest;
  readonly locked = 0;
  readonly target = 0;
  constructor(options: VmDriverOptions) {
    this.guest = new SimGuest(options.guest);
    this.guest.onUse = options.onUse;
  }
  load(): void {}
  cycle(): void {}
  end(): void {}
  setTarget(): void {}
  use(pages: number): void {
    this.guest.use(pages);
  }
  release(pages: number): void {
    this.guest.release(pages);
  }
  get guestFree(): number {
    return this.guest.freeCount;
  }
  get workload(): number {
    return this.guest.workloadCount;
  }
}

class SeedDriver implements VmDriver {
  private readonly sim: Simulation;
  private readonly emit: ((record: TraceRecord) => void) | undefined;
  private readonly totalPages: number;
  private readonly cycles: number;
  private loaded = false;

  constructor(options: VmDriverOptions) {
    const { onLine } = options;
    this.emit = onLine === undefined ? undefined : (record) => onLine(formatTraceRecord(record));
    const scenario = validateScenario({ cycles: options.cycles, guest: seedGuest(options.guest), events: [] });
    this.sim = new Simulation(scenario, this.emit === undefined ? {} : { onRecord: this.emit });
    this.sim.guest.onUse = options.onUse;
    this.sim.monitor.onLock = options.onLock;
    this.totalPages = options.guest.totalPages;
    this.cycles = options.cycles;
  }

  load(): void {
    this.sim.enterCycle(0);
    this.loaded = this.sim.balloon.init();
    if (!this.loaded) this.emit?.({ t: "initFailed" });
  }

  cycle(cycle: number): void {
    if (!this.loaded) return;
    this.sim.enterCycle(cycle);
    this.sim.balloon.work();
    this.emit?.(this.sim.cycleRecord(cycle));
  }

  end(unload: boolean): void {
    if (!this.loaded) return;
    const { balloon, guest } = this.sim;
    if (this.emit) this.emit({ t: "debugfs", text: debugfsText(balloon.snapshot()) });
    if (!unload) return;
    this.sim.enterCycle(this.cycles + 1);
    balloon.exit();
    this.emit?.({ t: "exit", size: balloon.snapshot().size, guestFree: guest.freeCount });
  }

  setTarget(pages: number): void {
    this.sim.monitor.target = pages;
  }
  use(pages: number): void {
    this.sim.guest.use(pages);
  }
  release(pages: number): void {
    this.sim.guest.release(pages);
  }
  get locked(): number {
    return this.sim.monitor.lockedFrames;
  }
  get target(): number {
    return Math.min(this.sim.monitor.target, this.totalPages);
  }
  get guestFree(): number {
    return this.sim.guest.freeCount;
  }
  get workload(): number {
    return this.sim.guest.workloadCount;
  }
}

class ModernDriver implements VmDriver {
  private readonly sim: ModernSimulation;
  private readonly emit: ((record: ModernTraceRecord) => void) | undefined;
  private readonly totalPages: number;
  private readonly cycles: number;

  constructor(options: VmDriverOptions) {
    const { onLine } = options;
    this.emit = onLine === undefined ? undefined : (record) => onLine(formatTraceRecord(record));
    const scenario = validateModernScenario({ cycles: options.cycles, guest: options.guest, events: [] });
    this.sim = new ModernSimulation(scenario, this.emit === undefined ? {} : { onRecord: this.emit });
    this.sim.guest.onUse = options.onUse;
    this.sim.monitor.onLock = options.onLock;
    this.totalPages = options.guest.totalPages;
    this.cycles = options.cycles;
  }

  load(): void {
    this.sim.enterCycle(0);
    this.sim.balloon.init();
    // As the modern runner does (statsOn, its default): debugfs is read once after the load.
    this.sim.balloon.debugfsRecord();
  }

  cycle(cycle: number): void {
    this.sim.enterCycle(cycle);
    this.sim.balloon.work();
    this.emit?.(this.sim.cycleRecord(cycle));
  }

  end(unload: boolean): void {
    const { balloon, guest } = this.sim;
    if (this.emit) this.emit({ t: "debugfs", cycle: this.cycles, text: balloon.debugfsText() });
    if (!unload) return;
    this.sim.enterCycle(this.cycles + 1);
    const emptied = balloon.exit();
    this.emit?.({ t: emptied ? "exit" : "exitHang", size: balloon.snapshot().size, guestFree: guest.freeCount });
  }

  setTarget(pages: number): void {
    this.sim.monitor.target = pages;
  }
  use(pages: number): void {
    this.sim.guest.use(pages);
  }
  release(pages: number): void {
    this.sim.guest.release(pages);
  }
  get locked(): number {
    return this.sim.monitor.lockedFrames;
  }
  get target(): number {
    return Math.min(this.sim.monitor.target, this.totalPages);
  }
  get guestFree(): number {
    return this.sim.guest.freeCount;
  }
  get workload(): number {
    return this.sim.guest.workloadCount;
  }
}
