import type { FrameCheck, FrameCheckTotals } from "../balloon.js";
import { EventSchedule } from "./event-schedule.js";
import type { AnyTraceRecord, DriverSnapshot, SessionOptions } from "./session.js";

/** What a session needs of its engine: the seed's `Balloon` or today's `ModernBalloon`. */
interface SessionEngine<S> {
  work(): void;
  checkFrames(): FrameCheck;
  frameCheckTotals(): FrameCheckTotals;
  snapshot(): S;
}

/** How a session is put together: its engine on its host, its page source, the reference monitor and guest, the scheduled events. */
export interface SessionParts<H, B, M, G, E> {
  readonly hypervisor: H;
  readonly pageSource: { releaseIdle?(): void };
  readonly monitor: M | undefined;
  readonly guest: G | undefined;
  readonly events: readonly E[] | undefined;
  /** The hypervisor that reports every command to `emit`; its `cycle` is stamped on each record. */
  readonly tracer: (hypervisor: H, emit: (record: AnyTraceRecord) => void) => H & { cycle: number };
  /** The engine, on the hypervisor it is to talk to. */
  readonly engine: (hypervisor: H) => B;
}

/**
 * What both drivers' sessions do alike: the clock (each cycle's events as it
 * is entered, the trace's cycle), the work function, the frame check and
 * the page source's release after it, the snapshot and the cycle record.
 */
export abstract class SessionBase<
  H,
  B extends SessionEngine<S>,
  S extends DriverSnapshot,
  M,
  G extends { readonly freeCount: number },
  E extends { readonly cycle: number },
> {
  cycleNumber = 0;
  readonly balloon: B;
  readonly monitor: M | undefined;
  readonly guest: G | undefined;
  protected readonly emit: ((record: AnyTraceRecord) => void) | undefined;
  protected readonly guestFree: () => number;
  protected readonly source: { releaseIdle?(): void };
  private readonly tracer: { cycle: number } | undefined;
  private readonly schedule: EventSchedule<E>;
  private readonly act = (event: E) => this.applyEvent(event);

  protected constructor(parts: SessionParts<H, B, M, G, E>, options: SessionOptions) {
    this.monitor = parts.monitor;
    this.guest = parts.guest;
    this.source = parts.pageSource;
    this.emit = options.onRecord;
    let hypervisor = parts.hypervisor;
    if (this.emit && options.commands !== false) hypervisor = this.tracer = parts.tracer(hypervisor, this.emit);
    this.balloon = parts.engine(hypervisor);
    this.guestFree = options.guestFree ?? (() => this.guest?.freeCount ?? 0);
    this.schedule = new EventSchedule(parts.events ?? []);
  }

  /** One scheduled event's actions. */
  protected abstract applyEvent(event: E): void;

  /** The trace's cycle record of a snapshot. */
  protected abstract cycleRecordOf(cycle: number, snapshot: S, guestFree: number): AnyTraceRecord;

  /** Moves the clock to `cycle`: commands are stamped with it, and its events applied. */
  protected enter(cycle: number): void {
    this.cycleNumber = cycle;
    if (this.tracer) this.tracer.cycle = cycle;
    this.schedule.apply(cycle, this.act);
  }

  cycle(): void {
    this.enter(this.cycleNumber + 1);
    this.balloon.work();
  }

  checkFrames(): FrameCheck {
    const check = this.balloon.checkFrames();
    this.source.releaseIdle?.();
    return check;
  }

  frameTotals(): FrameCheckTotals {
    return this.balloon.frameCheckTotals();
  }

  snapshot(): S {
    return this.balloon.snapshot();
  }

  recordCycle(): void {
    // Built only for a listener: a run without a trace makes no record.
    if (this.emit) this.emit(this.cycleRecordOf(this.cycleNumber, this.balloon.snapshot(), this.guestFree()));
  }
}
