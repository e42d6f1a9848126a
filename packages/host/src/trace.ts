/** The host's trace records (HOST.md "Trace"), keys in the spec's order. */
import type { EsxState, PolicyInput, PolicyOutput } from "./policy/types.js";

/** Each second, after accounting. */
export interface HostRecord {
  readonly t: "host";
  readonly second: number;
  /** F after swap-out. */
  readonly free: number;
  /** F before swap-out: what the state was decided on. */
  readonly freeBefore: number;
  readonly state: EsxState | null;
  /** ΣP. */
  readonly backed: number;
  /** ΣB. */
  readonly balloon: number;
  /** ΣX. */
  readonly swapped: number;
  readonly swapIn: number;
  readonly swapOut: number;
  /** The part of swapOut forced by F < 0. */
  readonly forced: number;
}

/** A VM, each second divisible by `every` and at every round. */
export interface VmRecord {
  readonly t: "vm";
  readonly second: number;
  readonly vm: string;
  /** What the monitor answered GET_TARGET this second: min(target, totalPages). */
  readonly target: number;
  readonly balloon: number;
  readonly touched: number;
  readonly backed: number;
  readonly swapped: number;
  readonly guestFree: number;
  readonly demand: number;
  readonly active: number;
  readonly shortfall: number;
  readonly swapIn: number;
  /** ESX's active-memory estimate this second; null outside ESX. */
  readonly estimate: number | null;
}

/** A policy round: its input and its output. */
export interface PolicyRecord {
  readonly t: "policy";
  readonly second: number;
  readonly input: PolicyInput;
  readonly output: PolicyOutput;
}

/** A VM's totals, at the end. */
export interface VmTotals {
  readonly vm: string;
  readonly swapIn: number;
  readonly swapOut: number;
  /** Σ shortfall over the seconds, in page-seconds. */
  readonly shortfallSeconds: number;
  readonly peakBalloon: number;
}

/** The last record. */
export interface EndRecord {
  readonly t: "end";
  readonly seconds: number;
  readonly vms: readonly VmTotals[];
}

/** One line of a host trace. */
export type HostTraceRecord = HostRecord | VmRecord | PolicyRecord | EndRecord;
