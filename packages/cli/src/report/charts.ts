/**
 * The report's charts, drawn by Observable Plot into SVG when the page is
 * written (a DOM from linkedom stands in for the browser's), so that the page
 * needs no script to show them and prints as vectors. Every point, and every
 * mark on the time axis, carries data attributes (`data-series` and
 * `data-cycle`, `data-mark` and `data-cycle`) that tests and readers can
 * count.
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { MARK_KINDS, type CyclePoint, type Mark, type ReportModel } from "./model.js";

/** Above this many cycles a series is drawn as the lowest and highest value of each run of cycles. */
export const MAX_POINTS = 10_000;

export const COLORS = {
  size: "#1d4ed8",
  target: "#d97706",
  guestFree: "#047857",
  rateAlloc: "#7c3aed",
  rateFree: "#0e7490",
  inflated: "#1d4ed8",
  deflated: "#b91c1c",
} as const;

export const MARK_COLORS: Readonly<Record<string, string>> = {
  reset: "#dc2626",
  failure: "#9333ea",
  refusal: "#ea580c",
  "allocation failure": "#a16207",
};
const OTHER_MARK_COLOR = "#0891b2";

export function markColor(kind: string): string {
  return MARK_COLORS[kind] ?? OTHER_MARK_COLOR;
}

const WIDTH = 400;
const FONT = { fontSize: "13px", fontFamily: "system-ui, sans-serif" };

export interface Chart {
  readonly id: string;
  readonly title: string;
  /** What the chart shows, in a sentence. */
  readonly note: string;
  readonly legend: readonly {
    readonly label: string;
    readonly color: string;
    readonly dashed?: boolean;
    readonly shape?: "dot" | "area";
    readonly band?: string;
  }[];
  readonly svg: string;
}

type Row = { readonly cycle: number; readonly value: number };

/** The little of the DOM used here (the CLI is compiled without the DOM's types): linkedom's. */
export type Document = ReturnType<typeof parseHTML>["document"];
interface Element {
  readonly nodeType: number;
  readonly childNodes: ArrayLike<Element>;
  readonly outerHTML: string;
  setAttribute(name: string, value: string): void;
}

/**
 * A series as rows: every cycle's value, or, past {@link MAX_POINTS} cycles,
 * the lowest and the highest of each run of cycles (in the order they came),
 * so that peaks and dips still show.
 */
export function seriesOf(points: readonly CyclePoint[], pick: (p: CyclePoint) => number | undefined): readonly Row[] {
  const rows: Row[] = [];
  for (const p of points) {
    const value = pick(p);
    if (value !== undefined) rows.push({ cycle: p.cycle, value });
  }
  return thin(rows);
}

/** The rows, or past {@link MAX_POINTS} the lowest and highest of each run (see {@link seriesOf}). */
function thin(rows: readonly Row[]): readonly Row[] {
  return thinRows(rows, MAX_POINTS, ["value"]).rows;
}

/**
 * At most `max` of the rows, in their order: all of them, or for each run of
 * `run` consecutive rows the ones that hold the lowest and the highest value
 * of each of `keys` (a row that holds several is kept once), with the
 * shortest run that keeps no more than `max`. Peaks and dips still show.
 */
export function thinRows<R>(rows: readonly R[], max: number, keys: readonly (keyof R & string)[]): { readonly rows: readonly R[]; readonly run: number } {
  if (rows.length <= max) return { rows, run: 1 };
  let run = Math.ceil(rows.length / Math.max(1, Math.floor(max / 2)));
  for (;;) {
    const out: R[] = [];
    for (let start = 0; start < rows.length; start += run) {
      const end = Math.min(rows.length, start + run);
      const keep = new Set<number>();
      for (const key of keys) {
        let low = start;
        let high = start;
        for (let i = start + 1; i < end; i++) {
          if ((rows[i]![key] as number) < (rows[low]![key] as number)) low = i;
          if ((rows[i]![key] as number) > (rows[high]![key] as number)) high = i;
        }
        keep.add(low).add(high);
      }
      for (const i of [...keep].sort((a, b) => a - b)) out.push(rows[i]!);
    }
    if (out.length <= max) return { rows: out, run };
    run = Math.ceil((run * out.length) / max) + 1;
  }
}

