import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { runHost, validateHostScenario } from "@vmballoon/host";
import { parseHTML } from "linkedom";
import { describe, expect, it } from "vitest";
import { STACK, reportPage, vmballoon } from "./cli-runner.js";
import { thinRows } from "./report/charts.js";
import { HOST_POINTS, drawHostCharts, vmPoints } from "./report/host-charts.js";
import { HostReportBuilder, estimatedPages, type HostReportModel } from "./report/host-model.js";
import { HostTraceReader } from "./report/host-trace.js";

const temp = () => mkdtempSync(join(tmpdir(), "vmballoon-host-report-"));

/**
 * A small host that goes through ESX's states: VM a grows past what its guest
 * can give (shortfall), b shrinks (idle memory to balloon), c has no driver
 * (the host can only swap it); at 300 the percents move, and the thresholds
 * with them.
 */
const SMALL = {
  seconds: 600,
  seed: 3,
  unload: true,
  host: { memMiB: 1800, swapMiBps: 50 },
  policy: { name: "esx", samplePeriod: 20, interval: 10 },
  vms: [
    {
      name: "a",
      memMiB: 1024,
      driver: "modern",
      demand: [
        [0, 100],
        [100, 100],
        [140, 1000],
      ],
      active: [
        [0, 50],
        [100, 50],
        [140, 700],
      ],
    },
    {
      name: "b",
      memMiB: 1024,
      driver: "seed",
      demand: [
        [0, 700],
        [60, 700],
        [120, 100],
      ],
      active: [
        [0, 600],
        [120, 20],
      ],
    },
    {
      name: "c",
      memMiB: 512,
      driver: "none",
      demand: [
        [0, 200],
        [300, 450],
      ],
    },
  ],
  events: [{ second: 300, policy: { highPercent: 10, softPercent: 8 } }],
};

type Rec = { t: string; second: number; [field: string]: unknown };
type Round = {
  input: { host: { pages: number }; params: Record<string, number>; vms: { name: string; pages: number; target: number }[] };
  output: { vms: { balloonTarget: number }[] };
};

/** The host trace of a scenario, from the engine, as its lines. */
function traceOf(scenario: object): string[] {
  const lines: string[] = [];
  runHost(validateHostScenario(scenario), { onLine: (line) => lines.push(line) });
  return lines;
}

function modelOf(lines: readonly string[]): HostReportModel {
  const builder = new HostReportBuilder();
  const reader = new HostTraceReader((record) => builder.add(record));
  for (const line of lines) reader.line(line);
  reader.end();
  return builder.finish();
}

const lines = traceOf(SMALL);
const records = lines.map((l) => JSON.parse(l) as Rec);
const of = (kind: string) => records.filter((r) => r.t === kind);
const model = modelOf(lines);

