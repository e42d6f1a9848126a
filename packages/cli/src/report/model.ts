/**
 * What the report shows, folded from a trace's records as they are read: one
 * point per cycle, the marks on the time axis, the command counts, the final
 * counters and debugfs text. Everything here comes from the trace; nothing is
 * taken from the scenario or the engine, so that `vmballoon report` of a trace
 * and `simulate --report` of the same run give the same page.
 */
import { STATUS, SUCCESS_WITH_CAPABILITIES, describeStatus } from "@vmballoon/protocol";
import type { ReadCommand, ReadCycle, ReadDebugfs, ReadExit, ReadRecord } from "@vmballoon/core/sim";

/** The driver's state after one cycle. */
export interface CyclePoint {
  readonly cycle: number;
  readonly size: number;
  readonly target: number;
  readonly guestFree: number | undefined;
  readonly rateAlloc: number | undefined;
  readonly rateFree: number | undefined;
}

/** The kinds of mark on the time axis, in the order the chart lists them. */
export const MARK_KINDS = ["reset", "failure", "refusal", "allocation failure"] as const;

/** Something that happened in a cycle: one of {@link MARK_KINDS}, or another kind of record (the modern `shrink`, …). */
export interface Mark {
  readonly kind: string;
  readonly cycle: number;
  /** How many times in that cycle. */
  count: number;
  /** What happened, by cause: "GET_TARGET ERROR_RESET" → 1. */
  readonly causes: Map<string, number>;
}

export interface CommandCount {
  readonly name: string;
  sent: number;
  failed: number;
  /** Failures by status name. */
  readonly statuses: Map<string, number>;
}

export type Ending =
  | { readonly kind: "exit" | "exitHang"; readonly size: number; readonly guestFree: number | undefined }
  | { readonly kind: "initFailed" }
  | { readonly kind: "loaded" };

export interface ReportModel {
  /** `modern` when any record has a field only today's driver writes. */
  readonly driver: "seed" | "modern";
  readonly records: number;
  readonly points: readonly CyclePoint[];
  readonly marks: readonly Mark[];
  readonly commands: readonly CommandCount[];
  /** Records of kinds other than cmd, cycle, debugfs and the endings: kind → count. */
  readonly otherKinds: ReadonlyMap<string, number>;
  /** The counters of the last cycle record that had them, flattened: "ops.start" → "1 (0 failed)". */
  readonly finalStats: readonly (readonly [string, string])[];
  /** Every debugfs text; the last is the final one. */
  readonly debugfs: readonly ReadDebugfs[];
  readonly ending: Ending;
  readonly peak: { readonly size: number; readonly cycle: number } | undefined;
}

const BATCHED_LOCKS = new Set(["BATCHED_LOCK", "BATCHED_2M_LOCK"]);
/** Answers about a page that are not the host refusing it: it does not know the command, needs no more pages, or was reset. */
const NOT_REFUSALS = new Set<number>([STATUS.ERROR_CMD_INVALID, STATUS.ERROR_PPN_NOTNEEDED, STATUS.ERROR_RESET]);

function statusName(status: number): string {
  if (status === SUCCESS_WITH_CAPABILITIES) return "SUCCESS_WITH_CAPABILITIES";
  return describeStatus(status)?.name ?? `status ${status >= 0 ? `0x${status.toString(16)}` : status}`;
}

/** What a failed status marks: a reset asked for, a page refused (by a status about that page), or a failure. */
function failureKind(status: number, aboutAPage: boolean): string {
  if (status === STATUS.ERROR_RESET) return "reset";
  return aboutAPage && !NOT_REFUSALS.has(status) ? "refusal" : "failure";
}

/** The counters of a cycle record as name → number, nested ones flattened ("ops.start.1"). */
function flattenNumbers(value: unknown, prefix: string, out: Map<string, number>): void {
  if (typeof value === "number") out.set(prefix, value);
  else if (Array.isArray(value)) value.forEach((v, i) => flattenNumbers(v, `${prefix}.${i}`, out));
  else if (value !== null && typeof value === "object") {
    for (const [key, v] of Object.entries(value)) flattenNumbers(v, prefix ? `${prefix}.${key}` : key, out);
  }
}

/** The counters as the page lists them: pairs as "count (failed)" (modern `ops`) or "4k / 2M" (modern `pages`). */
function describeStats(stats: { readonly [name: string]: unknown }): [string, string][] {
  const rows: [string, string][] = [];
  const walk = (value: unknown, name: string) => {
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === "number")) {
      rows.push([name, name.startsWith("ops.") ? `${value[0]} (${value[1]} failed)` : `${value[0]} (4k), ${value[1]} (2M)`]);
    } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, v] of Object.entries(value)) walk(v, name ? `${name}.${key}` : key);
    } else {
      rows.push([name, JSON.stringify(value)]);
    }
  };
  walk(stats, "");
  return rows;
}

/** Folds records into a {@link ReportModel}: {@link add} each, then {@link finish}. */
export class ReportBuilder {
  private records = 0;
  private modern = false;
  private readonly points: CyclePoint[] = [];
  private readonly marks = new Map<string, Mark>();
  private readonly commands = new Map<string, CommandCount>();
  private readonly otherKinds = new Map<string, number>();
  private readonly debugfs: ReadDebugfs[] = [];
  private ending: Ending = { kind: "loaded" };
  private lastStats: { readonly [name: string]: unknown } | undefined;
  /** Allocation failures counted so far, from the last cycle record with counters. */
  private allocFailures: number | undefined;
  private firstStartSeen = false;
  /** Cycles with a START after the load's: resets, or the unload's when an exit follows. */
  private readonly starts: number[] = [];

