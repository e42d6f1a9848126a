/** A VM inside the host: its driver, its touched frames (a bit set), its workload's series, ESX's estimate, its totals. */
import type { HostVmSpec } from "./scenario.js";
import { Series } from "./series.js";
import { createVmDriver, type VmDriver } from "./vm-driver.js";

/** A VM's scenario event (SIMULATION(-MODERN).md): what the host did to it before that cycle. */
export interface VmScenarioEvent {
  readonly cycle: number;
  readonly setTarget?: number;
  readonly guestUse?: number;
  readonly guestRelease?: number;
}

/** The scenario that gives a VM's driver trace through `vmballoon simulate` (`--driver` the VM's). */
export interface VmScenario {
  readonly cycles: number;
  readonly unload: boolean;
  readonly guest: object;
  readonly events: readonly VmScenarioEvent[];
}

/** A VM's state in the host. */
export class Vm {
  readonly driver: VmDriver;
  readonly totalPages: number;
  /** Frames outside the free stack (the guest kernel's): always touched. */
  readonly kernelFrames: number;
  /** One bit per frame of the free stack's range, from firstPfn. */
  readonly touchedBits: Uint32Array;
  readonly firstPfn: number;
  touchedFree = 0;
  demand: Series;
  active: Series | undefined;
  /** T, B, X, P. */
  touched = 0;
  balloon = 0;
  swapped = 0;
  backed = 0;
  /** This second's D, A, shortfall, swap-in. */
  demandNow = 0;
  activeNow = 0;
  shortfall = 0;
  swapInNow = 0;
  /** The last round's targets; before the first round, no allocation target (nothing is swapped for excess). */
  allocationTarget = Infinity;
  balloonTarget = 0;
  /** The target the monitor has now. */
  monitorTarget = 0;
  /** ESX's estimate: both averages start at 1 (a new VM counts as all active). */
  fast = 1;
  slow = 1;
  rng: number;
  balloonSamples: number[] = [];
  guestFreeSamples: number[] = [];
  swapInTotal = 0;
  swapOutTotal = 0;
  shortfallSeconds = 0;
  peakBalloon = 0;
  readonly events: VmScenarioEvent[] | undefined;

  constructor(
    readonly spec: HostVmSpec,
    index: number,
    seed: number,
    cycles: number,
    keepEvents: boolean,
    onLine: ((line: string) => void) | undefined,
  ) {
    const { guest } = spec;
    this.totalPages = guest.totalPages;
    this.kernelFrames = guest.totalPages - guest.freePages;
    this.firstPfn = guest.firstPfn;
    this.touchedBits = new Uint32Array(Math.ceil(guest.freePages / 32));
    this.demand = new Series(spec.demand);
    this.active = spec.active === undefined ? undefined : new Series(spec.active);
    this.rng = ((seed + index) >>> 0) | 0;
    this.events = keepEvents ? [] : undefined;
    this.driver = createVmDriver({
      driver: spec.driver,
      guest,
      cycles,
      onUse: (pfn) => this.touch(pfn),
      onLock: (pfn, frames) => this.untouch(pfn, frames),
      ...(onLine === undefined ? {} : { onLine }),
    });
  }

  get estimate(): number {
    return this.fast > this.slow ? this.fast : this.slow;
  }

  private touch(pfn: number): void {
    const index = pfn - this.firstPfn;
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    const bits = this.touchedBits[word]!;
    if ((bits & bit) === 0) {
      this.touchedBits[word] = bits | bit;
      this.touchedFree++;
    }
  }

  private untouch(pfn: number, frames: number): void {
    const bits = this.touchedBits;
    const first = pfn - this.firstPfn;
    if (frames === 1 || (first & 31) !== 0) {
      for (let index = first; index < first + frames; index++) {
        const word = index >>> 5;
        const bit = 1 << (index & 31);
        if ((bits[word]! & bit) !== 0) {
          bits[word] = bits[word]! & ~bit;
          this.touchedFree--;
        }
      }
      return;
    }
    // A 2 MB lock, word-aligned: whole words, counted.
    for (let word = first >>> 5, end = (first + frames) >>> 5; word < end; word++) {
      const w = bits[word]!;
      if (w !== 0) {
        this.touchedFree -= popcount(w);
        bits[word] = 0;
      }
    }
  }

  /** The scenario event of `cycle`, created on first use (events are kept only for `--vm-traces`). */
  event(cycle: number): { -readonly [K in keyof VmScenarioEvent]: VmScenarioEvent[K] } {
    const events = this.events!;
    const last = events[events.length - 1];
    if (last !== undefined && last.cycle === cycle) return last;
    const event = { cycle };
    events.push(event);
    return event;
  }
}

function popcount(w: number): number {
  w = w - ((w >>> 1) & 0x55555555);
  w = (w & 0x33333333) + ((w >>> 2) & 0x33333333);
  return (Math.imul((w + (w >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/**
 * Host swapping (HOST.md, "Swapping"): up to `limit` pages from the VMs in
 * descending order of `key` (ties in file order; `order` is reordered in
 * place), each giving `min(key, T − X, what is left)` while its key is
 * positive. Forced swap-out keys on P (= T − X), swap-out of excess on
 * P − allocationTarget. Returns the pages swapped out.
 */
export function swapOut(vms: readonly Vm[], order: number[], limit: number, key: (vm: Vm) => number): number {
  order.sort((a, b) => key(vms[b]!) - key(vms[a]!) || a - b);
  let out = 0;
  for (const i of order) {
    if (out >= limit) break;
    const vm = vms[i]!;
    const k = key(vm);
    if (k <= 0) break;
    const give = Math.min(k, vm.touched - vm.swapped, limit - out);
    vm.swapped += give;
    vm.swapOutTotal += give;
    out += give;
  }
  return out;
}
