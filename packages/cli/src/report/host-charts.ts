/**
 * The host report's charts, drawn as the driver's are (Observable Plot into
 * SVG on linkedom's DOM, when the page is written): the host's free memory
 * against ESX's thresholds with its state as a band, the host's memory, its
 * swapping, the VMs' shortfall, the policy's rounds on the time axis, and for
 * each VM its memory stacked (backed, ballooned, swapped) under its demand and
 * its working set against ESX's estimate. Every series' path carries
 * `data-series` (and `data-vm`, `data-points`); every round's dot
 * `data-round` and `data-second`. A long run's series are thinned
 * ({@link thinRows}) to at most {@link HOST_POINTS} points, and each VM's to
 * its share of {@link VM_POINTS}, so that a hundred VMs over hours still make
 * a page a browser opens.
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { ESX_STATES, type EsxState } from "@vmballoon/host";
import { draw as drawChart, tagged, thinRows, type Chart, type Document } from "./charts.js";
import { ROUND_KINDS, estimatedPages, roundKind, type HostPoint, type HostReportModel, type Round, type VmPoint, type VmSeries } from "./host-model.js";

/** At most this many points in each of the host's series: a chart is 400 units wide, and more than two a unit do not show. */
export const HOST_POINTS = 1_000;
/** The points of all the VMs' series together: each VM gets its share, from {@link VM_POINTS_LEAST} to {@link VM_POINTS_MOST}. */
export const VM_POINTS = 12_000;
export const VM_POINTS_LEAST = 150;
export const VM_POINTS_MOST = 800;

export const HOST_COLORS = {
  free: "#1d4ed8",
  backed: "#3b82f6",
  balloon: "#f59e0b",
  swapped: "#dc2626",
  demand: "#0f172a",
  active: "#047857",
  estimate: "#0891b2",
  shortfall: "#be123c",
  swapIn: "#b91c1c",
  swapOut: "#7c3aed",
  forced: "#0f172a",
  hostMemory: "#475569",
} as const;

/** The state band's fills (light) and the thresholds' lines (dark). */
export const STATE_COLORS: Readonly<Record<EsxState, { readonly band: string; readonly line: string }>> = {
  high: { band: "#dcfce7", line: "#15803d" },
  soft: { band: "#fef9c3", line: "#a16207" },
  hard: { band: "#ffedd5", line: "#c2410c" },
  low: { band: "#fee2e2", line: "#b91c1c" },
};

export const ROUND_COLORS: Readonly<Record<(typeof ROUND_KINDS)[number], string>> = {
  "targets raised": "#d97706",
  "targets lowered": "#047857",
  "raised and lowered": "#7c3aed",
  "no change": "#94a3b8",
};

/** Axis labels: 0, 500, 26.2K, 1.31M (one prefix a tick, not one for the whole axis). */
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumSignificantDigits: 3 });
const tick = (n: number) => compact.format(n);

/** A y scale of pages from zero, with room even when every value is zero (a flat line at the bottom, not an axis of NaN). */
function fromZero(rows: readonly object[], keys: readonly string[], label: string): Plot.ScaleOptions {
  let most = 0;
  for (const row of rows) for (const key of keys) most = Math.max(most, (row as Record<string, number>)[key] ?? 0);
  return { label, grid: true, tickFormat: tick, domain: [0, Math.max(1, most)], nice: true, ...(most === 0 ? { ticks: [0] } : {}) };
}

/** The points each VM's series may have, with `vms` VMs. */
export function vmPoints(vms: number): number {
  return Math.min(VM_POINTS_MOST, Math.max(VM_POINTS_LEAST, Math.floor(VM_POINTS / Math.max(1, vms))));
}

/** A chart as the driver's page draws one, with room above for the y axis's label and below for the x axis's. */
function draw(document: Document, marks: Plot.Markish[], options: Plot.PlotOptions): string {
  return drawChart(document, marks, { marginTop: 30, marginBottom: 42, marginLeft: 56, ...options });
}

/** A render transform that puts the same attributes on every element the mark draws (a line's or an area's path). */
function tagAll(attributes: Record<string, string>): Plot.RenderFunction {
  return (index, scales, values, dimensions, context, next) => {
    const g = next!(index, scales, values, dimensions, context) as unknown as {
      childNodes: ArrayLike<{ nodeType: number; setAttribute(n: string, v: string): void }>;
    };
    for (const shape of Array.from(g.childNodes))
      if (shape.nodeType === 1) for (const [name, value] of Object.entries(attributes)) shape.setAttribute(name, value);
    return g as never;
  };
}

const label = (series: string, rows: readonly object[], vm?: string) => ({
  "data-series": series,
  "data-points": String(rows.length),
  ...(vm === undefined ? {} : { "data-vm": vm }),
});