  add(record: ReadRecord): void {
    this.records++;
    switch (record.t) {
      case "cmd":
        this.command(record as ReadCommand);
        break;
      case "cycle":
        this.cycle(record as ReadCycle);
        break;
      case "debugfs":
        if ((record as ReadDebugfs).cycle !== undefined) this.modern = true;
        this.debugfs.push(record as ReadDebugfs);
        break;
      case "exit":
      case "exitHang": {
        const exit = record as ReadExit;
        if (exit.t === "exitHang") this.modern = true;
        this.ending = { kind: exit.t, size: exit.size, guestFree: exit.guestFree };
        break;
      }
      case "initFailed":
        this.ending = { kind: "initFailed" };
        break;
      default: {
        this.otherKinds.set(record.t, (this.otherKinds.get(record.t) ?? 0) + 1);
        this.mark(record.t, (record as { cycle: number }).cycle, record.t);
      }
    }
  }

  private mark(kind: string, cycle: number, cause: string, count = 1): void {
    const key = `${kind}\u0000${cycle}`;
    let mark = this.marks.get(key);
    if (mark === undefined) {
      mark = { kind, cycle, count: 0, causes: new Map() };
      this.marks.set(key, mark);
    }
    mark.count += count;
    mark.causes.set(cause, (mark.causes.get(cause) ?? 0) + count);
  }

  private command(record: ReadCommand): void {
    if (record.arg2 !== undefined || record.batch !== undefined) this.modern = true;
    let count = this.commands.get(record.cmd);
    if (count === undefined) {
      count = { name: record.cmd, sent: 0, failed: 0, statuses: new Map() };
      this.commands.set(record.cmd, count);
    }
    count.sent++;
    if (record.cmd === "START") {
      if (this.firstStartSeen) this.starts.push(record.cycle);
      this.firstStartSeen = true;
    }
    const ok = record.status === 0 || (record.cmd === "START" && record.status === SUCCESS_WITH_CAPABILITIES);
    if (!ok) {
      const name = statusName(record.status);
      count.failed++;
      count.statuses.set(name, (count.statuses.get(name) ?? 0) + 1);
      // A single LOCK's status is about its page; a batched command's, about the whole command.
      this.mark(failureKind(record.status, record.cmd === "LOCK"), record.cycle, `${record.cmd} ${name}`);
      return;
    }
    // A batch that went through: each entry has its own status.
    if (record.batch !== undefined && BATCHED_LOCKS.has(record.cmd)) {
      for (const [, status] of record.batch) {
        if (status !== 0) this.mark(failureKind(status, true), record.cycle, `${record.cmd} entry ${statusName(status)}`);
      }
    }
  }

  private cycle(record: ReadCycle): void {
    if ("capabilities" in record || "maxPageSize" in record) this.modern = true;
    this.points.push({
      cycle: record.cycle,
      size: record.size,
      target: record.target,
      guestFree: record.guestFree,
      rateAlloc: record.rateAlloc,
      rateFree: record.rateFree,
    });
    const stats = record.stats;
    if (stats === undefined || stats === null) return;
    this.lastStats = stats;
    // Allocation failures: the counters whose name says so (the seed's
    // allocFail and sleepAllocFail, the modern pages.allocFail [4k, 2M]).
    const numbers = new Map<string, number>();
    flattenNumbers(stats, "", numbers);
    let failures = 0;
    for (const [name, value] of numbers) if (/allocfail/i.test(name)) failures += value;
    if (this.allocFailures !== undefined && failures > this.allocFailures) {
      this.mark("allocation failure", record.cycle, "pages the guest could not give", failures - this.allocFailures);
    }
    this.allocFailures = failures;
  }

  finish(): ReportModel {
    const lastCycle = this.points.length > 0 ? this.points[this.points.length - 1]!.cycle : -1;
    const unloading = this.ending.kind === "exit" || this.ending.kind === "exitHang";
    // A START after the load's is a reset, but for the unload's (after the last cycle).
    for (const cycle of this.starts) {
      if (!(unloading && cycle > lastCycle)) this.mark("reset", cycle, "START again");
    }
    let peak: { size: number; cycle: number } | undefined;
    for (const point of this.points) if (peak === undefined || point.size > peak.size) peak = { size: point.size, cycle: point.cycle };
    const order = (kind: string) => {
      const i = (MARK_KINDS as readonly string[]).indexOf(kind);
      return i === -1 ? MARK_KINDS.length : i;
    };
    return {
      driver: this.modern ? "modern" : "seed",
      records: this.records,
      points: this.points,
      marks: [...this.marks.values()].sort((a, b) => order(a.kind) - order(b.kind) || a.kind.localeCompare(b.kind) || a.cycle - b.cycle),
      commands: [...this.commands.values()],
      otherKinds: this.otherKinds,
      finalStats: this.lastStats === undefined ? [] : describeStats(this.lastStats),
      debugfs: this.debugfs,
      ending: this.ending,
      peak,
    };
  }
}