describe("the host report's model, from a small host's trace", () => {
  it("has the host's every second, in order, with its free memory and state", () => {
    expect(model.host.map((p) => [p.second, p.free, p.state])).toEqual(of("host").map((r) => [r.second, r.free, r.state]));
    expect(model.leastFree!.free).toBe(Math.min(...of("host").map((r) => r.free as number)));
  });

  it("has ESX's four thresholds at floor(H × percent / 100) of each round's host and parameters (defaults 6, 4, 2, 1), moving when the percents do", () => {
    const expected = of("policy").map((r) => {
      const { host, params } = (r as unknown as Round).input;
      const at = (name: string, byDefault: number) => Math.floor((host.pages * (params[`${name}Percent`] ?? byDefault)) / 100);
      return { second: r.second, high: at("high", 6), soft: at("soft", 4), hard: at("hard", 2), low: at("low", 1) };
    });
    // The event at 300 moved them: two spans.
    expect(new Set(expected.map((e) => `${e.high} ${e.soft} ${e.hard} ${e.low}`)).size).toBe(2);
    expect(model.thresholds).toHaveLength(2);
    for (const e of expected) {
      const span = model.thresholds.find((s) => s.from <= e.second && e.second <= s.to && (s.to !== e.second || s === model.thresholds.at(-1)))!;
      expect([span.high, span.soft, span.hard, span.low]).toEqual([e.high, e.soft, e.hard, e.low]);
    }
    expect(model.thresholds[0]!.from).toBe(0);
    expect(model.thresholds.at(-1)!.to).toBe(SMALL.seconds);
  });

  it("has the state as runs of seconds that give every second the state of its host record", () => {
    const states = of("host").map((r) => r.state);
    expect(new Set(states).size).toBeGreaterThan(1);
    const stateAt = (second: number) => model.states.find((s, i) => s.from <= second && (second < s.to || i === model.states.length - 1))!.state;
    expect(of("host").map((r) => stateAt(r.second))).toEqual(states);
    for (const state of ["high", "soft", "hard", "low"] as const) expect(model.stateSeconds[state]).toBe(states.filter((s) => s === state).length);
  });

  it("has a round per policy record, with the balloon targets it changed from the VMs' previous ones", () => {
    const policy = of("policy");
    expect(model.rounds.map((r) => r.second)).toEqual(policy.map((r) => r.second));
    policy.forEach((r, i) => {
      const { input, output } = r as unknown as Round;
      const changed = input.vms.flatMap((vm, j) =>
        output.vms[j]!.balloonTarget === vm.target ? [] : [{ vm: vm.name, from: vm.target, to: output.vms[j]!.balloonTarget }],
      );
      expect(model.rounds[i]!.changes).toEqual(changed);
    });
    expect(model.rounds.some((r) => r.changes.length > 0)).toBe(true);
  });

  it("has each VM's records, ESX's estimate as pages (estimate × the VM's pages) and the VMs' summed shortfall", () => {
    expect(model.vms.map((vm) => vm.name)).toEqual(["a", "b", "c"]);
    const pages = Object.fromEntries((of("policy")[0] as unknown as Round).input.vms.map((vm) => [vm.name, vm.pages]));
    for (const vm of model.vms) {
      const own = of("vm").filter((r) => r.vm === vm.name);
      expect(vm.points.map((p) => [p.second, p.backed, p.balloon, p.swapped, p.demand, p.active, p.shortfall])).toEqual(
        own.map((r) => [r.second, r.backed, r.balloon, r.swapped, r.demand, r.active, r.shortfall]),
      );
      expect(vm.points.map((p) => estimatedPages(vm, p))).toEqual(own.map((r) => Math.round((r.estimate as number) * pages[vm.name]!)));
    }
    const sums = new Map<number, number>();
    for (const r of of("vm")) sums.set(r.second, (sums.get(r.second) ?? 0) + (r.shortfall as number));
    expect(model.shortfall.map((s) => [s.second, s.value])).toEqual([...sums]);
    expect(Math.max(...sums.values())).toBeGreaterThan(0);
    expect(model.end).toEqual(of("end")[0]);
  });

  it("under MoM and Proxmox: no thresholds and no states", () => {
    for (const name of ["mom", "proxmox"]) {
      const other = modelOf(traceOf({ ...SMALL, policy: { name }, events: [] }));
      expect(other.policy).toBe(name);
      expect(other.thresholds).toEqual([]);
      expect(other.states).toEqual([]);
      expect(other.rounds.length).toBeGreaterThan(0);
    }
  });
});

describe("thinning a series", () => {
  it("keeps at most max rows, in order, with the lowest and highest of each key in each run (so the extremes survive)", () => {
    const rows = Array.from({ length: 25_000 }, (_, i) => ({ second: i, a: (i * 7919) % 1000, b: i === 12_345 ? -5 : i % 17 }));
    const { rows: kept, run } = thinRows(rows, 1_000, ["a", "b"]);
    expect(kept.length).toBeLessThanOrEqual(1_000);
    expect(kept.length).toBeGreaterThan(500);
    expect(run).toBeGreaterThan(1);
    expect(kept.map((r) => r.second)).toEqual([...kept.map((r) => r.second)].sort((x, y) => x - y));
    expect(kept.some((r) => r.b === -5)).toBe(true);
    // In every run, its lowest and highest a are among the rows kept.
    for (let start = 0; start < rows.length; start += run) {
      const part = rows.slice(start, start + run);
      const inRun = kept.filter((r) => r.second >= start && r.second < start + run).map((r) => r.a);
      expect(inRun).toContain(Math.min(...part.map((r) => r.a)));
      expect(inRun).toContain(Math.max(...part.map((r) => r.a)));
    }
    expect(thinRows(rows.slice(0, 900), 1_000, ["a"])).toEqual({ rows: rows.slice(0, 900), run: 1 });
  });

  it("draws a small host's series whole, a long one's in at most the points allowed", () => {
    const drawn = drawHostCharts(model);
    expect([drawn.hostRun, drawn.vmRun]).toEqual([1, 1]);
    const long = modelOf(traceOf({ ...SMALL, seconds: 2_500, events: [] }));
    const thinned = drawHostCharts(long);
    expect(thinned.hostRun).toBeGreaterThan(1);
    expect(thinned.vmRun).toBeGreaterThan(1);
    const points = (svg: string, series: string) =>
      [...parseHTML(`<div>${svg}</div>`).document.querySelectorAll(`[data-series="${series}"]`)].map((e) => Number(e.getAttribute("data-points")));
    expect(points(thinned.charts.find((c) => c.id === "free")!.svg, "free")[0]).toBeLessThanOrEqual(HOST_POINTS);
    for (const vm of thinned.vms) for (const n of points(vm.memory, "backed")) expect(n).toBeLessThanOrEqual(vmPoints(long.vms.length));
  }, 60_000);
});