/** A line through `y` of the rows, by second. */
function line<R extends object>(
  rows: readonly R[],
  y: keyof R & string,
  series: string,
  color: string,
  options: { dashed?: boolean; step?: boolean; vm?: string } = {},
): Plot.Markish {
  return Plot.lineY(rows, {
    x: "second",
    y,
    stroke: color,
    strokeWidth: 1.5,
    curve: options.step ? "step-after" : "linear",
    ...(options.dashed ? { strokeDasharray: "5 3" } : {}),
    render: tagAll(label(series, rows, options.vm)),
  });
}

/** An area between `y1` and `y2` of the rows: one band of a stack. */
function band<R extends object>(rows: readonly R[], y1: keyof R & string, y2: keyof R & string, series: string, color: string, vm?: string): Plot.Markish {
  return Plot.areaY(rows, { x: "second", y1, y2, fill: color, fillOpacity: 0.75, render: tagAll(label(series, rows, vm)) });
}

/** Rows stacked bottom up: backed, ballooned, swapped (and the sums they reach). */
function stacked<R extends { second: number; backed: number; balloon: number; swapped: number }>(rows: readonly R[]) {
  return rows.map((r) => ({ ...r, zero: 0, toBacked: r.backed, toBalloon: r.backed + r.balloon, toSwapped: r.backed + r.balloon + r.swapped }));
}

function stackMarks(rows: ReturnType<typeof stacked>, vm?: string): Plot.Markish[] {
  return [
    band(rows, "zero", "toBacked", "backed", HOST_COLORS.backed, vm),
    band(rows, "toBacked", "toBalloon", "balloon", HOST_COLORS.balloon, vm),
    band(rows, "toBalloon", "toSwapped", "swapped", HOST_COLORS.swapped, vm),
  ];
}

/** The charts' common figures: the time axis, and how much each series was thinned. */
export interface HostCharts {
  readonly charts: readonly Chart[];
  /** Each VM's two charts (memory, working set), in the trace's order. */
  readonly vms: readonly { readonly vm: VmSeries; readonly memory: string; readonly working: string }[];
  /** The longest run of rows a thinned host series was drawn by (1: not thinned): seconds, as the host has a record each second. */
  readonly hostRun: number;
  /** The same for the VMs' series (runs of their records, which may be every N seconds), and the points each may have. */
  readonly vmRun: number;
  readonly vmPoints: number;
}

