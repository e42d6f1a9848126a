/**
 * What the host's report shows, folded from a host trace's records as they
 * are read (HOST.md "Trace"): the host's second by second, each VM's records,
 * the policy's rounds, and what follows from them: ESX's four thresholds
 * (from each round's host and parameters), the state's runs, the VMs' summed
 * shortfall. As for a driver's report, everything comes from the trace.
 */
import {
  ESX_STATES,
  esxThresholds,
  type EndRecord,
  type EsxState,
  type EsxThresholds,
  type HostRecord,
  type HostTraceRecord,
  type PolicyRecord,
  type VmRecord,
} from "@vmballoon/host";

/** The host after a second's accounting (its `host` record, without the kind). */
export type HostPoint = Omit<HostRecord, "t">;

/** A VM at one of its records' seconds. */
export interface VmPoint {
  readonly second: number;
  readonly target: number;
  readonly balloon: number;
  readonly backed: number;
  readonly swapped: number;
  readonly demand: number;
  readonly active: number;
  readonly shortfall: number;
  readonly swapIn: number;
  /** ESX's active-memory estimate, a fraction of the VM's pages; null outside ESX. */
  readonly estimate: number | null;
}

export interface VmSeries {
  readonly name: string;
  /** totalPages, from the rounds' input (undefined before any round). */
  pages: number | undefined;
  driver: string | undefined;
  readonly points: VmPoint[];
  /** Its line of the `end` record. */
  totals: EndRecord["vms"][number] | undefined;
}

/** The working set as ESX believes it: the estimate times the VM's pages (undefined outside ESX, or before the VM's pages are known). */
export function estimatedPages(vm: VmSeries, point: VmPoint): number | undefined {
  return point.estimate === null || vm.pages === undefined ? undefined : Math.round(point.estimate * vm.pages);
}

/** A target a round changed: the VM's previous balloon target and its new one. */
export interface TargetChange {
  readonly vm: string;
  readonly from: number;
  readonly to: number;
}

export interface Round {
  readonly second: number;
  readonly state: EsxState | null;
  readonly changes: readonly TargetChange[];
}

/** What a round did to the balloon targets: the rows of the rounds chart, in order. */
export const ROUND_KINDS = ["targets raised", "targets lowered", "raised and lowered", "no change"] as const;
export type RoundKind = (typeof ROUND_KINDS)[number];

export function roundKind(round: Round): RoundKind {
  const up = round.changes.some((c) => c.to > c.from);
  const down = round.changes.some((c) => c.to < c.from);
  return up && down ? "raised and lowered" : up ? "targets raised" : down ? "targets lowered" : "no change";
}

/** ESX's thresholds from one second to another (they move when an event changes the percents). */
export interface ThresholdSpan extends EsxThresholds {
  readonly from: number;
  to: number;
}

/** A run of seconds in one ESX state: `from` to `to` (the next run's first second, or the last second). */
export interface StateSpan {
  readonly state: EsxState;
  readonly from: number;
  to: number;
}

export interface HostReportModel {
  readonly records: number;
  /** `esx`, `mom` or `proxmox`: the first round's. */
  readonly policy: string | undefined;
  /** The first round's parameters that differ from the defaults. */
  readonly params: Readonly<Record<string, unknown>>;
  /** H and O, from the first round. */
  readonly hostPages: number | undefined;
  readonly overheadPages: number;
  readonly host: readonly HostPoint[];
  readonly vms: readonly VmSeries[];
  readonly rounds: readonly Round[];
  /** ESX only; empty under MoM and Proxmox, which have no states. */
  readonly thresholds: readonly ThresholdSpan[];
  readonly states: readonly StateSpan[];
  /** Seconds spent in each ESX state. */
  readonly stateSeconds: Readonly<Record<EsxState, number>>;
  /** The least free memory and its first second. */
  readonly leastFree: { readonly free: number; readonly second: number } | undefined;
  readonly swapIn: number;
  readonly swapOut: number;
  readonly forced: number;
  /** The VMs' shortfall summed at each second that has `vm` records. */
  readonly shortfall: readonly { readonly second: number; readonly value: number }[];
  readonly end: EndRecord | undefined;
}

