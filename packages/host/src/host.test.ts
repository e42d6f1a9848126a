import { driver as coreDriver, formatTraceRecord, runSession } from "@vmballoon/core/sim";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkHostTrace, nextState } from "./check.js";
import { HOST_EXPERIMENTS, hostExperiment, withOverrides } from "./experiments.js";
import { HostSimulation, runHost } from "./host.js";
import { mulberry32 } from "./mulberry32.js";
import { esxNextState } from "./policy/esx.js";
import { ESX_STATES, type PolicyInput } from "./policy/types.js";
import { validateHostScenario, type HostScenario } from "./scenario.js";
import type { EndRecord, HostRecord, HostTraceRecord, VmRecord } from "./trace.js";

/** The project's copy of the host's spec. */
const HOST_MD = new URL("../../../docs/HOST.md", import.meta.url);

/** Runs a scenario and returns its trace's records. */
function trace(scenario: HostScenario, every = 1): HostTraceRecord[] {
  const records: HostTraceRecord[] = [];
  runHost(scenario, { every, onLine: (line) => records.push(JSON.parse(line) as HostTraceRecord) });
  return records;
}

const vmRecords = (records: readonly HostTraceRecord[], vm: string) => records.filter((r): r is VmRecord => r.t === "vm" && r.vm === vm);
const hostRecords = (records: readonly HostTraceRecord[]) => records.filter((r): r is HostRecord => r.t === "host");

describe("what the host backs", () => {
  it("touched frames: the kernel's from the load, the workload's pops; a release keeps them touched", () => {
    const s = validateHostScenario({
      seconds: 20,
      host: { memMiB: 1024 },
      vms: [
        {
          name: "g",
          memMiB: 64,
          osMiB: 8,
          driver: "none",
          demand: [
            [0, 0],
            [10, 32],
            [15, 4],
          ],
        },
      ],
    });
    const records = vmRecords(trace(s), "g");
    expect(records[0]!.touched).toBe(8 * 256);
    expect(records[10]!.touched).toBe(8 * 256 + 32 * 256);
    expect(records[10]!.demand).toBe(32 * 256);
    // The workload gives pages back: the host still backs them.
    expect(records[20]!.demand).toBe(4 * 256);
    expect(records[20]!.touched).toBe(8 * 256 + 32 * 256);
    expect(records[20]!.guestFree).toBe((64 - 8 - 4) * 256);
  });

  it.each(["seed", "modern"] as const)("a frame the %s driver's balloon locks is untouched: T falls by what the balloon took of touched frames", (driver) => {
    // Two VMs: the first touches 48 MiB and drops to 8; the host is short, and ESX balloons it.
    const s = validateHostScenario({
      seconds: 240,
      host: { memMiB: 90 },
      policy: { name: "esx" },
      vms: [
        {
          name: "a",
          memMiB: 64,
          osMiB: 4,
          driver,
          demand: [
            [0, 48],
            [20, 8],
          ],
          active: [[0, 1]],
        },
        {
          name: "b",
          memMiB: 64,
          osMiB: 4,
          driver: "none",
          demand: [
            [0, 0],
            [20, 0],
            [60, 40],
          ],
        },
      ],
    });
    const records = trace(s);
    const a = vmRecords(records, "a");
    const last = a[a.length - 1]!;
    expect(last.balloon).toBeGreaterThan(0);
    // Every frame the balloon holds was touched (the workload's released pages are on top of the free stack).
    expect(last.touched).toBe(4 * 256 + 48 * 256 - last.balloon);
    expect(checkHostTrace(s, records)).toEqual([]);
  });

  it("forced swap-out takes −F at once from the VMs with the most backed pages first, ties in file order", () => {
    const s = validateHostScenario({
      seconds: 2,
      host: { memMiB: 100, swapMiBps: 1 },
      policy: { name: "proxmox" },
      vms: [
        { name: "a", memMiB: 64, osMiB: 0, driver: "none", demand: [[0, 30]] },
        { name: "b", memMiB: 64, osMiB: 0, driver: "none", demand: [[0, 50]] },
        { name: "c", memMiB: 64, osMiB: 0, driver: "none", demand: [[0, 50]] },
      ],
    });
    const records = trace(s);
    const host0 = hostRecords(records)[0]!;
    expect(host0.freeBefore).toBe((100 - 130) * 256);
    expect(host0.forced).toBe(30 * 256);
    expect(host0.swapOut).toBe(30 * 256);
    expect(host0.free).toBe(0);
    const at0 = (vm: string) => vmRecords(records, vm)[0]!;
    expect([at0("a").swapped, at0("b").swapped, at0("c").swapped]).toEqual([0, 30 * 256, 0]);
    // Swap-in, next second: ceil(X × A / (T × 60)), with A = demand.
    const b1 = vmRecords(records, "b")[1]!;
    expect(b1.swapIn).toBe(Math.ceil((30 * 256 * 50 * 256) / (50 * 256 * 60)));
    expect(checkHostTrace(s, records)).toEqual([]);
  });

  it("ESX's estimates are HOST.md's mulberry32 draws, sampled every samplePeriod, both averages from 1", () => {
    // HOST.md's generator, as the spec writes it.
    function reference(a: number) {
      return () => {
        a = (a + 0x6d2b79f5) | 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }
    const mine = mulberry32(7);
    const theirs = reference(7);
    for (let i = 0; i < 1000; i++) expect(mine()).toBe(theirs());

    const s = validateHostScenario({
      seconds: 40,
      seed: 41,
      host: { memMiB: 1024 },
      policy: { name: "esx", samplePeriod: 10, samplePages: 50 },
      vms: [
        { name: "a", memMiB: 64, driver: "none", demand: [[0, 32]], active: [[0, 16]] },
        { name: "b", memMiB: 64, driver: "none", demand: [[0, 32]], active: [[0, 2]] },
      ],
    });
    const records = trace(s);
    const b = vmRecords(records, "b");
    expect(b[9]!.estimate).toBe(1);
    const draws = reference(42);
    let fast = 1;
    let slow = 1;
    for (const t of [10, 20, 30, 40]) {
      let hits = 0;
      for (let n = 0; n < 50; n++) if (draws() < (2 * 256) / (64 * 256)) hits++;
      fast += 0.5 * (hits / 50 - fast);
      slow += 0.125 * (hits / 50 - slow);
      expect(b[t]!.estimate).toBe(Math.max(fast, slow));
    }
    expect(b[40]!.estimate).toBeLessThan(0.8);
  });
});

describe("the ESX state machine", () => {
  it("the checker's own walk and the policy's esxNextState agree, whatever the state, F and thresholds", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ESX_STATES),
        fc.integer({ min: -100, max: 400 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 4, maxLength: 4 }),
        (state, free, t) => {
          const [low, hard, soft, high] = [...t].sort((a, b) => a - b) as [number, number, number, number];
          const thresholds = { low, hard, soft, high };
          expect(nextState(state, free, thresholds)).toBe(esxNextState(state, free, thresholds));
        },
      ),
    );
    // HOST.md's walk, by hand: down at once, up one step at a time while each step's threshold is met.
    const thr = { low: 10, hard: 20, soft: 40, high: 60 };
    expect(esxNextState("high", 39, thr)).toBe("soft");
    expect(esxNextState("high", 5, thr)).toBe("low");
    expect(esxNextState("low", 15, thr)).toBe("low");
    expect(esxNextState("low", 45, thr)).toBe("soft");
    expect(esxNextState("hard", 59, thr)).toBe("soft");
    expect(esxNextState("soft", 30, thr)).toBe("soft");
    expect(esxNextState("low", 60, thr)).toBe("high");
  });
});

