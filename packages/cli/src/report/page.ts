/**
 * The report as one HTML file: the charts inline as SVG, the styles inline,
 * no script, no font, nothing fetched. It reads on a phone (one column, no
 * horizontal scroll at 390 px), on a desktop (two columns of charts) and on
 * paper (print styles: no backgrounds, charts kept whole on a page).
 */
import { driver } from "@vmballoon/core/sim";
import { drawCharts, type Chart } from "./charts.js";
import type { ReportModel } from "./model.js";
import { mebibytes } from "../output.js";

declare const __VERSION__: string;

const ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A protocol name that may break after its underscores on a narrow screen: VMCI_DOORBELL_SET. */
const breakable = (name: string) => escape(name).replace(/_/g, "_<wbr>");

const number = (n: number) => n.toLocaleString("en-US");

const STYLE = `
:root { color-scheme: light; --ink: #0f172a; --muted: #475569; --rule: #e2e8f0; --panel: #f8fafc; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 0.25rem; line-height: 1.2; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.5rem; }
p { margin: 0.25rem 0 0.75rem; }
.lede { color: var(--muted); }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 9.5rem), 1fr)); gap: 0.5rem; margin: 1rem 0; padding: 0; }
@media (min-width: 40rem) { .summary { grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); } }
.summary div { background: var(--panel); border: 1px solid var(--rule); border-radius: 0.5rem; padding: 0.5rem 0.75rem; min-width: 0; }
.summary dt { font-size: 0.8rem; color: var(--muted); }
.summary dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: 1fr; gap: 1rem; }
@media (min-width: 56rem) { .charts { grid-template-columns: 1fr 1fr; } }
figure { margin: 0; padding: 0.75rem; border: 1px solid var(--rule); border-radius: 0.5rem; min-width: 0; break-inside: avoid; page-break-inside: avoid; }
figure h3 { margin: 0 0 0.25rem; font-size: 1rem; }
figure svg { display: block; width: 100%; height: auto; max-width: 100%; }
figcaption { font-size: 0.85rem; color: var(--muted); }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; margin: 0.25rem 0; padding: 0; font-size: 0.85rem; }
.legend li { display: inline-flex; align-items: center; gap: 0.35rem; }
.swatch { display: inline-block; width: 1.1rem; height: 0; border-top: 3px solid; }
.swatch.dashed { border-top-style: dashed; }
.swatch.dot { width: 0.7rem; height: 0.7rem; border: 0; border-radius: 50%; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--rule); vertical-align: top; overflow-wrap: anywhere; }
th { overflow-wrap: normal; }
td.n, th.n { white-space: nowrap; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.counters { columns: 2 16rem; column-gap: 2rem; }
.counters table { break-inside: auto; }
pre { font: 0.8rem/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; background: var(--panel); border: 1px solid var(--rule); border-radius: 0.5rem; padding: 0.75rem; overflow-x: auto; max-width: 100%; }
details { margin: 0.5rem 0; }
footer { margin: 2rem 0 1rem; font-size: 0.8rem; color: var(--muted); }
@media (max-width: 30rem) { main { padding: 0.75rem; } pre { font-size: 0.7rem; } }
@media print {
  @page { margin: 1.5cm; }
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  .charts { display: block; }
  figure { margin: 0 0 0.5cm; border: 0; padding: 0; }
  figure svg { max-width: 16cm; }
  .summary div, pre { background: none; }
  pre { white-space: pre-wrap; overflow: visible; }
  h2 { break-after: avoid; page-break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`;

function legend(chart: Chart): string {
  const items = chart.legend.map((item) => {
    const kind = chart.id === "events" ? "dot" : item.dashed ? "dashed" : "";
    const style = kind === "dot" ? `background:${item.color}` : `border-color:${item.color}`;
    return `<li><span class="swatch ${kind}" style="${style}"></span>${escape(item.label)}</li>`;
  });
  return `<ul class="legend">${items.join("")}</ul>`;
}

function figure(chart: Chart): string {
  return `<figure data-chart="${chart.id}" id="chart-${chart.id}">
<h3>${escape(chart.title)}</h3>
${legend(chart)}
${chart.svg}
<figcaption>${escape(chart.note)}</figcaption>
</figure>`;
}