/** Folds host trace records into a {@link HostReportModel}: {@link add} each, then {@link finish}. */
export class HostReportBuilder {
  private records = 0;
  private policy: string | undefined;
  private params: Readonly<Record<string, unknown>> = {};
  private hostPages: number | undefined;
  private overheadPages = 0;
  private readonly host: HostPoint[] = [];
  private readonly vms = new Map<string, VmSeries>();
  private readonly rounds: Round[] = [];
  private readonly thresholds: ThresholdSpan[] = [];
  private readonly states: StateSpan[] = [];
  private readonly stateSeconds: Record<EsxState, number> = { high: 0, soft: 0, hard: 0, low: 0 };
  private leastFree: { free: number; second: number } | undefined;
  private swapIn = 0;
  private swapOut = 0;
  private forced = 0;
  private readonly shortfall: { second: number; value: number }[] = [];
  private end: EndRecord | undefined;

  add(record: HostTraceRecord): void {
    this.records++;
    switch (record.t) {
      case "host":
        this.second(record);
        break;
      case "vm":
        this.vm(record);
        break;
      case "policy":
        this.round(record);
        break;
      case "end":
        this.end = record;
        for (const totals of record.vms) {
          const vm = this.vms.get(totals.vm);
          if (vm !== undefined) vm.totals = totals;
        }
        break;
    }
  }

  private second(record: HostRecord): void {
    const { t: _, ...point } = record;
    this.host.push(point);
    this.swapIn += record.swapIn;
    this.swapOut += record.swapOut;
    this.forced += record.forced;
    if (this.leastFree === undefined || record.free < this.leastFree.free) this.leastFree = { free: record.free, second: record.second };
    const span = this.thresholds[this.thresholds.length - 1];
    if (span !== undefined) span.to = record.second;
    if (record.state === null) return;
    this.stateSeconds[record.state]++;
    const last = this.states[this.states.length - 1];
    if (last !== undefined) last.to = record.second;
    if (last?.state !== record.state) this.states.push({ state: record.state, from: record.second, to: record.second });
  }

  private vmOf(name: string): VmSeries {
    let vm = this.vms.get(name);
    if (vm === undefined) {
      vm = { name, pages: undefined, driver: undefined, points: [], totals: undefined };
      this.vms.set(name, vm);
    }
    return vm;
  }

  private vm(record: VmRecord): void {
    const vm = this.vmOf(record.vm);
    const { second, target, balloon, backed, swapped, demand, active, shortfall, swapIn, estimate } = record;
    vm.points.push({ second, target, balloon, backed, swapped, demand, active, shortfall, swapIn, estimate });
    const sum = this.shortfall[this.shortfall.length - 1];
    if (sum?.second === second) sum.value += shortfall;
    else this.shortfall.push({ second, value: shortfall });
  }

  private round(record: PolicyRecord): void {
    const { input, output } = record;
    if (this.policy === undefined) {
      this.policy = input.policy;
      this.params = input.params ?? {};
      this.hostPages = input.host.pages;
      this.overheadPages = input.host.overheadPages ?? 0;
    }
    const changes: TargetChange[] = [];
    input.vms.forEach((vmIn, i) => {
      const vm = this.vmOf(vmIn.name);
      vm.pages ??= vmIn.pages;
      vm.driver ??= vmIn.driver;
      const to = output.vms[i]!.balloonTarget;
      if (to !== vmIn.target) changes.push({ vm: vmIn.name, from: vmIn.target, to });
    });
    this.rounds.push({ second: record.second, state: output.state, changes });
    if (input.policy !== "esx") return;
    const thr = esxThresholds(input.host.pages, input.params);
    const last = this.thresholds[this.thresholds.length - 1];
    if (last !== undefined && ESX_STATES.every((s) => last[s] === thr[s])) return;
    if (last !== undefined) last.to = record.second;
    // The first round's thresholds hold from the first second (the state was decided on them before the round).
    this.thresholds.push({ ...thr, from: last === undefined ? (this.host[0]?.second ?? record.second) : record.second, to: record.second });
  }

  finish(): HostReportModel {
    return {
      records: this.records,
      policy: this.policy,
      params: this.params,
      hostPages: this.hostPages,
      overheadPages: this.overheadPages,
      host: this.host,
      vms: [...this.vms.values()],
      rounds: this.rounds,
      thresholds: this.thresholds,
      states: this.states,
      stateSeconds: this.stateSeconds,
      leastFree: this.leastFree,
      swapIn: this.swapIn,
      swapOut: this.swapOut,
      forced: this.forced,
      shortfall: this.shortfall,
      end: this.end,
    };
  }
}