export function drawHostCharts(model: HostReportModel): HostCharts {
  const { host } = model;
  if (host.length === 0) return { charts: [], vms: [], hostRun: 1, vmRun: 1, vmPoints: vmPoints(model.vms.length) };
  const { document } = parseHTML("<!doctype html><html><body></body></html>");
  const first = host[0]!.second;
  const last = host[host.length - 1]!.second;
  const x = { label: "second", domain: [first, Math.max(last, first + 1)], nice: false, tickFormat: tick, labelOffset: 36 };
  let hostRun = 1;
  const thin = <R>(rows: readonly R[], max: number, keys: readonly (keyof R & string)[], count: (run: number) => void) => {
    const out = thinRows(rows, max, keys);
    count(out.run);
    return out.rows;
  };
  const hostThin = <R>(rows: readonly R[], keys: readonly (keyof R & string)[]) => thin(rows, HOST_POINTS, keys, (run) => (hostRun = Math.max(hostRun, run)));

  const charts: Chart[] = [freeChart(document, model, x, hostThin(host, ["free"]))];

  const memory = stacked(hostThin(host, ["backed", "balloon", "swapped"]));
  const forVms =
    model.hostPages === undefined ? [] : [Plot.ruleY([model.hostPages - model.overheadPages], { stroke: HOST_COLORS.hostMemory, strokeDasharray: "2 3" })];
  charts.push({
    id: "host-memory",
    title: "The host's memory",
    note: "Pages of all the VMs together: backed by the host, in balloons, swapped out by the host; the dotted line is the host's memory for VMs (its pages less its overhead), and the gap under it is free memory.",
    legend: [
      { label: "backed", color: HOST_COLORS.backed, shape: "area" },
      { label: "ballooned", color: HOST_COLORS.balloon, shape: "area" },
      { label: "swapped", color: HOST_COLORS.swapped, shape: "area" },
      { label: "memory for VMs", color: HOST_COLORS.hostMemory, dashed: true },
    ],
    svg: draw(document, [...stackMarks(memory), ...forVms, Plot.ruleY([0])], { x, y: { label: "pages", grid: true, tickFormat: tick } }),
  });

  const swap = hostThin(host, ["swapIn", "swapOut", "forced"]);
  charts.push({
    id: "swap",
    title: "Host swapping",
    note:
      "Pages the host swapped in (the VMs' host-swap faults: what ballooning exists to avoid) and out each second, and of those out, the ones forced because free memory fell below zero." +
      (model.swapOut === 0 ? " The host never swapped in this run." : ""),
    legend: [
      { label: "swapped in", color: HOST_COLORS.swapIn },
      { label: "swapped out", color: HOST_COLORS.swapOut },
      { label: "forced out", color: HOST_COLORS.forced, dashed: true },
    ],
    svg: draw(
      document,
      [
        line(swap, "swapIn", "swapIn", HOST_COLORS.swapIn),
        line(swap, "swapOut", "swapOut", HOST_COLORS.swapOut),
        line(swap, "forced", "forced", HOST_COLORS.forced, { dashed: true }),
        Plot.ruleY([0]),
      ],
      { x, y: fromZero(swap, ["swapIn", "swapOut", "forced"], "pages a second") },
    ),
  });

  const shortfall = hostThin(model.shortfall, ["value"]);
  charts.push({
    id: "shortfall",
    title: "Shortfall, all VMs",
    note:
      "Pages the VMs' workloads wanted and their guests could not give (they page inside the guest instead), summed over the VMs; each VM's is in its own chart below." +
      (model.shortfall.every((s) => s.value === 0) ? " No VM was ever short in this run." : ""),
    legend: [{ label: "shortfall", color: HOST_COLORS.shortfall, shape: "area" }],
    svg: draw(
      document,
      [
        Plot.areaY(shortfall, { x: "second", y: "value", fill: HOST_COLORS.shortfall, fillOpacity: 0.75, render: tagAll(label("shortfall", shortfall)) }),
        Plot.ruleY([0]),
      ],
      { x, y: fromZero(shortfall, ["value"], "pages") },
    ),
  });

  charts.push(roundsChart(document, model, x));

  const budget = vmPoints(model.vms.length);
  let vmRun = 1;
  const vmThin = <R>(rows: readonly R[], keys: readonly (keyof R & string)[]) => thin(rows, budget, keys, (run) => (vmRun = Math.max(vmRun, run)));
  const vms = model.vms.map((vm) => ({ vm, ...vmCharts(document, vm, x, vmThin) }));
  return { charts, vms, hostRun, vmRun, vmPoints: budget };
}

function freeChart(document: Document, model: HostReportModel, x: Plot.ScaleOptions, rows: readonly HostPoint[]): Chart {
  const freeLine = line(rows, "free", "free", HOST_COLORS.free);
  const policy = model.policy === "mom" ? "MoM" : model.policy === "proxmox" ? "Proxmox" : (model.policy ?? "the policy");
  if (model.thresholds.length === 0) {
    return {
      id: "free",
      title: "Free host memory",
      note: `${policy} has no free-memory states and no thresholds: free memory alone. Below zero the host pages synchronously.`,
      legend: [{ label: "free", color: HOST_COLORS.free }],
      svg: draw(document, [freeLine, Plot.ruleY([0])], { x, y: { label: "free pages", grid: true, tickFormat: tick } }),
    };
  }
  const spans = model.thresholds;
  const now = spans[spans.length - 1]!;
  const rules = ESX_STATES.map((state) =>
    Plot.ruleY(spans, {
      y: state,
      x1: "from",
      x2: "to",
      stroke: STATE_COLORS[state].line,
      strokeWidth: 1.5,
      strokeDasharray: "6 3",
      render: tagAll({ "data-threshold": state }),
    }),
  );
  const bands = Plot.rect(model.states, {
    x1: "from",
    x2: "to",
    fill: (s: { state: EsxState }) => STATE_COLORS[s.state].band,
    render: tagged(model.states, (s: { state: EsxState; from: number }) => ({ "data-state": s.state, "data-second": String(s.from) })),
  });
  const least = Math.min(0, model.leastFree?.free ?? 0);
  const most = Math.max(now.high, ...rows.map((r) => r.free));
  // Ticks at the thresholds (every span's: the percents rarely move) and at a quarter, half and all of the host.
  const levels = spans.flatMap((span) => ESX_STATES.map((state) => span[state]));
  const ticks = [...new Set([least, 0, ...levels, ...[0.25, 0.5, 1].map((f) => Math.round((model.hostPages ?? 0) * f))])].filter(
    (t) => t >= least && t <= most,
  );
  return {
    id: "free",
    title: "Free host memory and ESX's states",
    note:
      `Free memory after each second against the thresholds of the high, soft, hard and low states (${spans.length > 1 ? "they moved when the percents did" : "fixed for the run"}); ` +
      "the band behind is the state the host was in, the dashed line of its colour the threshold it needs free. The scale is logarithmic above the low threshold, so that the four (a few percent of the host) can be told apart.",
    legend: [
      { label: "free", color: HOST_COLORS.free },
      ...ESX_STATES.map((state) => ({ label: state, color: STATE_COLORS[state].line, band: STATE_COLORS[state].band })),
    ],
    svg: draw(document, [bands, ...rules, freeLine, Plot.ruleY([0])], {
      x,
      y: { label: "free pages", type: "symlog", constant: Math.max(1, now.low), domain: [least, most], ticks, tickFormat: tick, grid: true },
      color: { type: "identity" },
    }),
  };
}