/** Cycles per run when {@link seriesOf} thins a series of `cycles` cycles; 1 when it does not. */
export function runLength(cycles: number): number {
  return cycles <= MAX_POINTS ? 1 : Math.ceil(cycles / (MAX_POINTS / 2));
}

/** A render transform that tags each drawn element with data attributes, by the row it stands for. */
export function tagged(rows: readonly object[], attributes: (row: never) => Record<string, string>): Plot.RenderFunction {
  return (index, scales, values, dimensions, context, next) => {
    const g = next!(index, scales, values, dimensions, context) as unknown as Element;
    const shapes = Array.from(g.childNodes).filter((n) => n.nodeType === 1);
    shapes.forEach((shape, i) => {
      for (const [name, value] of Object.entries(attributes(rows[index[i]!] as never))) shape.setAttribute(name, value);
    });
    return g as never;
  };
}

/** A dot for every row, each tagged `data-series` and `data-cycle`. */
function dots(rows: readonly Row[], series: string, color: string): Plot.Markish {
  return Plot.dot(rows, {
    x: "cycle",
    y: "value",
    r: rows.length > 400 ? 1 : 2,
    fill: color,
    render: tagged(rows, (row: Row) => ({ "data-series": series, "data-cycle": String(row.cycle) })),
  });
}

/** A line through a series, with its {@link dots}. */
function lineWithDots(rows: readonly Row[], series: string, color: string, options: { dashed?: boolean; step?: boolean } = {}): Plot.Markish[] {
  const line = Plot.lineY(rows, {
    x: "cycle",
    y: "value",
    stroke: color,
    strokeWidth: 1.5,
    curve: options.step ? "step-after" : "linear",
    ...(options.dashed ? { strokeDasharray: "5 3" } : {}),
  });
  return [line, dots(rows, series, color)];
}

/** A stem from zero to each row's value, with its {@link dots}. */
function stems(rows: readonly Row[], series: string, color: string): Plot.Markish[] {
  return [Plot.ruleX(rows, { x: "cycle", y1: 0, y2: "value", stroke: color, strokeWidth: 1.5 }), dots(rows, series, color)];
}

export function draw(document: Document, marks: Plot.Markish[], options: Plot.PlotOptions): string {
  const svg = Plot.plot({
    document,
    width: WIDTH,
    height: 220,
    marginLeft: 48,
    marginRight: 16,
    style: FONT,
    ...options,
    marks,
  });
  return svg.outerHTML;
}

