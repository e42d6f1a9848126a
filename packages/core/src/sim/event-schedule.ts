/**
 * A scenario's events in time order, applied cycle by cycle: those of cycle
 * k just before cycle k runs, in the order of the file. One schedule serves
 * both drivers' scenarios: what an event does is the caller's `act`.
 */
export class EventSchedule<E extends { readonly cycle: number }> {
  private readonly events: readonly E[];
  private next = 0;

  constructor(events: readonly E[]) {
    // Stable: events of one cycle keep the file's order.
    this.events = [...events].sort((a, b) => a.cycle - b.cycle);
  }

  /** Acts on the events of `cycle` (cycles are entered in order). */
  apply(cycle: number, act: (event: E) => void): void {
    const events = this.events;
    while (this.next < events.length && events[this.next]!.cycle === cycle) act(events[this.next++]!);
  }
}

/** What both drivers' scenarios share: the actions of an event that a monitor and a guest take (`C`: the command names of the driver's protocol). */
export interface MonitorEvent<C extends string = string> {
  /** The monitor's target, in pages. */
  readonly setTarget?: number;
  /** The monitor sets its reset flag and forgets every locked frame. */
  readonly reset?: boolean;
  /** The workload takes up to this many free pages. */
  readonly guestUse?: number;
  /** The workload gives back up to this many pages. */
  readonly guestRelease?: number;
  /** From now on a LOCK of this frame returns this status. */
  readonly refuse?: { readonly pfn: number; readonly status: number };
  /** The next `count` calls of `cmd` fail with `status`. */
  readonly failNext?: { readonly cmd: C; readonly count: number; readonly status: number };
}

/** What {@link applyMonitorEvent} acts on at the monitor. */
export interface EventMonitor {
  target: number;
  reset(): void;
  refuse(pfn: number, status: number): void;
  failNext(command: number, count: number, status: number): void;
}

/** What {@link applyMonitorEvent} acts on in the guest. */
export interface EventGuest {
  use(pages: number): void;
  release(pages: number): void;
}

/**
 * The actions both drivers' scenarios share, in their order: setTarget,
 * reset, guestUse, guestRelease, refuse, failNext (`command` gives a command
 * name's number in the driver's protocol). Without a monitor (a real host)
 * the monitor's actions do not apply; without a guest (the real machine),
 * guestUse and guestRelease do not.
 */
export function applyMonitorEvent(
  event: MonitorEvent,
  monitor: EventMonitor | undefined,
  guest: EventGuest | undefined,
  command: (name: string) => number,
): void {
  if (monitor && event.setTarget !== undefined) monitor.target = event.setTarget;
  if (monitor && event.reset === true) monitor.reset();
  if (guest && event.guestUse !== undefined) guest.use(event.guestUse);
  if (guest && event.guestRelease !== undefined) guest.release(event.guestRelease);
  if (monitor && event.refuse) monitor.refuse(event.refuse.pfn, event.refuse.status);
  if (monitor && event.failNext) {
    const { cmd, count, status } = event.failNext;
    monitor.failNext(command(cmd), count, status);
  }
}
