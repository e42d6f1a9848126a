/**
 * ESX's memory policy (Waldspurger, "Memory Resource Management in VMware
 * ESX Server", OSDI 2002, §5 and §6.3; HOST.md "The ESX policy"): the
 * free-memory states and one round of min-funding revocation with the idle
 * memory tax.
 */
import { ESX_DEFAULTS, type EsxInput, type EsxParams, type EsxState, type PolicyDecision, type PolicyOutput, type PolicyVm } from "./types.js";

/** The free-memory thresholds of the four states, in pages. */
export interface EsxThresholds {
  readonly high: number;
  readonly soft: number;
  readonly hard: number;
  readonly low: number;
}

/** `thr_x = floor(H × xPercent / 100)` for each state x. */
export function esxThresholds(hostPages: number, params: Partial<EsxParams> = {}): EsxThresholds {
  const p = { ...ESX_DEFAULTS, ...params };
  const at = (percent: number) => Math.floor((hostPages * percent) / 100);
  return { high: at(p.highPercent), soft: at(p.softPercent), hard: at(p.hardPercent), low: at(p.lowPercent) };
}

/**
 * The state after a second's accounting with `free` pages free (HOST.md
 * "State"). Below a threshold the state falls at once to that threshold's
 * state (and never rises there); at or above the soft threshold it rises one
 * step at a time while each step's threshold is met: low → hard → soft →
 * high, all in the same second.
 */
export function esxNextState(state: EsxState, free: number, thresholds: EsxThresholds): EsxState {
  if (free < thresholds.low) return "low";
  if (free < thresholds.hard) return state === "low" ? "low" : "hard";
  if (free < thresholds.soft) return state === "high" ? "soft" : state;
  let next = state;
  for (;;) {
    if (next === "low" && free >= thresholds.hard) next = "hard";
    else if (next === "hard" && free >= thresholds.soft) next = "soft";
    else if (next === "soft" && free >= thresholds.high) next = "high";
    else return next;
  }
}

/**
 * Shares per active page: ρ = S / (P × (f + k × (1 − f))), k = 1 / (1 − τ),
 * in this order in doubles; `Infinity` for a VM that holds nothing.
 */
export function esxRho(shares: number, pages: number, active: number, k: number): number {
  if (pages === 0) return Infinity;
  return shares / (pages * (active + k * (1 - active)));
}

/** One round of the ESX policy: each VM's allocation and balloon targets. */
export function esxRound(input: EsxInput): PolicyOutput {
  return esxDecide(input).output;
}

/** {@link esxRound} with the reasons: which VM gave or got pages, and at what ρ. */
export function esxDecide(input: EsxInput): PolicyDecision {
  const p: EsxParams = { ...ESX_DEFAULTS, ...input.params };
  const { host, vms } = input;
  const k = 1 / (1 - p.idleTax);
  const thresholds = esxThresholds(host.pages, p);
  const need = thresholds.high - host.free;
  const allocation = vms.map((vm) => vm.backed);
  const rho = (i: number) => esxRho(vms[i]!.shares, allocation[i]!, vms[i]!.active, k);
  const moved = vms.map(() => ({ pages: 0, firstRho: NaN }));
  const reasons: string[] = [];

  if (need > 0) {
    // Min-funding revocation: the VM with the fewest shares per active page gives a chunk, again and again.
    reasons.push(`reclaim: free ${host.free} is below the high threshold ${thresholds.high} by ${need} pages (k = ${k})`);
    let left = need;
    const next = chooser(vms.length, (j) => allocation[j]! > vms[j]!.reservation, rho, 1);
    while (left > 0) {
      const i = next.pick();
      if (i < 0) break;
      const r = next.rho();
      const chunk = Math.min(p.chunkPages, allocation[i]! - vms[i]!.reservation, left);
      allocation[i]! -= chunk;
      left -= chunk;
      note(moved[i]!, chunk, r);
      next.changed();
    }
    if (left > 0) reasons.push(`every VM is at its reservation: ${left} pages could not be reclaimed`);
  } else {
    // The surplus goes to the VM with the most shares per active page, up to what it can use.
    const surplus = -need;
    reasons.push(`surplus: free ${host.free} is ${surplus} pages above the high threshold ${thresholds.high} (k = ${k})`);
    const cap = vms.map((vm) => Math.min(vm.limit, vm.pages, vm.backed + vm.balloon + vm.swapped));
    let left = surplus;
    const next = chooser(vms.length, (j) => allocation[j]! < cap[j]!, rho, -1);
    while (left > 0) {
      const i = next.pick();
      if (i < 0) break;
      const r = next.rho();
      const chunk = Math.min(p.chunkPages, cap[i]! - allocation[i]!, left);
      allocation[i]! += chunk;
      left -= chunk;
      note(moved[i]!, chunk, r);
      next.changed();
    }
  }

  const ctlMax = (vm: PolicyVm) => Math.floor((vm.pages * p.ctlMaxPercent) / 100);
  const out = vms.map((vm, i) => {
    const a = allocation[i]!;
    let balloonTarget = Math.min(Math.max(vm.balloon + vm.backed - a, 0), ctlMax(vm));
    if (host.state === "high") balloonTarget = Math.min(balloonTarget, vm.target);
    const m = moved[i]!;
    if (m.pages > 0) {
      const verb = need > 0 ? "gives" : "gets";
      reasons.push(`${vm.name} ${verb} ${m.pages} pages (ρ ${formatRho(m.firstRho)} at its first chunk, ${formatRho(rho(i))} after)`);
    }
    return { name: vm.name, allocationTarget: a, balloonTarget };
  });
  if (host.state === "high" && need > 0) reasons.push("state high: no balloon target above the previous one (no reclamation in high)");
  return { output: { state: host.state, vms: out }, reasons };
}