describe("each VM's scenario gives its driver trace through simulate's runners, record for record", () => {
  it.each(["seed", "modern"] as const)("%s", (driver) => {
    // The CLI tests' small host (one VM on each driver, one without), every driver made this one, run longer.
    const small = JSON.parse(readFileSync(new URL("../../../__fixtures__/host/small.json", import.meta.url), "utf8")) as object;
    const s = withOverrides(validateHostScenario({ ...small, seconds: 300 }), { driver });
    const lines: string[][] = s.vms.map(() => []);
    const host = new HostSimulation(s, { onVmLine: (i, line) => lines[i]!.push(line) });
    host.run();
    for (const i of [0, 1]) {
      const vmScenario = JSON.parse(JSON.stringify(host.vmScenario(i))) as unknown;
      const replay: string[] = [];
      const kind = coreDriver(driver);
      const scenario = kind.parseScenario(JSON.stringify(vmScenario));
      runSession(kind.simulate(scenario, { onRecord: (r) => replay.push(formatTraceRecord(r)) }), scenario);
      expect(lines[i]!.length).toBeGreaterThan(300);
      expect(replay).toEqual(lines[i]);
      expect(lines[i]!.some((l) => l.includes('"LOCK"') || l.includes("BATCHED"))).toBe(true);
    }
    expect(lines[2]).toEqual([]);
  });
});

