/**
 * A checker of host traces (HOST.md "Trace"), written apart from the host
 * so that it checks the books rather than repeating them: at every second,
 * `F = H − O − ΣP`, `P = T − X`, `0 ≤ X ≤ T`, the swap-in rule, the ESX
 * state machine, the forced swap-out, the ESX estimates recomputed from
 * mulberry32, the targets the monitors were given, and every policy
 * record's output against the policy's own function for its input.
 */
import { policyRound } from "./policy/round.js";
import { POLICY_DEFAULTS, type EsxState, type PolicyInput } from "./policy/types.js";
import { mulberry32 } from "./mulberry32.js";
import type { HostScenario } from "./scenario.js";
import type { EndRecord, HostRecord, HostTraceRecord, PolicyRecord, VmRecord } from "./trace.js";

const ORDER: readonly EsxState[] = ["low", "hard", "soft", "high"];

/** The state after a second (for the checker and its test), written as a walk: fall to the first threshold F is under, else climb while each next one is met. */
export function nextState(state: EsxState, free: number, thr: Record<EsxState, number>): EsxState {
  const below = (["low", "hard", "soft"] as const).find((s) => free < thr[s]);
  if (below !== undefined) return ORDER.indexOf(below) < ORDER.indexOf(state) ? below : state;
  let at = ORDER.indexOf(state);
  while (at < 3 && free >= thr[ORDER[at + 1]!]) at++;
  return ORDER[at]!;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Checks a host trace's records against its scenario; returns the problems found (none: the trace keeps the books). */
export function checkHostTrace(scenario: HostScenario, records: readonly HostTraceRecord[]): string[] {
  const problems: string[] = [];
  const fail = (second: number, what: string) => {
    if (problems.length < 50) problems.push(`second ${second}: ${what}`);
  };
  const H = scenario.host.memMiB * 256;
  const O = scenario.host.overheadMiB * 256;
  const budget = Math.floor(scenario.host.swapMiBps * 256);
  const esx = scenario.policy.name === "esx";
  const params: Record<string, number> = { ...(POLICY_DEFAULTS[scenario.policy.name] as unknown as Record<string, number>), ...scenario.policy.params };
  const events = [...scenario.events].sort((a, b) => a.second - b.second);
  const n = scenario.vms.length;
  const index = new Map(scenario.vms.map((vm, i) => [vm.name, i]));
  let state: EsxState = "high";
  const rngs = scenario.vms.map((_, i) => mulberry32((scenario.seed + i) >>> 0));
  const fast = new Array<number>(n).fill(1);
  const slow = new Array<number>(n).fill(1);
  const estimateKnown = new Array<boolean>(n).fill(true);
  /** A sample second passed without the VM's record: its generator's place is unknown from then on. */
  const lost = new Array<boolean>(n).fill(false);
  const prev: (VmRecord | undefined)[] = new Array<VmRecord | undefined>(n).fill(undefined);
  const monitorTarget = new Array<number>(n).fill(0);
  const lastTarget = new Array<number>(n).fill(0);
  const totals = scenario.vms.map(() => ({ swapIn: 0, shortfall: 0, peak: 0, complete: true }));
  let host: HostRecord | undefined;
  let vmsThisSecond: VmRecord[] = [];
  let nextEvent = 0;
  let second = -1;
  let end: EndRecord | undefined;

  const enter = (s: number) => {
    // A new second: its events, and the targets of the last round reach the monitors.
    for (; second < s; second++) {
      const t = second + 1;
      while (nextEvent < events.length && events[nextEvent]!.second === t) Object.assign(params, events[nextEvent++]!.policy ?? {});
      if (t > 0) for (let i = 0; i < n; i++) monitorTarget[i] = lastTarget[i]!;
      if (esx && t > 0 && t % params.samplePeriod! === 0) {
        // ESX samples at this second: the records must be there to recompute it.
        for (let i = 0; i < n; i++) {
          if (!estimateKnown[i]) lost[i] = true;
          estimateKnown[i] = false;
        }
      }
    }
  };

  for (const record of records) {
    if (record.t === "host") {
      enter(record.second);
      if (host !== undefined && record.second !== host.second + 1) fail(record.second, `host record after second ${host.second}`);
      host = record;
      vmsThisSecond = [];
      const r = record;
      if (r.free !== H - O - r.backed) fail(r.second, `free ${r.free} is not H − O − ΣP = ${H - O - r.backed}`);
      if (r.free !== r.freeBefore + r.swapOut) fail(r.second, `free ${r.free} is not freeBefore + swapOut (${r.freeBefore} + ${r.swapOut})`);
      if (r.forced !== Math.max(0, -r.freeBefore)) fail(r.second, `forced ${r.forced} where freeBefore is ${r.freeBefore}`);
      if (esx) {
        const thr = {
          high: Math.floor((H * params.highPercent!) / 100),
          soft: Math.floor((H * params.softPercent!) / 100),
          hard: Math.floor((H * params.hardPercent!) / 100),
          low: Math.floor((H * params.lowPercent!) / 100),
        };
        state = nextState(state, r.freeBefore, thr);
        if (r.state !== state) fail(r.second, `state ${r.state}, but F0 = ${r.freeBefore} from the state before gives ${state}`);
        const excess = r.swapOut - r.forced;
        if (excess !== 0 && state !== "hard" && state !== "low") fail(r.second, `${excess} pages swapped for excess in state ${state}`);
        if (excess > Math.max(0, budget - r.forced)) fail(r.second, `${excess} pages swapped for excess, past the budget`);
      } else {
        if (r.state !== null) fail(r.second, `state ${r.state} outside ESX`);
        if (r.swapOut !== r.forced) fail(r.second, `${r.swapOut - r.forced} pages swapped without F < 0 outside ESX`);
      }
    } else if (record.t === "vm") {
      const r = record;
      const i = index.get(r.vm);
      if (host === undefined || host.second !== r.second || i === undefined) {
        fail(r.second, `vm record of ${r.vm} out of place`);
        continue;
      }
      vmsThisSecond.push(r);
      const spec = scenario.vms[i]!;
      if (r.backed !== r.touched - r.swapped) fail(r.second, `${r.vm}: backed ${r.backed} is not touched − swapped`);
      if (r.swapped < 0 || r.swapped > r.touched) fail(r.second, `${r.vm}: swapped ${r.swapped} outside 0 … touched (${r.touched})`);
      if (r.touched > spec.guest.totalPages || r.touched < spec.guest.totalPages - spec.guest.freePages)
        fail(r.second, `${r.vm}: touched ${r.touched} impossible`);
      if (r.active > r.demand) fail(r.second, `${r.vm}: active ${r.active} above demand ${r.demand}`);
      const expectTarget = spec.driver === "none" ? 0 : Math.min(monitorTarget[i]!, spec.guest.totalPages);
      if (r.target !== expectTarget) fail(r.second, `${r.vm}: target ${r.target}, but the last round asked ${expectTarget}`);
      const before = prev[i];
      if (before !== undefined && before.second === r.second - 1) {
        const x = Math.min(before.swapped, r.touched);
        const expected = x > 0 ? Math.min(x, Math.ceil((x * r.active) / (r.touched * 60))) : 0;
        if (r.swapIn !== expected) fail(r.second, `${r.vm}: swapIn ${r.swapIn}, the rule gives ${expected}`);
      } else if (r.second === 0 && r.swapIn !== 0) fail(0, `${r.vm}: swapIn at second 0`);
      // ESX's estimate: recomputed at each sample second from this second's A.
      if (esx) {
        if (!estimateKnown[i] && r.second > 0 && r.second % params.samplePeriod! === 0) {
          const p = r.active / spec.guest.totalPages;
          let hits = 0;
          for (let k = 0; k < params.samplePages!; k++) if (rngs[i]!() < p) hits++;
          const f = hits / params.samplePages!;
          fast[i] = fast[i]! + params.fastGain! * (f - fast[i]!);
          slow[i] = slow[i]! + params.slowGain! * (f - slow[i]!);
          estimateKnown[i] = true;
        }
        if (estimateKnown[i] && !lost[i] && r.estimate !== Math.max(fast[i]!, slow[i]!))
          fail(r.second, `${r.vm}: estimate ${r.estimate}, mulberry32 gives ${Math.max(fast[i]!, slow[i]!)}`);
      } else if (r.estimate !== null) fail(r.second, `${r.vm}: an estimate outside ESX`);
      const total = totals[i]!;
      if (before !== undefined && before.second !== r.second - 1) total.complete = false;
      if (before === undefined && r.second !== 0) total.complete = false;
      total.swapIn += r.swapIn;
      total.shortfall += r.shortfall;
      total.peak = Math.max(total.peak, r.balloon);
      prev[i] = r;
      if (vmsThisSecond.length === n) {
        const sum = (key: "backed" | "balloon" | "swapped" | "swapIn") => vmsThisSecond.reduce((a, v) => a + v[key], 0);
        for (const key of ["backed", "balloon", "swapped", "swapIn"] as const) {
          if (sum(key) !== host[key]) fail(r.second, `Σ ${key} of the VMs is ${sum(key)}, the host says ${host[key]}`);
        }
      }
    } else if (record.t === "policy") {
      checkRound(record, host, vmsThisSecond, lastTarget, fail);
      record.output.vms.forEach((v, i) => (lastTarget[i] = v.balloonTarget));
    } else if (record.t === "end") {
      end = record;
    }
  }
  if (host === undefined || host.second !== scenario.seconds) fail(host?.second ?? 0, `the trace ends before second ${scenario.seconds}`);
  if (end === undefined) fail(scenario.seconds, "no end record");
  else {
    end.vms.forEach((v, i) => {
      const total = totals[i]!;
      if (!total.complete || prev[i]?.second !== scenario.seconds) return;
      if (v.swapIn !== total.swapIn) fail(scenario.seconds, `${v.vm}: end swapIn ${v.swapIn}, the seconds add to ${total.swapIn}`);
      if (v.shortfallSeconds !== total.shortfall)
        fail(scenario.seconds, `${v.vm}: end shortfallSeconds ${v.shortfallSeconds}, the seconds add to ${total.shortfall}`);
      if (v.peakBalloon !== total.peak) fail(scenario.seconds, `${v.vm}: end peakBalloon ${v.peakBalloon}, the seconds' peak is ${total.peak}`);
    });
  }
  return problems;
}

function checkRound(
  r: PolicyRecord,
  host: HostRecord | undefined,
  vms: readonly VmRecord[],
  lastTarget: readonly number[],
  fail: (second: number, what: string) => void,
): void {
  const input: PolicyInput = r.input;
  if (host === undefined || host.second !== r.second) return fail(r.second, "a policy record without its host record");
  if (input.host.free !== host.free) fail(r.second, `the round saw free ${input.host.free}, the host record says ${host.free}`);
  if (input.host.state !== host.state) fail(r.second, `the round saw state ${input.host.state}, the host record says ${host.state}`);
  if (vms.length !== input.vms.length) fail(r.second, `the round has ${input.vms.length} VMs, the second ${vms.length} vm records`);
  input.vms.forEach((v, i) => {
    const rec = vms[i];
    if (rec === undefined) return;
    if (v.balloon !== rec.balloon || v.backed !== rec.backed || v.swapped !== rec.swapped || v.guestFree !== rec.guestFree) {
      fail(r.second, `${v.name}: the round's balloon, backed, swapped or guestFree differ from the vm record`);
    }
    if (rec.estimate !== null && v.active !== rec.estimate) fail(r.second, `${v.name}: the round saw active ${v.active}, the estimate is ${rec.estimate}`);
    if (v.target !== lastTarget[i]) fail(r.second, `${v.name}: the round's previous target ${v.target}, the last round gave ${lastTarget[i]}`);
  });
  const expected = policyRound(input);
  if (!sameJson(expected, r.output)) fail(r.second, `the round's output is not what ${input.policy} gives for its input`);
}
