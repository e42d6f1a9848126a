/**
 * The one place that drives core's driver sessions (`DriverSession`) for the
 * host: a VM's driver engine against its reference guest and
 * monitor, behind {@link VmDriver}. The host does only what a scenario's
 * events could do (setTarget, guestUse, guestRelease), so that each VM's
 * inputs can be written out as an ordinary scenario.
 */
import { SimGuest, driver as driverOf, formatTraceRecord, type DriverSession, type SessionGuest, type SessionMonitor } from "@vmballoon/core/sim";
import type { DriverName } from "./policy/types.js";
import type { HostGuestSpec } from "./scenario.js";

/** A VM's driver, guest and monitor, as the host sees them. */
export interface VmDriver {
  /** Cycle 0: the load. */
  load(): void;
  /** The next work cycle (1, 2, …). */
  cycle(): void;
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
  return options.driver === "none" ? new NoDriver(options) : new SessionDriver(options.driver, options);
}

/** What every VM has: its guest and the workload's moves in it. */
abstract class GuestVm {
  constructor(protected readonly guest: SessionGuest) {}
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

/** A VM without a balloon driver: a guest the host can only swap. */
class NoDriver extends GuestVm implements VmDriver {
  readonly locked = 0;
  readonly target = 0;
  constructor(options: VmDriverOptions) {
    const guest = new SimGuest(options.guest);
    guest.onUse = options.onUse;
    super(guest);
  }
  load(): void {}
  cycle(): void {}
  end(): void {}
  setTarget(): void {}
}

/**
 * A VM with a balloon driver: a session of core's (the driver picked by
 * core's `driver(name)`) against the reference guest and monitor, on a
 * scenario without events: the host applies what the events would.
 */
class SessionDriver extends GuestVm implements VmDriver {
  private readonly session: DriverSession;
  private readonly monitor: SessionMonitor;
  private readonly totalPages: number;
  private loaded = false;

  constructor(name: "seed" | "modern", options: VmDriverOptions) {
    const { onLine } = options;
    const kind = driverOf(name);
    // The scenario of the VM's --vm-traces file, without its events (the host applies them): the parser's defaults for the rest.
    const scenario = kind.parseScenario(JSON.stringify({ cycles: options.cycles, guest: kind.scenarioGuest(options.guest), events: [] }));
    const session = kind.simulate(scenario, onLine === undefined ? {} : { onRecord: (record) => onLine(formatTraceRecord(record)) });
    // A session on the reference guest and monitor has both.
    const guest = session.guest!;
    const monitor = session.monitor!;
    guest.onUse = options.onUse;
    monitor.onLock = options.onLock;
    super(guest);
    this.session = session;
    this.monitor = monitor;
    this.totalPages = options.guest.totalPages;
  }

  load(): void {
    this.loaded = this.session.load();
  }

  cycle(): void {
    if (!this.loaded) return;
    this.session.cycle();
    this.session.recordCycle();
  }

  end(unload: boolean): void {
    if (!this.loaded) return;
    this.session.finish();
    if (unload) this.session.unload();
  }

  setTarget(pages: number): void {
    this.monitor.target = pages;
  }
  get locked(): number {
    return this.monitor.lockedFrames;
  }
  get target(): number {
    return Math.min(this.monitor.target, this.totalPages);
  }
}