describe("the trace keeps HOST.md's books", () => {
  it.each(HOST_EXPERIMENTS.flatMap((e) => (["esx", "mom", "proxmox"] as const).map((policy) => [e.name, policy] as const)))(
    "built-in %s under %s",
    (name, policy) => {
      const s = withOverrides(hostExperiment(name)!.scenario, { policy });
      const records = trace(s);
      expect(checkHostTrace(s, records)).toEqual([]);
      expect(records[records.length - 1]!.t).toBe("end");
    },
  );

  it("writes HOST.md's records in its key order: host, vm, policy (input and output), end", () => {
    const s = { ...hostExperiment("overcommit")!.scenario, seconds: 30 };
    const records = trace(s);
    const keys = (t: string) => Object.keys(records.find((r) => r.t === t)!);
    expect(keys("host")).toEqual(["t", "second", "free", "freeBefore", "state", "backed", "balloon", "swapped", "swapIn", "swapOut", "forced"]);
    expect(keys("vm")).toEqual([
      "t",
      "second",
      "vm",
      "target",
      "balloon",
      "touched",
      "backed",
      "swapped",
      "guestFree",
      "demand",
      "active",
      "shortfall",
      "swapIn",
      "estimate",
    ]);
    expect(keys("policy")).toEqual(["t", "second", "input", "output"]);
    expect(keys("end")).toEqual(["t", "seconds", "vms"]);
    const round = records.find((r) => r.t === "policy")!;
    // A round's input has the keys of HOST.md's example round, in its order.
    const example = JSON.parse(/## Policy rounds[\s\S]*?```json\n([\s\S]*?)```/.exec(readFileSync(HOST_MD, "utf8"))![1]!) as PolicyInput;
    expect(Object.keys(round.input)).toEqual(Object.keys(example));
    expect(Object.keys(round.input)).toEqual(["policy", "params", "host", "vms"]);
    expect(Object.keys(round.input.host)).toEqual(Object.keys(example.host));
    expect(Object.keys(round.input.vms[0]!)).toEqual(Object.keys(example.vms[0]!));
    expect(Object.keys(example.vms[0]!)).toHaveLength(14);
    expect(Object.keys((records[records.length - 1] as EndRecord).vms[0]!)).toEqual(["vm", "swapIn", "swapOut", "shortfallSeconds", "peakBalloon"]);
    // Within a second: the host record, the vm records, then the round.
    expect(records.slice(0, 6).map((r) => r.t)).toEqual(["host", "vm", "vm", "vm", "vm", "policy"]);
  });

  it("with vm records only every 7 seconds (and at rounds), the checks that need them are skipped, the others kept", () => {
    const s = hostExperiment("overcommit")!.scenario;
    const records = trace({ ...s, seconds: 400 }, 7);
    expect(records.filter((r) => r.t === "vm" && r.second === 7).length).toBe(4);
    expect(records.some((r) => r.t === "vm" && r.second === 8)).toBe(false);
    expect(checkHostTrace({ ...s, seconds: 400 }, records)).toEqual([]);
  });

  it("the checker finds a broken book, a wrong state, a swap-in off the rule, an estimate off mulberry32 and a round that is not the policy's", () => {
    const s = { ...hostExperiment("overcommit")!.scenario, seconds: 400 };
    const records = trace(s);
    const tamper = (pick: (r: HostTraceRecord) => boolean, change: (r: Record<string, unknown>) => void) => {
      const copy = records.map((r) => structuredClone(r));
      change(copy.find(pick) as unknown as Record<string, unknown>);
      return checkHostTrace(s, copy).join("\n");
    };
    expect(
      tamper(
        (r) => r.t === "host" && r.second === 100,
        (r) => (r.free = (r.free as number) + 1),
      ),
    ).toMatch(/free .* is not H − O − ΣP/);
    expect(
      tamper(
        (r) => r.t === "host" && r.second === 100,
        (r) => (r.state = r.state === "high" ? "soft" : "high"),
      ),
    ).toMatch(/state/);
    expect(
      tamper(
        (r) => r.t === "vm" && r.swapIn > 0,
        (r) => (r.swapIn = (r.swapIn as number) + 1),
      ),
    ).toMatch(/swapIn .* the rule gives/);
    expect(
      tamper(
        (r) => r.t === "vm" && r.second === 120,
        (r) => (r.estimate = 0.5),
      ),
    ).toMatch(/estimate 0.5, mulberry32 gives/);
    expect(
      tamper(
        (r) => r.t === "vm" && r.second === 100,
        (r) => (r.swapped = (r.touched as number) + 1),
      ),
    ).toMatch(/outside 0 … touched/);
    expect(
      tamper(
        (r) => r.t === "policy" && r.second === 300,
        (r) => ((r.output as { vms: { balloonTarget: number }[] }).vms[0]!.balloonTarget += 1),
      ),
    ).toMatch(/not what esx gives/);
    expect(checkHostTrace(s, records.slice(0, -1)).join()).toMatch(/no end record/);
  });

  it("over random host scenarios (drivers, policies, overcommit, events): the books, and each VM's scenario replayed by its driver's session", () => {
    const point = fc.tuple(fc.integer({ min: 0, max: 90 }), fc.integer({ min: 0, max: 60 }));
    const series = fc.uniqueArray(point, { minLength: 1, maxLength: 4, selector: (p) => p[0] }).map((ps) => ps.sort((a, b) => a[0] - b[0]));
    const vm = fc.record({
      memMiB: fc.integer({ min: 8, max: 64 }),
      driver: fc.constantFrom("seed", "modern", "none"),
      demand: series,
      activeShare: fc.double({ min: 0, max: 1, noNaN: true }),
      shares: fc.integer({ min: 0, max: 2000 }),
      huge: fc.boolean(),
    });
    const scenario = fc.record({
      seconds: fc.integer({ min: 1, max: 90 }),
      seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      ratio: fc.double({ min: 0.4, max: 1.6, noNaN: true }),
      swapMiBps: fc.integer({ min: 0, max: 50 }),
      policy: fc.constantFrom("esx", "mom", "proxmox"),
      interval: fc.integer({ min: 1, max: 20 }),
      samplePeriod: fc.integer({ min: 1, max: 30 }),
      unload: fc.boolean(),
      vms: fc.array(vm, { minLength: 1, maxLength: 4 }),
      tauAt: fc.integer({ min: 0, max: 90 }),
    });
    fc.assert(
      fc.property(scenario, (g) => {
        const total = g.vms.reduce((a, v) => a + v.memMiB, 0);
        const params: Record<string, number> = { interval: g.interval };
        if (g.policy === "esx") params.samplePeriod = g.samplePeriod;
        const s = validateHostScenario({
          seconds: g.seconds,
          seed: g.seed,
          unload: g.unload,
          host: { memMiB: Math.max(1, Math.round(total * g.ratio)), swapMiBps: g.swapMiBps },
          policy: { name: g.policy, ...params },
          vms: g.vms.map((v, i) => ({
            name: `vm${i}`,
            memMiB: v.memMiB,
            driver: v.driver,
            shares: v.shares,
            guest: { huge: v.huge },
            demand: v.demand,
            active: v.demand.map(([t, m]) => [t, m * v.activeShare]),
          })),
          events: g.policy === "esx" && g.tauAt <= g.seconds ? [{ second: g.tauAt, policy: { idleTax: 0.2 } }] : [],
        });
        const records: HostTraceRecord[] = [];
        const own: string[][] = s.vms.map(() => []);
        const host = new HostSimulation(s, { onLine: (line) => records.push(JSON.parse(line) as HostTraceRecord), onVmLine: (i, line) => own[i]!.push(line) });
        host.run();
        expect(checkHostTrace(s, records)).toEqual([]);
        // Each VM's scenario, through a session of its driver as simulate runs it, gives the VM's trace.
        s.vms.forEach((vm, i) => {
          if (vm.driver === "none") return;
          const kind = coreDriver(vm.driver);
          const replay: string[] = [];
          const scenario = kind.parseScenario(JSON.stringify(host.vmScenario(i)));
          runSession(kind.simulate(scenario, { onRecord: (r) => replay.push(formatTraceRecord(r)) }), scenario);
          expect(replay).toEqual(own[i]);
        });
      }),
      { numRuns: 40 },
    );
  });
});

describe("the experiments show what they say", () => {
  const mean = (records: readonly VmRecord[], from: number, to: number) =>
    records.filter((r) => r.second >= from && r.second < to).reduce((a, r) => a + r.backed, 0) / (to - from) / 256;

  it("idle-tax: at τ = 0 each VM is backed by about 179 MiB; at τ = 0.75 memory moves to the busy one", () => {
    const s = hostExperiment("idle-tax")!.scenario;
    const records = trace(s, 1);
    const idle = vmRecords(records, "idle");
    const busy = vmRecords(records, "busy");
    expect(Math.abs(mean(idle, 1700, 1800) - 179)).toBeLessThan(4);
    expect(Math.abs(mean(busy, 1700, 1800) - 179)).toBeLessThan(4);
    expect(mean(busy, 3500, 3600)).toBeGreaterThan(mean(busy, 1700, 1800) + 40);
    expect(mean(idle, 3500, 3600)).toBeLessThan(mean(idle, 1700, 1800) - 40);
  });

  it("slow-balloon: the same host swaps more with the seed's driver than with today's", () => {
    const s = hostExperiment("slow-balloon")!.scenario;
    const swapOut = (scenario: HostScenario) => runHost(scenario).reduce((a, v) => a + v.swapOut, 0);
    const seed = swapOut(s);
    const modern = swapOut(withOverrides(s, { driver: "modern" }));
    expect(seed).toBeGreaterThan(modern);
  });

  it("policies: the three policies give the same workload different balloons", () => {
    const s = hostExperiment("policies")!.scenario;
    const peaks = (["esx", "mom", "proxmox"] as const).map((policy) => runHost(withOverrides(s, { policy })).map((v) => v.peakBalloon));
    expect(new Set(peaks.map((p) => p.join())).size).toBe(3);
  });
});