/** The charts of a report; none for a trace without cycles (a failed load). */
export function drawCharts(model: ReportModel): Chart[] {
  const { points } = model;
  if (points.length === 0) return [];
  const { document } = parseHTML("<!doctype html><html><body></body></html>");
  const first = points[0]!.cycle;
  const last = points[points.length - 1]!.cycle;
  // Every chart has the same time axis: the cycles of the trace, and the unload after them.
  const lastMark = model.marks.reduce((m, mark) => Math.max(m, mark.cycle), last);
  const firstMark = model.marks.reduce((m, mark) => Math.min(m, mark.cycle), first);
  const x = { label: "cycle", domain: [firstMark, Math.max(lastMark, firstMark + 1)], nice: false };
  const thinned = runLength(points.length) > 1;
  const every = thinned ? `the lowest and highest of each ${runLength(points.length)} cycles` : "one point per cycle";
  const charts: Chart[] = [];

  /** A chart of pages over the cycles: its series' marks, a zero line, the shared time axis. */
  const pages = (id: string, title: string, note: string, legend: Chart["legend"], marks: Plot.Markish[], label = "pages"): Chart => ({
    id,
    title,
    note,
    legend,
    svg: draw(document, [...marks, Plot.ruleY([0])], { x, y: { label, grid: true, tickFormat: "~s" } }),
  });

  const size = seriesOf(points, (p) => p.size);
  const target = seriesOf(points, (p) => p.target);
  charts.push(
    pages(
      "size",
      "Balloon size and target",
      `Pages in the balloon after each cycle against the target the monitor last gave (${every}).`,
      [
        { label: "size", color: COLORS.size },
        { label: "target", color: COLORS.target, dashed: true },
      ],
      [...lineWithDots(target, "target", COLORS.target, { dashed: true, step: true }), ...lineWithDots(size, "size", COLORS.size)],
    ),
  );

  charts.push(eventsChart(document, model.marks, x));

  const free = seriesOf(points, (p) => p.guestFree);
  if (free.length > 0) {
    charts.push(
      pages(
        "guest-free",
        "The guest's free pages",
        `Pages the guest had free after each cycle (${every}).`,
        [{ label: "free pages", color: COLORS.guestFree }],
        lineWithDots(free, "guestFree", COLORS.guestFree),
      ),
    );
  }

  const rateAlloc = seriesOf(points, (p) => p.rateAlloc);
  const rateFree = seriesOf(points, (p) => p.rateFree);
  if (rateAlloc.length > 0 || rateFree.length > 0) {
    charts.push(
      pages(
        "rates",
        "Rate control",
        "The driver's rates after each cycle: sleeping allocations (it slows them under memory pressure) and frees (it slows them when UNLOCK fails), pages a cycle.",
        [
          { label: "sleeping allocations", color: COLORS.rateAlloc },
          { label: "frees", color: COLORS.rateFree },
        ],
        [...lineWithDots(rateAlloc, "rateAlloc", COLORS.rateAlloc, { step: true }), ...lineWithDots(rateFree, "rateFree", COLORS.rateFree, { step: true })],
        "pages a cycle",
      ),
    );
  } else {
    // Today's driver has no rate control: what it put in and took out each cycle instead.
    const changes = points.map((p, i) => ({ cycle: p.cycle, value: p.size - (i === 0 ? 0 : points[i - 1]!.size) }));
    charts.push(
      pages(
        "rates",
        "Inflated and deflated each cycle",
        "This driver has no rate control: the pages the balloon grew by (up) and shrank by (down) in each cycle.",
        [
          { label: "inflated", color: COLORS.inflated },
          { label: "deflated", color: COLORS.deflated },
        ],
        [
          ...stems(thin(changes.filter((c) => c.value > 0)), "inflated", COLORS.inflated),
          ...stems(thin(changes.filter((c) => c.value < 0)), "deflated", COLORS.deflated),
        ],
      ),
    );
  }
  return charts;
}

/** The time axis's marks: one row of dots per kind, a dot for each cycle where that happened, bigger the more often. */
function eventsChart(document: Document, marks: readonly Mark[], x: Plot.ScaleOptions): Chart {
  const present = new Set(marks.map((m) => m.kind));
  const kinds = [...MARK_KINDS, ...[...present].filter((k) => !(MARK_KINDS as readonly string[]).includes(k)).sort()];
  const title = (m: Mark) => `cycle ${m.cycle}: ${[...m.causes].map(([cause, n]) => (n > 1 ? `${cause} ×${n}` : cause)).join(", ")}`;
  return {
    id: "events",
    title: "Failures, refusals and resets",
    note: "Each dot is a cycle in which that happened (hover for what); a bigger dot, more times.",
    legend: kinds.map((kind) => ({ label: kind, color: markColor(kind), shape: "dot" as const })),
    svg: draw(
      document,
      [
        Plot.gridY({ stroke: "#cbd5e1", strokeOpacity: 1 }),
        Plot.dot(marks, {
          x: "cycle",
          y: "kind",
          r: (m: Mark) => Math.min(8, 3 + Math.log2(m.count)),
          fill: (m: Mark) => markColor(m.kind),
          title,
          render: tagged(marks, (m: Mark) => ({ "data-mark": m.kind, "data-cycle": String(m.cycle), "data-count": String(m.count) })),
        }),
      ],
      {
        x,
        y: { domain: kinds, label: null, type: "point", padding: 0.6 },
        height: 40 + 28 * kinds.length,
        marginLeft: 124,
        color: { type: "identity" },
        r: { type: "identity" },
      },
    ),
  };
}
