/**
 * Proxmox VE's automatic ballooning: `PVE::AutoBalloon::compute_alg1` as
 * `pvestatd`'s `auto_ballooning` calls it (proxmox/pve-manager), in our
 * words. Proxmox thinks in bytes of guest memory; Perl's numbers are doubles
 * and its `int()` truncates toward zero, as `Math.trunc`.
 */
import { PROXMOX_DEFAULTS, type PolicyDecision, type PolicyOutput, type PolicyVm, type ProxmoxInput, type ProxmoxParams } from "./types.js";

const PAGE_BYTES = 4096;
/** The most one VM's balloon moves in a round: pvestatd's `$maxchange`, 100 MiB. */
const MAX_CHANGE = 100 * 1024 * 1024;
/** |goal| at or under 10 MiB: the change asked is too small, nothing is done. */
const DEADBAND = 10 * 1024 * 1024;
/** The shares of a VM that has none set (`$d->{shares} || 1000`). */
const DEFAULT_SHARES = 1000;

/** A VM as `vmstatus` gives it to the algorithm, in bytes. */
interface Status {
  readonly vm: PolicyVm;
  readonly maxmem: number;
  /** The guest's memory now. */
  readonly balloon: number;
  readonly balloonMin: number;
  readonly freemem: number;
  readonly shares: number;
}

/** One round of Proxmox's algorithm: each VM's allocation and balloon targets. */
export function proxmoxRound(input: ProxmoxInput): PolicyOutput {
  return proxmoxDecide(input).output;
}

/**
 * compute_alg1's inner `change_func`: spread `bytes` over the VMs of `list`
 * in proportion to their shares above their minimum, each moving at most
 * `MAX_CHANGE` from where it is, in passes until nothing moves or nothing is
 * left. Writes the new balloons to `result`; returns what is left.
 */
function spread(result: Map<Status, number>, list: readonly Status[], bytes: number): number {
  let rest = bytes;
  let repeat = true;
  let progress = 1;
  const done = new Set<Status>();
  while (rest !== 0 && repeat && progress !== 0) {
    repeat = false;
    progress = 0;
    let sharesTotal = 0;
    let allocOld = 0;
    for (const d of list) {
      if (done.has(d)) continue;
      allocOld += (result.get(d) ?? d.balloon) - d.balloonMin;
      sharesTotal += d.shares || DEFAULT_SHARES;
    }
    let changes = 0;
    const allocNew = allocOld + rest;
    for (const d of list) {
      if (done.has(d)) continue;
      const shares = d.shares || DEFAULT_SHARES;
      let desired = d.balloonMin + Math.trunc((allocNew / sharesTotal) * shares);
      if (desired > d.maxmem) {
        desired = d.maxmem;
        repeat = true;
      } else if (desired < d.balloonMin) {
        desired = d.balloonMin;
        repeat = true;
      }
      let balloon: number;
      if (bytes > 0 && desired - d.balloon > 0) {
        // Grow, from where the VM is, by at most MAX_CHANGE.
        balloon = Math.min(d.balloon + MAX_CHANGE, desired);
      } else if (desired - d.balloon < 0) {
        // Shrink, likewise.
        balloon = Math.max(d.balloon - MAX_CHANGE, desired);
      } else {
        done.add(d);
        continue;
      }
      const diff = balloon - d.balloon;
      if (diff !== 0) {
        const old = result.get(d) ?? d.balloon;
        result.set(d, balloon);
        const change = balloon - old;
        if (change !== 0) {
          changes += change;
          progress += Math.abs(diff);
          repeat = true;
        }
      }
    }
    rest -= changes;
  }
  return rest;
}

/** {@link proxmoxRound} with the reasons: which branch of the algorithm ran, and what each VM was sent. */
export function proxmoxDecide(input: ProxmoxInput): PolicyDecision {
  const p: ProxmoxParams = { ...PROXMOX_DEFAULTS, ...input.params };
  const reasons: string[] = [];
  const memtotal = input.host.pages * PAGE_BYTES;
  const memused = (input.host.pages - input.host.free) * PAGE_BYTES;
  const target = Math.trunc(p.targetPercent);
  const goal = Math.trunc((memtotal * target) / 100 - memused);

  const all: Status[] = [];
  const pressure: Status[] = [];
  const roomy: Status[] = [];
  for (const vm of input.vms) {
    const d: Status = {
      vm,
      maxmem: vm.pages * PAGE_BYTES,
      balloon: vm.driver === "none" ? 0 : (vm.pages - vm.balloon) * PAGE_BYTES,
      balloonMin: vm.reservation * PAGE_BYTES,
      freemem: vm.guestFree * PAGE_BYTES,
      shares: vm.shares,
    };
    // Left out, as compute_alg1 leaves them: no balloon driver (or a guest with nothing left), no minimum set, no shares.
    if (d.balloon === 0 || d.balloonMin === 0 || d.shares === 0) continue;
    all.push(d);
    if (d.freemem !== 0 && d.freemem > d.balloonMin * 0.25 && d.balloon >= d.balloonMin) roomy.push(d);
    else pressure.push(d);
  }
  reasons.push(
    `goal ${goal} bytes (${mib(goal)}): ${target}% of ${mib(memtotal)} less ${mib(memused)} used; ` +
      `${all.length} of ${input.vms.length} VMs take part (${pressure.length} under memory pressure, ${roomy.length} with enough free memory)`,
  );

  const result = new Map<Status, number>();
  if (goal > DEADBAND) {
    // Give memory back, to the VMs under memory pressure first.
    let rest = spread(result, pressure, goal);
    reasons.push(`grow: the VMs under memory pressure first, ${rest} bytes left`);
    if (rest >= goal) {
      rest = spread(result, all, rest);
      reasons.push(`no progress: every VM, ${rest} bytes left`);
    }
  } else if (goal < -DEADBAND) {
    // Take memory, from the VMs with enough free memory first.
    let rest = spread(result, roomy, goal);
    reasons.push(`shrink: the VMs with enough free memory first, ${rest} bytes left`);
    if (rest <= goal) {
      rest = spread(result, all, rest);
      reasons.push(`no progress: every VM, ${rest} bytes left`);
    }
  } else {
    reasons.push("the goal is within ±10 MiB: nothing to do");
  }

  const sent = new Map<PolicyVm, number>();
  for (const [d, bytes] of result) {
    // pvestatd sends only what differs from the guest's memory now.
    if (Math.trunc(bytes) !== Math.trunc(d.balloon)) sent.set(d.vm, Math.trunc(bytes));
  }
  const vms = input.vms.map((vm) => {
    const bytes = sent.get(vm);
    let balloonTarget = vm.target;
    if (bytes !== undefined) {
      balloonTarget = vm.pages - Math.floor(bytes / PAGE_BYTES);
      reasons.push(`${vm.name}: balloon ${bytes} bytes (${mib(bytes)}) → balloon ${balloonTarget} pages`);
    }
    return { name: vm.name, allocationTarget: vm.pages - balloonTarget, balloonTarget };
  });
  return { output: { state: null, vms }, reasons };
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
