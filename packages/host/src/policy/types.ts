/**
 * One policy round's input and output, as the JSON of HOST.md "Policy rounds:
 * input and output". All counts are in pages of 4 KiB.
 */

/** The host's memory policies. */
export type PolicyName = "esx" | "mom" | "proxmox";

/** The policy names, in the order the docs give them. */
export const POLICY_NAMES: readonly PolicyName[] = ["esx", "mom", "proxmox"];

/** ESX's free-memory states (HOST.md "State"), from the most free memory to the least. */
export type EsxState = "high" | "soft" | "hard" | "low";

/** The ESX states in order, `high` first. */
export const ESX_STATES: readonly EsxState[] = ["high", "soft", "hard", "low"];

/** What a VM runs as its balloon driver; `none` can only be swapped by the host. */
export type DriverName = "seed" | "modern" | "none";

/** The host as one round sees it. */
export interface PolicyHost {
  /** H: the host's memory. */
  readonly pages: number;
  /** O: the host's own overhead. */
  readonly overheadPages: number;
  /** F = H − O − ΣP; negative when the host is paging synchronously. */
  readonly free: number;
  /** The ESX state the host is in (`null` under the other policies). */
  readonly state: EsxState | null;
  /** MoM's history of F, oldest first. */
  readonly freeSamples: readonly number[];
}

/** A VM as one round sees it. */
export interface PolicyVm {
  readonly name: string;
  /** totalPages: the guest's memory. */
  readonly pages: number;
  /** The least host memory the policy gives the VM. */
  readonly reservation: number;
  /** The most host memory the policy gives the VM. */
  readonly limit: number;
  readonly shares: number;
  readonly driver: DriverName;
  /** B: frames locked at the monitor. */
  readonly balloon: number;
  /** The previous balloonTarget. */
  readonly target: number;
  /** P: host pages backing the VM. */
  readonly backed: number;
  /** X: frames the host has swapped out. */
  readonly swapped: number;
  /** ESX's active-memory estimate f, from 0 to 1. */
  readonly active: number;
  /** The guest's free frames. */
  readonly guestFree: number;
  /** MoM's history of B, oldest first. */
  readonly balloonSamples: readonly number[];
  /** MoM's history of the guest's free frames, oldest first. */
  readonly guestFreeSamples: readonly number[];
}

/** ESX's parameters (HOST.md "The ESX policy"). */
export interface EsxParams {
  /** τ, the idle memory tax, 0 ≤ τ < 1. */
  readonly idleTax: number;
  /** Seconds between active-memory samples. */
  readonly samplePeriod: number;
  /** Pages drawn at each sample. */
  readonly samplePages: number;
  readonly fastGain: number;
  readonly slowGain: number;
  /** Seconds between rounds (the balance period). */
  readonly interval: number;
  /** The most of a guest's memory its balloon may take, in percent. */
  readonly ctlMaxPercent: number;
  readonly highPercent: number;
  readonly softPercent: number;
  readonly hardPercent: number;
  readonly lowPercent: number;
  /** Pages moved at a time by the min-funding loop. */
  readonly chunkPages: number;
}

/** MoM's parameters: the host's periods and the `defvar`s of `doc/balloon.rules` (their own names). */
export interface MomParams {
  /** Seconds between rounds. */
  readonly interval: number;
  /** Seconds between samples. */
  readonly sampleInterval: number;
  /** Samples kept. */
  readonly historyLength: number;
  /** Host free memory, as a fraction, below which the host is under pressure. */
  readonly pressure_threshold: number;
  /** Host free memory, as a fraction, at or below which the pressure is critical. */
  readonly pressure_critical: number;
  /** The fraction of its memory an unconstrained guest keeps free. */
  readonly min_guest_free_percent: number;
  /** The most a guest's memory changes in one round, as a fraction of it. */
  readonly max_balloon_change_percent: number;
  /** The least change worth making, as a fraction of the guest's memory. */
  readonly min_balloon_change_percent: number;
}

/** Proxmox's parameters. */
export interface ProxmoxParams {
  /** Seconds between rounds (pvestatd's update time). */
  readonly interval: number;
  /** The node's `ballooning-target`: the percent of host memory to keep in use. */
  readonly targetPercent: number;
}

export const ESX_DEFAULTS: EsxParams = Object.freeze({
  idleTax: 0.75,
  samplePeriod: 60,
  samplePages: 100,
  fastGain: 0.5,
  slowGain: 0.125,
  interval: 15,
  ctlMaxPercent: 65,
  highPercent: 6,
  softPercent: 4,
  hardPercent: 2,
  lowPercent: 1,
  chunkPages: 256,
});

export const MOM_DEFAULTS: MomParams = Object.freeze({
  interval: 10,
  sampleInterval: 5,
  historyLength: 10,
  pressure_threshold: 0.2,
  pressure_critical: 0.05,
  min_guest_free_percent: 0.2,
  max_balloon_change_percent: 0.05,
  min_balloon_change_percent: 0.0025,
});

export const PROXMOX_DEFAULTS: ProxmoxParams = Object.freeze({
  interval: 10,
  targetPercent: 80,
});

/** Each policy's parameters. */
export interface PolicyParamsOf {
  esx: EsxParams;
  mom: MomParams;
  proxmox: ProxmoxParams;
}

/** Each policy's defaults. */
export const POLICY_DEFAULTS: { readonly [P in PolicyName]: PolicyParamsOf[P] } = Object.freeze({
  esx: ESX_DEFAULTS,
  mom: MOM_DEFAULTS,
  proxmox: PROXMOX_DEFAULTS,
});

interface RoundInput<P extends PolicyName> {
  readonly policy: P;
  /** Only what differs from the policy's defaults. */
  readonly params: Partial<PolicyParamsOf[P]>;
  readonly host: PolicyHost;
  readonly vms: readonly PolicyVm[];
}

export type EsxInput = RoundInput<"esx">;
export type MomInput = RoundInput<"mom">;
export type ProxmoxInput = RoundInput<"proxmox">;

/** One round's input. */
export type PolicyInput = EsxInput | MomInput | ProxmoxInput;

/** What a round asks of one VM. */
export interface PolicyVmOutput {
  readonly name: string;
  /** Host pages the policy means the VM to have. */
  readonly allocationTarget: number;
  /** The monitor's new target for the VM's balloon. */
  readonly balloonTarget: number;
}

/** One round's output: every VM, in the input's order. */
export interface PolicyOutput {
  /** The ESX state (unchanged by a round); `null` under the other policies. */
  readonly state: EsxState | null;
  readonly vms: readonly PolicyVmOutput[];
}

/** A round's output with the reasons for it, in words, for a person (not part of the JSON output). */
export interface PolicyDecision {
  readonly output: PolicyOutput;
  readonly reasons: readonly string[];
}
