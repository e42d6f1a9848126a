/**
 * The host of HOST.md: many VMs, each a real driver against its reference
 * guest and monitor (`vm-driver.ts`), under one memory policy. One second
 * is: events; each VM's workload and cycle; accounting (touched, backed,
 * swapped, free, the ESX state, swap-in and swap-out); ESX's active-memory
 * samples; a policy round. Built for long runs of many VMs: a VM's touched
 * frames are a bit set, the per-second path allocates nothing, and a trace
 * record is built only when it is written.
 */
import { esxNextState, esxThresholds, type EsxThresholds } from "./policy/esx.js";
import { policyRound } from "./policy/round.js";
import { POLICY_DEFAULTS, type EsxState, type PolicyInput, type PolicyName, type PolicyVm } from "./policy/types.js";
import { mulberry32Draw, mulberry32Next } from "./mulberry32.js";
import type { HostEvent, HostScenario } from "./scenario.js";
import { Series } from "./series.js";
import type { EndRecord, HostRecord, PolicyRecord, VmRecord, VmTotals } from "./trace.js";
import { Vm, swapOut, type VmScenario } from "./vm.js";
import { driver } from "@vmballoon/core/sim";

/** The host's figures after a second, for a caller that watches (one object, rewritten each second). */
export interface HostSecond {
  second: number;
  free: number;
  state: EsxState | null;
  backed: number;
  balloon: number;
  swapped: number;
  swapIn: number;
  swapOut: number;
  shortfall: number;
}

export interface HostRunOptions {
  /** The host trace (JSON Lines), line by line; absent: no record is built. */
  readonly onLine?: (line: string) => void;
  /** `vm` records every this many seconds (and at every round); default 1. */
  readonly every?: number;
  /** Whether each VM's own driver trace and scenario are kept (`--vm-traces`): the VM's trace lines go to `onVmLine`. */
  readonly onVmLine?: (vm: number, line: string) => void;
  /** Keep each VM's scenario events (for {@link HostSimulation.vmScenario}); implied by `onVmLine`. */
  readonly vmScenarios?: boolean;
  /** Called after each second's accounting. */
  readonly onSecond?: (second: HostSecond) => void;
}

/** The parameters the host itself uses, whatever the policy. */
interface HostParams {
  interval: number;
  samplePeriod: number;
  samplePages: number;
  fastGain: number;
  slowGain: number;
  sampleInterval: number;
  historyLength: number;
}

/**
 * A host scenario being run. {@link runHost} drives it; the class is exported
 * for callers that step it or look inside (tests, the CLI's progress).
 */
export class HostSimulation {
  private readonly vms: readonly Vm[];
  readonly policy: PolicyName;
  /** H and O, in pages. */
  readonly hostPages: number;
  readonly overheadPages: number;
  private readonly swapBudget: number;
  private params: Record<string, number>;
  private hostParams!: HostParams;
  private thresholds!: EsxThresholds;
  private state: EsxState | null;
  private free = 0;
  private readonly freeSamples: number[] = [];
  private readonly events: readonly HostEvent[];
  private nextEvent = 0;
  private readonly order: number[];
  private readonly every: number;
  private readonly emit: ((line: string) => void) | undefined;
  private readonly onSecond: ((second: HostSecond) => void) | undefined;
  private readonly figures: HostSecond = { second: 0, free: 0, state: null, backed: 0, balloon: 0, swapped: 0, swapIn: 0, swapOut: 0, shortfall: 0 };
  private second = -1;