function summary(model: ReportModel): string {
  const items: [string, string][] = [];
  const { points, ending } = model;
  const last = points[points.length - 1];
  items.push(["driver", driver(model.driver).description]);
  items.push(["cycles", points.length === 0 ? "none" : `${number(points.length)} (cycle ${points[0]!.cycle} to ${last!.cycle})`]);
  if (last !== undefined) {
    items.push(["balloon at the end", `${number(last.size)} pages (${mebibytes(last.size)})`]);
    items.push(["target at the end", `${number(last.target)} pages (${mebibytes(last.target)})`]);
  }
  if (model.peak !== undefined) items.push(["peak", `${number(model.peak.size)} pages at cycle ${model.peak.cycle}`]);
  const sent = model.commands.reduce((n, c) => n + c.sent, 0);
  const failed = model.commands.reduce((n, c) => n + c.failed, 0);
  items.push(["commands", `${number(sent)} sent, ${number(failed)} failed`]);
  const count = (kind: string) => model.marks.filter((m) => m.kind === kind).length;
  items.push(["cycles with a reset", number(count("reset"))]);
  items.push(["cycles with refusals", number(count("refusal"))]);
  const end =
    ending.kind === "initFailed"
      ? "the load failed (START or GUEST_ID)"
      : ending.kind === "exit"
        ? `unloaded: balloon ${number(ending.size)} pages${ending.guestFree === undefined ? "" : `, the guest has ${number(ending.guestFree)} free pages`}`
        : ending.kind === "exitHang"
          ? `the unload hung with ${number(ending.size)} pages in the balloon`
          : "still loaded";
  items.push(["end", end]);
  return `<dl class="summary">${items.map(([k, v]) => `<div><dt>${escape(k)}</dt><dd>${escape(v)}</dd></div>`).join("")}</dl>`;
}

function commandsTable(model: ReportModel): string {
  if (model.commands.length === 0) return "<p>The trace has no command records.</p>";
  const rows = model.commands.map((c) => {
    const statuses = [...c.statuses].map(([name, n]) => `${breakable(name)}&nbsp;×${number(n)}`).join(", ");
    return `<tr data-command="${escape(c.name)}"><td>${breakable(c.name)}</td><td class="n">${number(c.sent)}</td><td class="n">${number(c.failed)}</td><td>${statuses}</td></tr>`;
  });
  return `<div class="table-wrap"><table><thead><tr><th>command</th><th class="n">sent</th><th class="n">failed</th><th>failures by status</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
}

function otherRecords(model: ReportModel): string {
  if (model.otherKinds.size === 0) return "";
  const rows = [...model.otherKinds].map(([kind, n]) => `<tr><td>${escape(kind)}</td><td class="n">${number(n)}</td></tr>`);
  return `<h2>Other records</h2><p>Events of the driver's environment, marked on the time axis above.</p><div class="table-wrap"><table><thead><tr><th>record</th><th class="n">count</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
}

function counters(model: ReportModel): string {
  if (model.finalStats.length === 0) return "";
  const rows = model.finalStats.map(([name, value]) => `<tr><td>${escape(name)}</td><td class="n">${escape(value)}</td></tr>`);
  return `<h2>Counters after the last cycle</h2><div class="counters"><table><tbody>${rows.join("")}</tbody></table></div>`;
}

function debugfs(model: ReportModel): string {
  const texts = model.debugfs;
  if (texts.length === 0) return "";
  const final = texts[texts.length - 1]!;
  const earlier = texts
    .slice(0, -1)
    .map((d) => `<details><summary>printed ${d.cycle === undefined ? "earlier" : `in cycle ${d.cycle}`}</summary><pre>${escape(d.text)}</pre></details>`);
  return `<h2>debugfs <code>vmmemctl</code> at the end</h2><pre data-debugfs="final">${escape(final.text)}</pre>${earlier.join("")}`;
}

/** The whole page for a model: the same model gives the same bytes. */
export function renderPage(model: ReportModel): string {
  const charts = drawCharts(model);
  const title = `vmballoon report: ${model.points.length} cycles`;
  const lede =
    model.ending.kind === "initFailed"
      ? "The balloon did not load: the driver's START or GUEST_ID failed, and nothing ran."
      : `The balloon following its target, cycle by cycle (a cycle is a second in the kernel), from a trace of ${number(model.records)} records.`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vmballoon ${escape(__VERSION__)}">
<title>${escape(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<header>
<h1>The balloon, cycle by cycle</h1>
<p class="lede">${escape(lede)}</p>
</header>
${summary(model)}
${charts.length > 0 ? `<section class="charts">${charts.map(figure).join("\n")}</section>` : ""}
<h2>Commands</h2>
${commandsTable(model)}
${otherRecords(model)}
${counters(model)}
${debugfs(model)}
<footer>Written by vmballoon ${escape(__VERSION__)} from the trace alone.</footer>
</main>
</body>
</html>
`;
}