/** The report of a trace file, as `vmballoon report` writes it. */
const reportOf = reportPage;

const dom = (html: string) => parseHTML(html).document;

describe("vmballoon report of a host trace, host --report", () => {
  it("host --report writes the page report makes of host --trace's file, byte for byte: every chart, each with its data", () => {
    const dir = temp();
    const scenario = join(dir, "small.json");
    writeFileSync(scenario, JSON.stringify(SMALL));
    const run = vmballoon(["host", "--scenario", scenario, "--trace", join(dir, "t.jsonl"), "--report", join(dir, "r.html")]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const page = readFileSync(join(dir, "r.html"), "utf8");
    expect(readFileSync(join(dir, "t.jsonl"), "utf8")).toBe(`${lines.join("\n")}\n`);
    expect(reportOf(join(dir, "t.jsonl"))).toBe(page);

    const doc = dom(page);
    const charts = [...doc.querySelectorAll("figure[data-chart]")].map((f) => f.getAttribute("data-vm") ?? f.getAttribute("data-chart"));
    expect(charts).toEqual(["free", "host-memory", "swap", "shortfall", "rounds", "a", "b", "c"]);
    // Not thinned: the free line has every second; each VM's stack every record of it.
    const points = (selector: string) => [...doc.querySelectorAll(selector)].map((e) => Number(e.getAttribute("data-points")));
    expect(points('[data-chart="free"] [data-series="free"]')).toEqual([of("host").length]);
    for (const vm of ["a", "b", "c"]) {
      const n = of("vm").filter((r) => r.vm === vm).length;
      expect(points(`[data-vm="${vm}"] [data-series="backed"], [data-vm="${vm}"] [data-series="balloon"], [data-vm="${vm}"] [data-series="swapped"]`)).toEqual([
        n,
        n,
        n,
      ]);
      expect(points(`[data-vm="${vm}"] [data-series="active"]`)).toEqual([n]);
      expect(points(`[data-vm="${vm}"] [data-series="estimate"]`)).toEqual([n]);
    }
    expect(doc.querySelector("[data-thinned]")).toBeNull();
    // The thresholds' lines, a band per run of a state, a dot per round where it happened.
    expect(new Set([...doc.querySelectorAll("[data-threshold]")].map((e) => e.getAttribute("data-threshold")))).toEqual(
      new Set(["high", "soft", "hard", "low"]),
    );
    expect([...doc.querySelectorAll("[data-state]")].map((e) => e.getAttribute("data-state"))).toEqual(model.states.map((s) => s.state));
    expect([...doc.querySelectorAll("[data-round]")].map((e) => Number(e.getAttribute("data-second")))).toEqual(of("policy").map((r) => r.second));
    // Hovering a round's dot names the targets it changed, before and after.
    const changed = model.rounds.find((r) => r.changes.length > 0)!;
    const title = doc.querySelector(`[data-round][data-second="${changed.second}"] title`)!.textContent;
    for (const c of changed.changes) expect(title).toContain(`${c.vm} ${c.from.toLocaleString("en-US")} → ${c.to.toLocaleString("en-US")}`);
    // Each round that changed a target has its row in the table; each VM its totals.
    expect([...doc.querySelectorAll("[data-round-second]")].map((e) => Number(e.getAttribute("data-round-second")))).toEqual(
      model.rounds.filter((r) => r.changes.length > 0).map((r) => r.second),
    );
    const end = of("end")[0] as unknown as { vms: { vm: string; peakBalloon: number }[] };
    for (const t of end.vms) {
      expect(doc.querySelector(`[data-vm-totals="${t.vm}"] td:nth-child(2)`)!.textContent).toBe(t.peakBalloon.toLocaleString("en-US"));
    }
    expect(page).not.toMatch(/<script|<link|<img|<iframe|@import|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);
  }, 60_000);

  it("under MoM: says it has no states and draws free memory alone", () => {
    const dir = temp();
    const run = vmballoon(["host", "--scenario", "overcommit", "--policy", "mom", "--report", join(dir, "r.html")]);
    expect(run.status).toBe(0);
    const doc = dom(readFileSync(join(dir, "r.html"), "utf8"));
    const free = doc.querySelector('[data-chart="free"]')!;
    expect(free.querySelector("figcaption")!.textContent).toMatch(/^MoM has no free-memory states and no thresholds: free memory alone/);
    expect(free.querySelectorAll("[data-threshold], [data-state]")).toHaveLength(0);
    expect(free.querySelectorAll('[data-series="free"]')).toHaveLength(1);
    expect(doc.querySelectorAll('[data-series="estimate"]')).toHaveLength(0);
  }, 60_000);

  it("reads a gzipped host trace and stdin (-) the same as the plain file", () => {
    const dir = temp();
    const plain = join(dir, "t.jsonl");
    const text = `${lines.join("\n")}\n`;
    writeFileSync(plain, text);
    writeFileSync(join(dir, "t.jsonl.gz"), gzipSync(text));
    const page = reportOf(plain);
    expect(reportOf(join(dir, "t.jsonl.gz"))).toBe(page);
    const piped = vmballoon(["report", "-", "--output", "-"], { input: text });
    expect(piped.status).toBe(0);
    expect(piped.stdout).toBe(page);
  }, 60_000);

  it("a hundred VMs over ten hours: the series thinned to their points, said on the page, which stays small", () => {
    // A trace in HOST.md's form, made here: every second's host record, the VMs' records every 10 minutes (at the rounds).
    const seconds = 36_000;
    const vms = Array.from({ length: 100 }, (_, i) => `vm${i}`);
    const pages = 262_144;
    const out: string[] = [];
    let target = 0;
    for (let s = 0; s <= seconds; s++) {
      const free = s === 20_000 ? -5_000 : 400_000 + ((s * 7919) % 300_000);
      out.push(
        JSON.stringify({
          t: "host",
          second: s,
          free,
          freeBefore: free,
          state: free < 100_000 ? "low" : "high",
          backed: 1e6,
          balloon: 0,
          swapped: 0,
          swapIn: 0,
          swapOut: 0,
          forced: 0,
        }),
      );
      if (s % 600 !== 0) continue;
      for (const [i, vm] of vms.entries()) {
        const v = {
          target,
          balloon: target,
          touched: 100_000 + i,
          backed: 100_000 + i,
          swapped: 0,
          guestFree: 50_000,
          demand: 90_000,
          active: 30_000,
          shortfall: 0,
          swapIn: 0,
          estimate: 0.25,
        };
        out.push(JSON.stringify({ t: "vm", second: s, vm, ...v }));
      }
      const input = {
        policy: "esx",
        params: { interval: 600 },
        host: { pages: 26_214_400, overheadPages: 0, free, state: "high", freeSamples: [] },
        vms: vms.map((name) => ({
          name,
          pages,
          reservation: 0,
          limit: pages,
          shares: 10_240,
          driver: "modern",
          balloon: target,
          target,
          backed: 100_000,
          swapped: 0,
          active: 0.25,
          guestFree: 50_000,
          balloonSamples: [],
          guestFreeSamples: [],
        })),
      };
      target = (target + 1_000) % 5_000;
      out.push(
        JSON.stringify({
          t: "policy",
          second: s,
          input,
          output: { state: "high", vms: vms.map((name) => ({ name, allocationTarget: 100_000, balloonTarget: target })) },
        }),
      );
    }
    out.push(JSON.stringify({ t: "end", seconds, vms: vms.map((vm) => ({ vm, swapIn: 0, swapOut: 0, shortfallSeconds: 0, peakBalloon: 4_000 })) }));
    const file = join(temp(), "fleet.jsonl");
    writeFileSync(file, `${out.join("\n")}\n`);
    const page = reportOf(file);
    const doc = dom(page);
    const free = Number(doc.querySelector('[data-series="free"]')!.getAttribute("data-points"));
    expect(free).toBeLessThanOrEqual(HOST_POINTS);
    expect(free).toBeGreaterThan(HOST_POINTS / 2);
    expect(doc.querySelector("[data-thinned]")!.textContent).toMatch(
      /^Thinned: the host's series have more than 1,000 points: each is drawn as the lowest and highest values of each run of up to \d+ seconds/,
    );
    // The dip below zero at 20,000 is still drawn: the free line reaches below the zero rule (SVG's y grows downwards).
    const ys = (
      doc
        .querySelector('[data-series="free"]')!
        .getAttribute("d")!
        .match(/-?[\d.]+/g) ?? []
    )
      .map(Number)
      .filter((_, i) => i % 2 === 1);
    const zero = Number(doc.querySelector('[data-chart="free"] g[aria-label="rule"]:not([stroke-dasharray]) line')!.getAttribute("y1"));
    expect(Math.max(...ys)).toBeGreaterThan(zero);
    expect(doc.querySelectorAll('figure[data-chart="vm"]')).toHaveLength(100);
    expect(page.length).toBeLessThan(6 * 2 ** 20);
    expect(doc.querySelectorAll("[data-round]")).toHaveLength(61);
  }, 120_000);
});

describe("vmballoon report: what is not a host trace", () => {
  const dir = temp();
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const host = (s: number) =>
    JSON.stringify({ t: "host", second: s, free: 1, freeBefore: 1, state: null, backed: 0, balloon: 0, swapped: 0, swapIn: 0, swapOut: 0, forced: 0 });
  it.each([
    ["garbage", () => write("garbage.txt", "garbage\n"), /^vmballoon: .*garbage\.txt: line 1: not JSON /],
    [
      "a record neither trace begins with",
      () => write("other.jsonl", '{"t":"sample","x":1}\n'),
      /^vmballoon: .*other\.jsonl: line 1: a trace cannot begin with a "sample" record: it begins with the load's commands \(a host's trace begins with a "host" record\)$/,
    ],
    [
      "a host trace cut short",
      () => write("cut.jsonl", `${lines.slice(0, 40).join("\n")}\n`),
      /^vmballoon: .*cut\.jsonl: line 41: the file ends after second \d+ without the host trace's "end" record: cut short\?$/,
    ],
    [
      "a mistyped field",
      () => write("field.jsonl", `${host(0)}\n${lines[1]!.replace(/"balloon":\d+/, '"balloon":"3"')}\n`),
      /^vmballoon: .*field\.jsonl: line 2: "balloon" of a "vm" record should be a whole number, 0 or more, not "3"$/,
    ],
    [
      "seconds going back",
      () => write("back.jsonl", `${host(5)}\n${host(4)}\n`),
      /^vmballoon: .*back\.jsonl: line 2: second 4 after second 5: the seconds of a trace never go back$/,
    ],
    [
      "a driver's record in a host trace",
      () => write("mixed.jsonl", `${host(0)}\n{"t":"cmd","cycle":0,"cmd":"START","arg":2,"status":0,"result":0}\n`),
      /line 2: a "cmd" record: a host trace has "host", "vm", "policy" and "end" records$/,
    ],
  ])("%s: one line naming what is wrong, exit status 2, no page", (_what, file, message) => {
    const out = join(dir, "never.html");
    const run = vmballoon(["report", file(), "--output", out]);
    expect(run.status).toBe(2);
    expect(run.stderr).not.toMatch(STACK);
    const said = run.stderr.split("\n").filter(Boolean);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(message);
    expect(() => readFileSync(out)).toThrow();
  });

  it("host --report - writes the page alone to stdout; beside --json, both want stdout: exit status 2, nothing run", () => {
    const alone = vmballoon(["host", "--scenario", "idle-tax", "--report", "-"]);
    expect(alone.status).toBe(0);
    expect(alone.stdout).toMatch(/^<!doctype html>[^]*<h1>The host, second by second<\/h1>[^]*<\/html>\n$/);
    const run = vmballoon(["host", "--json", "--report", "-"]);
    expect(run.status).toBe(2);
    expect(run.stderr.split("\n")[0]).toBe("vmballoon: --report - and --json both want stdout; give --report a file");
    expect(run.stdout).toBe("");
  });
});