/** Picks VMs for chunk after chunk; `changed()` after the VM picked got or gave one (no other VM's ρ or eligibility changes). */
interface Chooser {
  /** The first VM (file order) among those eligible whose ρ is better than every earlier one's; -1 if none is eligible. */
  pick(): number;
  /** The ρ of the VM picked. */
  rho(): number;
  changed(): void;
}

/**
 * The VM {@link scan} would pick, from a binary heap of the eligible VMs
 * ordered by ρ (least first when `sign` is 1, greatest when -1: the heap
 * keeps `sign × ρ`, exact), ties by file order: the same VM, in O(log n) a
 * chunk. When some ρ is NaN (which no valid input gives) "better" is not an
 * order, and the chooser scans every VM as the paper's loop does.
 */
function chooser(count: number, eligible: (i: number) => boolean, rho: (i: number) => number, sign: 1 | -1): Chooser {
  const key = new Float64Array(count);
  const heap = new Int32Array(count);
  let size = 0;
  for (let i = 0; i < count; i++) {
    key[i] = sign * rho(i);
    if (Number.isNaN(key[i])) {
      let picked = -1;
      return {
        pick: () => (picked = scan(count, eligible, rho, sign)),
        rho: () => rho(picked),
        changed: () => {},
      };
    }
    if (eligible(i)) heap[size++] = i;
  }
  const down = (at: number) => {
    const i = heap[at]!;
    const ki = key[i]!;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      let c = heap[child]!;
      let kc = key[c]!;
      if (child + 1 < size) {
        const d = heap[child + 1]!;
        const kd = key[d]!;
        if (kd < kc || (kd === kc && d < c)) {
          child++;
          c = d;
          kc = kd;
        }
      }
      if (!(kc < ki || (kc === ki && c < i))) break;
      heap[at] = c;
      at = child;
    }
    heap[at] = i;
  };
  for (let at = (size >> 1) - 1; at >= 0; at--) down(at);
  return {
    pick: () => (size > 0 ? heap[0]! : -1),
    rho: () => sign * key[heap[0]!]!,
    // The VM picked is the one on top: its new ρ sinks it, or it leaves (ρ is NaN only if it was from the start).
    changed: () => {
      const i = heap[0]!;
      key[i] = sign * rho(i);
      if (!eligible(i)) heap[0] = heap[--size]!;
      down(0);
    },
  };
}

/** The first VM (file order) among those `eligible` whose ρ is better (less when `sign` is 1, greater when -1) than every earlier one's; -1 if none is eligible. */
function scan(count: number, eligible: (i: number) => boolean, rho: (i: number) => number, sign: 1 | -1): number {
  let best = -1;
  let bestRho = 0;
  for (let i = 0; i < count; i++) {
    if (!eligible(i)) continue;
    const r = rho(i);
    if (best < 0 || (sign > 0 ? r < bestRho : r > bestRho)) {
      best = i;
      bestRho = r;
    }
  }
  return best;
}

function note(moved: { pages: number; firstRho: number }, chunk: number, rho: number): void {
  if (moved.pages === 0) moved.firstRho = rho;
  moved.pages += chunk;
}

function formatRho(rho: number): string {
  return Number.isFinite(rho) ? rho.toPrecision(4) : "∞";
}