  constructor(
    readonly scenario: HostScenario,
    options: HostRunOptions = {},
  ) {
    const { host, policy } = scenario;
    this.policy = policy.name;
    this.hostPages = host.memMiB * 256;
    this.overheadPages = host.overheadMiB * 256;
    this.swapBudget = Math.floor(host.swapMiBps * 256);
    this.params = { ...policy.params };
    this.updateParams();
    this.state = this.policy === "esx" ? "high" : null;
    const keepEvents = options.vmScenarios === true || options.onVmLine !== undefined;
    const { onVmLine } = options;
    this.vms = scenario.vms.map(
      (spec, i) => new Vm(spec, i, scenario.seed, scenario.seconds, keepEvents, onVmLine === undefined ? undefined : (line) => onVmLine(i, line)),
    );
    this.order = this.vms.map((_, i) => i);
    this.events = [...scenario.events].sort((a, b) => a.second - b.second);
    this.every = options.every ?? 1;
    this.emit = options.onLine;
    this.onSecond = options.onSecond;
  }

  private updateParams(): void {
    const p = this.params;
    const esx = POLICY_DEFAULTS.esx;
    const mom = POLICY_DEFAULTS.mom;
    this.hostParams = {
      interval: p.interval ?? POLICY_DEFAULTS[this.policy].interval,
      samplePeriod: p.samplePeriod ?? esx.samplePeriod,
      samplePages: p.samplePages ?? esx.samplePages,
      fastGain: p.fastGain ?? esx.fastGain,
      slowGain: p.slowGain ?? esx.slowGain,
      sampleInterval: (this.policy === "mom" ? p.sampleInterval : undefined) ?? mom.sampleInterval,
      historyLength: (this.policy === "mom" ? p.historyLength : undefined) ?? mom.historyLength,
    };
    this.thresholds = esxThresholds(this.hostPages, this.policy === "esx" ? p : {});
  }

  /** Runs every second, then the unload (if asked for) and the end record. */
  run(): readonly VmTotals[] {
    for (let t = 0; t <= this.scenario.seconds; t++) this.step();
    return this.finish();
  }

  /** Runs the next second (0 first). */
  step(): void {
    const t = ++this.second;
    this.applyEvents(t);
    const last = this.scenario.seconds;
    for (const vm of this.vms) {
      if (t > 0 && t <= last && vm.balloonTarget !== vm.monitorTarget) {
        vm.monitorTarget = vm.balloonTarget;
        vm.driver.setTarget(vm.balloonTarget);
        if (vm.events) vm.event(t).setTarget = vm.balloonTarget;
      }
      this.moveWorkload(vm, t);
      if (t === 0) vm.driver.load();
      else vm.driver.cycle();
    }
    this.account(t);
    const p = this.hostParams;
    if (this.policy === "esx" && t > 0 && t % p.samplePeriod === 0) this.sampleActive();
    if (t % p.sampleInterval === 0) this.sampleHistory();
    const round = t % p.interval === 0;
    if (this.emit && (round || t % this.every === 0)) this.writeVmRecords(t);
    if (round) this.round(t);
  }

  /** After the last second: each VM's unload (when asked for), in file order, and the end record. */
  finish(): readonly VmTotals[] {
    for (const vm of this.vms) vm.driver.end(this.scenario.unload);
    const totals = this.vms.map((vm): VmTotals => ({
      vm: vm.spec.name,
      swapIn: vm.swapInTotal,
      swapOut: vm.swapOutTotal,
      shortfallSeconds: vm.shortfallSeconds,
      peakBalloon: vm.peakBalloon,
    }));
    const end: EndRecord = { t: "end", seconds: this.scenario.seconds, vms: totals };
    this.emit?.(JSON.stringify(end));
    return totals;
  }

  /** The scenario that gives VM `index`'s driver trace through `simulate` (needs `vmScenarios` or `onVmLine`). */
  vmScenario(index: number): VmScenario {
    const vm = this.vms[index]!;
    if (vm.events === undefined) throw new Error("the host kept no VM events: run it with vmScenarios");
    const { guest } = vm.spec;
    return {
      cycles: this.scenario.seconds,
      unload: this.scenario.unload,
      guest: vm.spec.driver === "none" ? guest : driver(vm.spec.driver).scenarioGuest(guest),
      events: vm.events,
    };
  }

