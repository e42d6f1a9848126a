import type { BalloonSnapshot, FrameCheck, FrameCheckTotals } from "../balloon.js";
import type { ModernBalloonSnapshot } from "../modern-balloon.js";
import type { Hypervisor, ModernHypervisor, ModernPageSource } from "../ports.js";
import type { MonitorEvent } from "./event-schedule.js";
import type { ModernTraceRecord } from "./modern-trace.js";
import type { TraceRecord } from "./trace.js";

/** The two drivers: the seed (vmw_balloon 1.2.1.3-k) and today's Linux driver. */
export type DriverName = "seed" | "modern";

/** Every driver's name, in the order the CLI lists them. */
export const DRIVER_NAMES: readonly DriverName[] = ["seed", "modern"];

/** A trace line of either driver (SIMULATION.md or SIMULATION-MODERN.md). */
export type AnyTraceRecord = TraceRecord | ModernTraceRecord;

/** One JSON Lines line of a trace (the seed's or today's driver's), without its newline; keys in the order of the spec. */
export function formatTraceRecord(record: AnyTraceRecord): string {
  return JSON.stringify(record);
}

/** Either driver's state. */
export type DriverSnapshot = BalloonSnapshot | ModernBalloonSnapshot;

/** One call of the shrinker core: what it asked, what count_objects said, what was freed. */
export interface ShrinkResult {
  readonly nrToScan: number;
  readonly count: number;
  readonly freed: number;
}

/** How an unload ended: the balloon's size after it, the guest's free pages, and whether the pop could not finish (today's driver). */
export interface UnloadResult {
  readonly size: number;
  readonly guestFree: number;
  readonly hang: boolean;
}

/** The reference monitor as a session's caller sees it (the host of `vmballoon host`). */
export interface SessionMonitor {
  /** The balloon target the monitor answers GET_TARGET with. */
  target: number;
  /** Frames the monitor holds locked now. */
  readonly lockedFrames: number;
  /** Told of each successful lock: its first frame and its frames (1, or 512 for a 2 MB page); undefined by default. */
  onLock: ((pfn: number, frames: number) => void) | undefined;
}

/** The reference guest as a session's caller sees it. */
export interface SessionGuest {
  /** Frames on the free stack. */
  readonly freeCount: number;
  /** Pages the workload holds. */
  readonly workloadCount: number;
  /** `guestUse`: the workload takes up to this many free pages. */
  use(pages: number): void;
  /** `guestRelease`: the workload gives back up to this many pages. */
  release(pages: number): void;
  /** Told of each frame the workload's `use` takes; undefined by default. */
  onUse: ((pfn: number) => void) | undefined;
}

/**
 * One driver, loaded into one guest and talking to one host: the seed's
 * engine or today's, behind one interface, for every caller (`simulate`, the
 * runners, `run`, the host of `@vmballoon/host`). Time is the caller's: it
 * calls {@link load} once, {@link cycle} once a cycle, and {@link unload}
 * once; the session stamps the trace's records with the cycle it is in and
 * applies the scheduled events of each cycle as it enters it. What only one
 * driver has (the doorbell, the shrinker, the batch page, 2 MB pages) stays
 * behind the session.
 */
export interface DriverSession {
  readonly driver: DriverName;
  /** The cycle the session is in: 0 from the load, n after the n-th {@link cycle}. */
  readonly cycleNumber: number;
  /** The reference monitor, where the host is one (absent with a real host). */
  readonly monitor: SessionMonitor | undefined;
  /** The reference guest, where the guest is one (absent on a real machine). */
  readonly guest: SessionGuest | undefined;
  /** Cycle 0: its events, then the load. False when the load failed (the seed's START or GUEST_ID): the `initFailed` record is out, nothing else runs. */
  load(): boolean;
  /** After a failed load: the command and what the host answered (`status` 0 where the driver does not say). */
  loadFailure(): { readonly command: string; readonly status: number };
  /** Enters the next cycle (its events first) and runs the work function once. */
  cycle(): void;
  /** The frame check after a cycle: pages the guest's kernel moved are repaired with the host; then the page source gives back what it keeps idle. */
  checkFrames(): FrameCheck;
  /** The frame checks so far. */
  frameTotals(): FrameCheckTotals;
  snapshot(): DriverSnapshot;
  /** The debugfs `vmmemctl` text now, byte for byte. */
  debugfsText(): string;
  /** The trace's record of the current cycle, reported (after the cycle and its frame check); nothing is built without `onRecord`. */
  recordCycle(): void;
  /** The debugfs record after the last cycle, reported; returns its text. */
  finish(): string;
  /** Enters the next cycle and unloads: every page back to the guest; the exit record is reported. */
  unload(): UnloadResult;
  /** An event's actions, now (`setTarget`, `guestUse`, `guestRelease`, …): what a scenario could do in this cycle. */
  apply(event: MonitorEvent): void;
  /** Memory pressure: one call of the shrinker core with `nrToScan` pages; undefined when the driver has no shrinker registered. */
  shrink(nrToScan: number): ShrinkResult | undefined;
  /** The shrinker's count_objects (0 without one). */
  shrinkable(): number;
}

/** What a session's records and messages go to. */
export interface SessionOptions {
  /** Receives the trace records, in the order things happen. */
  readonly onRecord?: (record: AnyTraceRecord) => void;
  /** Whether command records are sent to `onRecord` (default true). */
  readonly commands?: boolean;
  /** The driver's pr_err messages. */
  readonly onError?: (message: string) => void;
  /** The guest's free pages, for the cycle and exit records (default: the reference guest's free stack). */
  readonly guestFree?: () => number;
}

/** A page source of a real machine (`run`): today's driver's port, and what a session needs around it. */
export interface MachinePageSource extends ModernPageSource {
  /** One more than the highest frame this machine has: the reference monitor's frames. */
  frameLimit(): number;
  /** The batch page's memory at a frame, for a reference monitor that reads and writes it. */
  memoryAt(pfn: number): Uint32Array | undefined;
  /** After each cycle: give back to the kernel what the source keeps idle. */
  releaseIdle?(): void;
}

/** A session on this machine's memory (`vmballoon run`): its host, and what the reference monitor is told when it is the host. */
export interface MachineOptions<S = unknown> extends SessionOptions {
  /** The real host's port (the seed's 32-bit one for the seed, today's 64-bit one for today's driver); absent: the reference monitor, as large as this machine. */
  readonly host?: Hypervisor | ModernHypervisor;
  /** The reference monitor's target from the start. */
  readonly target?: number;
  /** A scenario of the driver's kind: its monitor events (the guest's do not apply: the guest is this machine), and today's driver's capabilities, START reply and statsOn. */
  readonly scenario?: S;
  /** Today's driver: the shrinker registered. */
  readonly shrinker?: boolean;
  /** Today's driver: the kernel's jiffies (here, real time). */
  readonly jiffies?: () => number;
}
