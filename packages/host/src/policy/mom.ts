/**
 * oVirt MoM's balloon policy: `doc/balloon.rules` (oVirt/mom) as MoM's policy
 * evaluator runs it, in our words. MoM thinks in KiB of guest memory; its
 * numbers are Python's: the statistics are integers, a `StatAvg` is a float,
 * and every rule's arithmetic after it is in doubles, as ours.
 */
import { MOM_DEFAULTS, type MomInput, type MomParams, type PolicyDecision, type PolicyOutput, type PolicyVm } from "./types.js";

const KIB_PER_PAGE = 4;

/** One round of MoM's rules: each VM's allocation and balloon targets. */
export function momRound(input: MomInput): PolicyOutput {
  return momDecide(input).output;
}

/** What MoM's rules ask of one guest this round, in KiB of guest memory (before the controller's truncation). */
interface Ask {
  readonly vm: PolicyVm;
  readonly kib: number;
}

/** MoM raises (as `Entity.StatAvg` does without a sample, or Python on a division by zero): the round asks nothing. */
class RulesRaised extends Error {}

/**
 * `Entity.StatAvg`: the mean of a statistic's samples, `float(total / count)`
 * of integers, which is Python 3's true division (the fixtures agree).
 */
function statAvg(samples: readonly number[], what: string): number {
  if (samples.length === 0) throw new RulesRaised(`statistic '${what}' not available`);
  let total = 0;
  for (const s of samples) total += s;
  return total / samples.length;
}

/** A guest as the rules see it (`guest.balloon_cur` and the rest), in KiB. */
interface Guest {
  readonly vm: PolicyVm;
  /** `balloon_cur`: the guest's memory now (latest sample), totalPages − B. */
  readonly cur: number;
  readonly max: number;
  readonly min: number;
  readonly avgCur: number;
  readonly avgUnused: number;
}

function guestOf(vm: PolicyVm): Guest {
  const curSamples = vm.balloonSamples.map((b) => (vm.pages - b) * KIB_PER_PAGE);
  const latest = curSamples[curSamples.length - 1];
  if (latest === undefined) throw new RulesRaised(`${vm.name}: no sample of balloon_cur (undefined symbol guest.balloon_cur)`);
  return {
    vm,
    cur: latest,
    max: vm.pages * KIB_PER_PAGE,
    min: vm.reservation * KIB_PER_PAGE,
    avgCur: statAvg(curSamples, "balloon_cur"),
    avgUnused: statAvg(
      vm.guestFreeSamples.map((f) => f * KIB_PER_PAGE),
      "mem_unused",
    ),
  };
}

/** Python's `max(a, b)`: the first of the greatest. */
function pyMax(a: number, b: number): number {
  return b > a ? b : a;
}

/** The rules' `change_big_enough`: the change is more than `min_balloon_change_percent` of the guest's memory now. */
function changeBigEnough(p: MomParams, g: Guest, value: number): boolean {
  return Math.abs(value - g.cur) > p.min_balloon_change_percent * g.cur;
}

/** The rules' `shrink_guest`: the guest keeps a free share scaled by the host's pressure, and loses at most `max_balloon_change_percent` a round. */
function shrinkGuest(p: MomParams, hostFreePercent: number, g: Guest): number | undefined {
  const guestFreePercent =
    hostFreePercent <= p.pressure_critical ? -0.05 + hostFreePercent : p.min_guest_free_percent * (hostFreePercent / p.pressure_threshold);
  const used = g.avgCur - g.avgUnused;
  const floor = pyMax(g.min, used + guestFreePercent * g.cur);
  let size = g.cur * (1 - p.max_balloon_change_percent);
  if (size < floor) size = floor;
  return size <= g.cur && changeBigEnough(p, g, size) ? size : undefined;
}

/** The rules' `grow_guest`: a ballooned guest gets back `max_balloon_change_percent` a round, or enough to keep its free share, up to its whole memory. */
function growGuest(p: MomParams, g: Guest): number | undefined {
  if (!(g.cur < g.max)) return undefined;
  const used = g.avgCur - g.avgUnused;
  const floor = pyMax(g.min, used + p.min_guest_free_percent * g.cur);
  let size = g.cur * (1 + p.max_balloon_change_percent);
  if (size < floor) size = floor;
  if (size > g.max) size = g.max;
  return changeBigEnough(p, g, size) ? size : undefined;
}

/** {@link momRound} with the reasons: which of the rules ran, and what each guest was asked. */
export function momDecide(input: MomInput): PolicyDecision {
  const p: MomParams = { ...MOM_DEFAULTS, ...input.params };
  const reasons: string[] = [];
  let asks: Ask[] = [];
  try {
    // VMs without a balloon driver are not among MoM's guests.
    const guests = input.vms.filter((vm) => vm.driver !== "none").map(guestOf);
    const available = input.host.pages * KIB_PER_PAGE;
    const avgFree = statAvg(
      input.host.freeSamples.map((f) => f * KIB_PER_PAGE),
      "mem_free",
    );
    if (available === 0) throw new RulesRaised("division by zero (Host.mem_available is 0)");
    const free = avgFree / available;
    const shrink = free < p.pressure_threshold;
    if (shrink) {
      const critical = free <= p.pressure_critical;
      reasons.push(
        `host_free_percent ${free.toFixed(4)} < pressure_threshold ${p.pressure_threshold}: shrink_guest` +
          (critical ? ` (critical: ≤ pressure_critical ${p.pressure_critical})` : ""),
      );
    } else {
      reasons.push(`host_free_percent ${free.toFixed(4)} ≥ pressure_threshold ${p.pressure_threshold}: grow_guest`);
    }
    for (const g of guests) {
      const kib = shrink ? shrinkGuest(p, free, g) : growGuest(p, g);
      if (kib !== undefined) asks.push({ vm: g.vm, kib });
      else reasons.push(`${g.vm.name}: no balloon_target (${shrink ? "no shrink" : g.cur < g.max ? "no grow" : "not ballooned"} big enough to be worth it)`);
    }
  } catch (error) {
    if (!(error instanceof RulesRaised)) throw error;
    reasons.push(`the rules raise (${error.message}): the round asks nothing`);
    asks = [];
  }

  const asked = new Map(asks.map((a) => [a.vm, a.kib]));
  const vms = input.vms.map((vm) => {
    const kib = asked.get(vm);
    let balloonTarget = vm.target;
    if (kib !== undefined) {
      // The balloon controller truncates to whole KiB; the host rounds down to pages.
      const pages = Math.floor(Math.trunc(kib) / KIB_PER_PAGE);
      balloonTarget = vm.pages - pages;
      reasons.push(`${vm.name}: balloon_target ${Math.trunc(kib)} KiB → balloon ${balloonTarget} pages`);
    }
    return { name: vm.name, allocationTarget: vm.pages - balloonTarget, balloonTarget };
  });
  return { output: { state: null, vms }, reasons };
}