  private applyEvents(t: number): void {
    const events = this.events;
    let changed = false;
    while (this.nextEvent < events.length && events[this.nextEvent]!.second === t) {
      const event = events[this.nextEvent++]!;
      if (event.policy) {
        Object.assign(this.params, event.policy);
        changed = true;
      }
      if (event.vm !== undefined) {
        const vm = this.vms.find((v) => v.spec.name === event.vm)!;
        if (event.demand) vm.demand = new Series(event.demand);
        if (event.active) vm.active = new Series(event.active);
      }
    }
    if (changed) this.updateParams();
  }

  private moveWorkload(vm: Vm, t: number): void {
    const demand = vm.demand.pages(t);
    const active = vm.active === undefined ? demand : vm.active.pages(t);
    vm.demandNow = demand;
    vm.activeNow = active < demand ? active : demand;
    const driver = vm.driver;
    const held = driver.workload;
    if (held < demand) {
      driver.use(demand - held);
      if (vm.events) vm.event(t).guestUse = demand - held;
    } else if (held > demand) {
      driver.release(held - demand);
      if (vm.events) vm.event(t).guestRelease = held - demand;
    }
    const after = driver.workload;
    vm.shortfall = after < demand ? demand - after : 0;
    vm.shortfallSeconds += vm.shortfall;
  }

  /** Step 3: T, B, X; swap-in; P and F; the ESX state; swap-out; P and F again. */
  private account(t: number): void {
    const vms = this.vms;
    let swapIn = 0;
    let backed = 0;
    for (const vm of vms) {
      vm.touched = vm.kernelFrames + vm.touchedFree;
      vm.balloon = vm.driver.locked;
      if (vm.balloon > vm.peakBalloon) vm.peakBalloon = vm.balloon;
      if (vm.swapped > vm.touched) vm.swapped = vm.touched;
      vm.swapInNow = 0;
      if (vm.swapped > 0) {
        let n = Math.ceil((vm.swapped * vm.activeNow) / (vm.touched * 60));
        if (n > vm.swapped) n = vm.swapped;
        vm.swapped -= n;
        vm.swapInNow = n;
        vm.swapInTotal += n;
        swapIn += n;
      }
      vm.backed = vm.touched - vm.swapped;
      backed += vm.backed;
    }
    const base = this.hostPages - this.overheadPages;
    const freeBefore = base - backed;
    if (this.state !== null) this.state = esxNextState(this.state, freeBefore, this.thresholds);

    let left = this.swapBudget;
    let forced = 0;
    let excessOut = 0;
    if (freeBefore < 0) {
      forced = swapOut(this.vms, this.order, -freeBefore, (vm) => vm.backed);
      left = left > forced ? left - forced : 0;
    }
    if ((this.state === "hard" || this.state === "low") && left > 0)
      excessOut = swapOut(this.vms, this.order, left, (vm) => vm.touched - vm.swapped - vm.allocationTarget);

    let balloon = 0;
    let swapped = 0;
    let shortfall = 0;
    backed = 0;
    for (const vm of vms) {
      vm.backed = vm.touched - vm.swapped;
      backed += vm.backed;
      balloon += vm.balloon;
      swapped += vm.swapped;
      shortfall += vm.shortfall;
    }
    this.free = base - backed;
    const f = this.figures;
    f.second = t;
    f.free = this.free;
    f.state = this.state;
    f.backed = backed;
    f.balloon = balloon;
    f.swapped = swapped;
    f.swapIn = swapIn;
    f.swapOut = forced + excessOut;
    f.shortfall = shortfall;
    if (this.emit) {
      const record: HostRecord = {
        t: "host",
        second: t,
        free: this.free,
        freeBefore,
        state: this.state,
        backed,
        balloon,
        swapped,
        swapIn,
        swapOut: forced + excessOut,
        forced,
      };
      this.emit(JSON.stringify(record));
    }
    this.onSecond?.(f);
  }

