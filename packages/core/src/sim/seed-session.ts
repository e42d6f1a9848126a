import { COMMANDS, commandName } from "@vmballoon/protocol";
import { Balloon, type BalloonSnapshot } from "../balloon.js";
import { debugfsText } from "../debugfs.js";
import type { Hypervisor, HypervisorReply, PageSource } from "../ports.js";
import { applyMonitorEvent, type MonitorEvent } from "./event-schedule.js";
import { SimGuest } from "./guest.js";
import { SimMonitor } from "./monitor.js";
import type { Scenario, ScenarioEvent } from "./scenario.js";
import type { DriverSession, MachineOptions, MachinePageSource, SessionOptions, ShrinkResult, UnloadResult } from "./session.js";
import { SessionBase } from "./session-base.js";
import { TracingHypervisor, cycleRecord, type CycleRecord } from "./trace.js";

/** What the seed's driver is built from: its host, its pages, and the reference monitor and guest that events act on, where they are the host and the guest. */
export interface SeedSessionPorts {
  /** What the driver talks to: the reference monitor, or a real host's port. */
  readonly hypervisor: Hypervisor;
  readonly pageSource: PageSource & { releaseIdle?(): void };
  readonly monitor?: SimMonitor;
  readonly guest?: SimGuest;
  /** The scenario's events, applied as their cycles are entered. */
  readonly events?: readonly ScenarioEvent[];
}

export interface SeedSessionOptions extends SessionOptions {
  /** Remember the host's last answer, so that a failed load can say what it was (one more call a command: for `run`, not the simulation). */
  readonly watchReplies?: boolean;
}

const commandNumber = (name: string) => COMMANDS[name as keyof typeof COMMANDS];

/** Remembers the last reply, so that a failed load can say what the host answered. */
class LastReply implements Hypervisor {
  command = -1;
  status = 0;
  constructor(private readonly inner: Hypervisor) {}
  call(command: number, argument: number): HypervisorReply {
    const reply = this.inner.call(command, argument);
    this.command = command;
    this.status = reply.status;
    return reply;
  }
}

/** The seed's driver (vmw_balloon 1.2.1.3-k) as a {@link DriverSession}. */
export class SeedSession extends SessionBase<Hypervisor, Balloon, BalloonSnapshot, SimMonitor, SimGuest, ScenarioEvent> implements DriverSession {
  readonly driver = "seed";
  private readonly lastReply: LastReply | undefined;

  constructor(ports: SeedSessionPorts, options: SeedSessionOptions = {}) {
    const watched: { reply?: LastReply } = {};
    super(
      {
        ...ports,
        monitor: ports.monitor,
        guest: ports.guest,
        events: ports.events,
        tracer: (hypervisor, emit) => new TracingHypervisor(hypervisor, emit),
        engine: (hypervisor) => {
          if (options.watchReplies === true) hypervisor = watched.reply = new LastReply(hypervisor);
          return new Balloon(hypervisor, ports.pageSource, options.onError ? { onError: options.onError } : {});
        },
      },
      options,
    );
    this.lastReply = watched.reply;
  }

  protected applyEvent(event: MonitorEvent): void {
    applyMonitorEvent(event, this.monitor, this.guest, commandNumber);
  }

  protected cycleRecordOf(cycle: number, snapshot: BalloonSnapshot, guestFree: number): CycleRecord {
    return cycleRecord(cycle, snapshot, guestFree);
  }

  load(): boolean {
    this.enter(0);
    if (this.balloon.init()) return true;
    this.emit?.({ t: "initFailed" });
    return false;
  }

  loadFailure(): { readonly command: string; readonly status: number } {
    const reply = this.lastReply;
    if (reply) return { command: commandName(reply.command) ?? String(reply.command), status: reply.status };
    return { command: this.balloon.snapshot().stats.startFail ? "START" : "GUEST_ID", status: 0 };
  }

  debugfsText(): string {
    return debugfsText(this.balloon.snapshot());
  }

  finish(): string {
    const text = this.debugfsText();
    this.emit?.({ t: "debugfs", text });
    return text;
  }

  unload(): UnloadResult {
    this.enter(this.cycleNumber + 1);
    this.balloon.exit();
    this.source.releaseIdle?.();
    const exit = { size: this.balloon.snapshot().size, guestFree: this.guestFree() };
    this.emit?.({ t: "exit", ...exit });
    return { ...exit, hang: false };
  }

  apply(event: MonitorEvent): void {
    this.applyEvent(event);
  }

  shrink(): ShrinkResult | undefined {
    return undefined;
  }

  shrinkable(): number {
    return 0;
  }
}

/** A seed session against the reference guest and monitor of a scenario, its events scheduled. */
export function seedSimSession(scenario: Scenario, options?: SessionOptions): SeedSession {
  const { guest: spec, events } = scenario;
  const guest = new SimGuest(spec);
  const monitor = new SimMonitor({ firstPfn: spec.firstPfn, frames: spec.freePages, totalPages: spec.totalPages });
  return new SeedSession({ hypervisor: monitor, pageSource: guest, monitor, guest, events }, options);
}

/** A seed session on this machine's memory: the real host, or the reference monitor with the scenario's monitor events. */
export function seedMachineSession(source: MachinePageSource, options: MachineOptions<Scenario>): SeedSession {
  const settings = { ...options, watchReplies: true };
  const host = options.host as Hypervisor | undefined;
  if (host !== undefined) return new SeedSession({ hypervisor: host, pageSource: source }, settings);
  const monitor = new SimMonitor({ firstPfn: 0, frames: source.frameLimit(), totalPages: source.totalPages() });
  if (options.target !== undefined) monitor.target = options.target;
  return new SeedSession({ hypervisor: monitor, pageSource: source, monitor, events: options.scenario?.events ?? [] }, settings);
}