function roundTitle(round: Round): string {
  const head = `second ${round.second}${round.state === null ? "" : ` (${round.state})`}`;
  if (round.changes.length === 0) return `${head}: no target changed`;
  const shown = round.changes.slice(0, 8).map((c) => `${c.vm} ${c.from.toLocaleString("en-US")} → ${c.to.toLocaleString("en-US")}`);
  const more = round.changes.length > 8 ? `, and ${round.changes.length - 8} more` : "";
  return `${head}: ${shown.join(", ")}${more} pages`;
}

/** The policy's rounds on the time axis: a row for what each did to the balloon targets; hover for the targets. */
function roundsChart(document: Document, model: HostReportModel, x: Plot.ScaleOptions): Chart {
  const rows = model.rounds.map((round) => ({ second: round.second, kind: roundKind(round), round }));
  return {
    id: "rounds",
    title: "The policy's rounds",
    note: "Each dot is a round of the policy, in the row of what it did to the VMs' balloon targets (hover for the targets it changed; the table below lists them).",
    legend: ROUND_KINDS.map((kind) => ({ label: kind, color: ROUND_COLORS[kind], shape: "dot" as const })),
    svg: draw(
      document,
      [
        Plot.gridY({ stroke: "#cbd5e1", strokeOpacity: 1 }),
        Plot.dot(rows, {
          x: "second",
          y: "kind",
          r: rows.length > 400 ? 2 : 3,
          fill: (r: (typeof rows)[number]) => ROUND_COLORS[r.kind],
          title: (r: (typeof rows)[number]) => roundTitle(r.round),
          render: tagged(rows, (r: (typeof rows)[number]) => ({ "data-round": r.kind, "data-second": String(r.second) })),
        }),
      ],
      {
        x,
        y: { domain: [...ROUND_KINDS], label: null, type: "point", padding: 0.6 },
        height: 52 + 28 * ROUND_KINDS.length,
        marginLeft: 136,
        color: { type: "identity" },
      },
    ),
  };
}

/** A VM's two charts: its memory stacked, with its workload's demand, and its working set against ESX's estimate, with its shortfall. */
function vmCharts(
  document: Document,
  vm: VmSeries,
  x: Plot.ScaleOptions,
  thin: <R>(rows: readonly R[], keys: readonly (keyof R & string)[]) => readonly R[],
): { memory: string; working: string } {
  const name = vm.name;
  const memory = stacked(thin(vm.points, ["backed", "balloon", "swapped", "demand"]));
  const top = vm.pages === undefined ? [] : [Plot.ruleY([vm.pages], { stroke: HOST_COLORS.hostMemory, strokeDasharray: "2 3" })];
  const memorySvg = draw(document, [...stackMarks(memory, name), line(memory, "demand", "demand", HOST_COLORS.demand, { vm: name }), ...top, Plot.ruleY([0])], {
    x,
    y: { label: "memory, pages", grid: true, tickFormat: tick },
    height: 190,
  });
  const working = thin(
    vm.points.map((p: VmPoint) => ({ second: p.second, active: p.active, shortfall: p.shortfall, estimated: estimatedPages(vm, p) })),
    ["active", "shortfall"],
  );
  const estimated = working.filter((w) => w.estimated !== undefined);
  const workingSvg = draw(
    document,
    [
      // The zero rule first: a small working set runs along it and stays in sight.
      Plot.ruleY([0]),
      Plot.areaY(working, { x: "second", y: "shortfall", fill: HOST_COLORS.shortfall, fillOpacity: 0.75, render: tagAll(label("shortfall", working, name)) }),
      line(working, "active", "active", HOST_COLORS.active, { vm: name }),
      ...(estimated.length > 0 ? [line(estimated, "estimated", "estimate", HOST_COLORS.estimate, { dashed: true, step: true, vm: name })] : []),
    ],
    { x, y: fromZero(working, ["active", "shortfall", "estimated"], "working set, pages"), height: 150 },
  );
  return { memory: memorySvg, working: workingSvg };
}