  /** ESX's active-memory sample: `samplePages` draws per VM, then both averages. */
  private sampleActive(): void {
    const { samplePages, fastGain, slowGain } = this.hostParams;
    for (const vm of this.vms) {
      const p = vm.activeNow / vm.totalPages;
      let hits = 0;
      let a = vm.rng;
      for (let n = 0; n < samplePages; n++) {
        a = mulberry32Next(a);
        if (mulberry32Draw(a) < p) hits++;
      }
      vm.rng = a;
      const f = hits / samplePages;
      vm.fast += fastGain * (f - vm.fast);
      vm.slow += slowGain * (f - vm.slow);
    }
  }

  /** MoM's history: F, and each VM's B and guest free frames, the last `historyLength` of each. */
  private sampleHistory(): void {
    const keep = this.hostParams.historyLength;
    push(this.freeSamples, this.free, keep);
    for (const vm of this.vms) {
      push(vm.balloonSamples, vm.balloon, keep);
      push(vm.guestFreeSamples, vm.driver.guestFree, keep);
    }
  }

  private writeVmRecords(t: number): void {
    const esx = this.policy === "esx";
    for (const vm of this.vms) {
      const record: VmRecord = {
        t: "vm",
        second: t,
        vm: vm.spec.name,
        target: vm.driver.target,
        balloon: vm.balloon,
        touched: vm.touched,
        backed: vm.backed,
        swapped: vm.swapped,
        guestFree: vm.driver.guestFree,
        demand: vm.demandNow,
        active: vm.activeNow,
        shortfall: vm.shortfall,
        swapIn: vm.swapInNow,
        estimate: esx ? vm.estimate : null,
      };
      this.emit!(JSON.stringify(record));
    }
  }

  /** The round's input, as HOST.md's JSON. */
  policyInput(): PolicyInput {
    const defaults = POLICY_DEFAULTS[this.policy] as unknown as Record<string, number>;
    const params: Record<string, number> = {};
    for (const [key, value] of Object.entries(this.params)) if (defaults[key] !== value) params[key] = value;
    const esx = this.policy === "esx";
    const vms = this.vms.map((vm): PolicyVm => ({
      name: vm.spec.name,
      pages: vm.totalPages,
      reservation: vm.spec.reservation,
      limit: vm.spec.limit,
      shares: vm.spec.shares,
      driver: vm.spec.driver,
      balloon: vm.balloon,
      target: vm.balloonTarget,
      backed: vm.backed,
      swapped: vm.swapped,
      active: esx ? vm.estimate : 1,
      guestFree: vm.driver.guestFree,
      balloonSamples: [...vm.balloonSamples],
      guestFreeSamples: [...vm.guestFreeSamples],
    }));
    const host = { pages: this.hostPages, overheadPages: this.overheadPages, free: this.free, state: this.state, freeSamples: [...this.freeSamples] };
    const input: PolicyInput = { policy: this.policy, params, host, vms };
    return input;
  }

  private round(t: number): void {
    const input = this.policyInput();
    const output = policyRound(input);
    output.vms.forEach((out, i) => {
      const vm = this.vms[i]!;
      vm.allocationTarget = out.allocationTarget;
      vm.balloonTarget = out.balloonTarget;
    });
    if (this.emit) {
      const record: PolicyRecord = { t: "policy", second: t, input, output };
      this.emit(JSON.stringify(record));
    }
  }
}

function push(samples: number[], value: number, keep: number): void {
  samples.push(value);
  while (samples.length > keep) samples.shift();
}

/** Runs a host scenario: its trace to `options.onLine`; returns each VM's totals (the end record's). */
export function runHost(scenario: HostScenario, options: HostRunOptions = {}): readonly VmTotals[] {
  return new HostSimulation(scenario, options).run();
}
