/**
 * The host's report as one HTML page, in the driver's report's frame (its
 * styles, summary boxes, figures and tables: `page.ts`): a summary, the
 * host's charts, each VM's, the rounds that changed a target, and the VMs'
 * totals from the trace's `end` record.
 */
import { DRIVER_NAMES, driver, type DriverName } from "@vmballoon/core/sim";
import { ESX_STATES } from "@vmballoon/host";
import { PAGE_SIZE } from "@vmballoon/protocol";
import { drawHostCharts, HOST_COLORS, HOST_POINTS, type HostCharts } from "./host-charts.js";
import type { HostReportModel } from "./host-model.js";
import { mebibytes } from "../output.js";
import { escape, figure, legend, number, pageFrame, summaryList, table } from "./page.js";

/** Rounds listed in the table at most; the chart has them all. */
export const ROUND_ROWS = 200;

const POLICIES: Readonly<Record<string, string>> = { esx: "ESX", mom: "oVirt MoM", proxmox: "Proxmox VE" };
/** How the page names a VM's driver: core's title for a driver, or the VM's word for none. */
const driverTitle = (name: string): string =>
  (DRIVER_NAMES as readonly string[]).includes(name) ? driver(name as DriverName).title : name === "none" ? "no balloon driver" : name;

const pages = (n: number) => `${number(n)} pages (${mebibytes(n)})`;
const policyName = (model: HostReportModel) => (model.policy === undefined ? "no policy round" : (POLICIES[model.policy] ?? model.policy));

function summary(model: HostReportModel): string {
  const { host } = model;
  const items: [string, string][] = [];
  const params = Object.entries(model.params);
  items.push(["policy", `${policyName(model)}${params.length > 0 ? ` (${params.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(", ")})` : ""}`]);
  items.push(["VMs", number(model.vms.length)]);
  items.push(["seconds", host.length === 0 ? "none" : `${number(host.length)} (second ${host[0]!.second} to ${host[host.length - 1]!.second})`]);
  if (model.hostPages !== undefined)
    items.push(["host memory", `${pages(model.hostPages)}${model.overheadPages > 0 ? `, ${number(model.overheadPages)} of it overhead` : ""}`]);
  if (model.leastFree !== undefined) items.push(["least free", `${number(model.leastFree.free)} pages at second ${model.leastFree.second}`]);
  if (model.thresholds.length > 0) {
    items.push(["seconds in each state", ESX_STATES.map((s) => `${s} ${number(model.stateSeconds[s])}`).join(", ")]);
  }
  items.push(["swapped out, in", `${number(model.swapOut)} pages out (${number(model.forced)} forced), ${number(model.swapIn)} in`]);
  const changed = model.rounds.filter((r) => r.changes.length > 0).length;
  items.push(["rounds", `${number(model.rounds.length)}, ${number(changed)} of them changed a target`]);
  return summaryList(items);
}

/** What the thinning did, said once, or nothing when every point is drawn. */
function thinning(drawn: HostCharts): string {
  const parts: string[] = [];
  if (drawn.hostRun > 1)
    parts.push(
      `the host's series have more than ${number(HOST_POINTS)} points: each is drawn as the lowest and highest values of each run of up to ${number(drawn.hostRun)} seconds`,
    );
  if (drawn.vmRun > 1)
    parts.push(`each VM's series have more than ${number(drawn.vmPoints)} points: drawn the same way, runs of up to ${number(drawn.vmRun)} of its records`);
  return parts.length === 0 ? "" : `<p class="lede" data-thinned>Thinned: ${escape(parts.join("; "))}. Peaks and dips are kept; the tables are exact.</p>`;
}

function vmSection(model: HostReportModel, drawn: HostCharts): string {
  if (drawn.vms.length === 0) return "";
  const esx = model.policy === "esx";
  const figures = drawn.vms.map(({ vm, memory, working }) => {
    const what = [
      vm.pages === undefined ? undefined : `${number((vm.pages * PAGE_SIZE) / 2 ** 20)} MiB`,
      vm.driver === undefined ? undefined : driverTitle(vm.driver),
    ]
      .filter(Boolean)
      .join(", ");
    const t = vm.totals;
    const caption =
      t === undefined
        ? "The trace has no end record for it."
        : `Peak balloon ${number(t.peakBalloon)} pages; the host swapped ${number(t.swapOut)} pages out and ${number(t.swapIn)} in; shortfall ${number(t.shortfallSeconds)} page-seconds.`;
    return `<figure data-chart="vm" data-vm="${escape(vm.name)}">
<h3>${escape(vm.name)}${what === "" ? "" : ` <small>${escape(what)}</small>`}</h3>
${memory}
${working}
<figcaption>${escape(caption)}</figcaption>
</figure>`;
  });
  const memoryLegend = legend([
    { label: "backed", color: HOST_COLORS.backed, shape: "area" },
    { label: "ballooned", color: HOST_COLORS.balloon, shape: "area" },
    { label: "swapped", color: HOST_COLORS.swapped, shape: "area" },
    { label: "demand", color: HOST_COLORS.demand },
  ]);
  const workingLegend = legend([
    { label: "working set (true)", color: HOST_COLORS.active },
    ...(esx ? [{ label: "ESX's estimate × pages", color: HOST_COLORS.estimate, dashed: true }] : []),
    { label: "shortfall", color: HOST_COLORS.shortfall, shape: "area" as const },
  ]);
  return `<h2>Each VM</h2>
<p>Upper chart: the VM's memory, stacked (host-backed, in the balloon, swapped by the host), and its workload's demand; the dotted line is its memory. The balloon targets the policy set are in the table of rounds below.</p>
${memoryLegend}
<p>Lower chart: the pages its workload touched in the last minute (its true working set)${esx ? ", the working set ESX estimated by sampling" : ` (${escape(policyName(model))} makes no estimate)`}, and its shortfall.</p>
${workingLegend}
<section class="charts">${figures.join("\n")}</section>`;
}

function roundsTable(model: HostReportModel): string {
  const changed = model.rounds.filter((r) => r.changes.length > 0);
  if (model.rounds.length === 0) return "<h2>Rounds</h2><p>The trace has no policy round.</p>";
  if (changed.length === 0) return `<h2>Rounds</h2><p>None of the ${number(model.rounds.length)} rounds changed a balloon target.</p>`;
  const rows = changed.slice(0, ROUND_ROWS).map((r) => {
    const changes = r.changes.map((c) => `${escape(c.vm)}&nbsp;${number(c.from)}&nbsp;→&nbsp;${number(c.to)}`).join(", ");
    return `<tr data-round-second="${r.second}"><td class="n">${r.second}</td>${r.state === null ? "" : `<td>${r.state}</td>`}<td>${changes}</td></tr>`;
  });
  const more = changed.length > ROUND_ROWS ? `<p>The first ${ROUND_ROWS} of ${number(changed.length)} such rounds; the chart above has them all.</p>` : "";
  const head = `<th class="n">second</th>${model.policy === "esx" ? "<th>state</th>" : ""}<th>balloon targets changed (pages: before → after)</th>`;
  return `<h2>Rounds that changed a target</h2>${table(head, rows)}${more}`;
}

function totalsTable(model: HostReportModel): string {
  if (model.end === undefined) return "";
  const rows = model.end.vms.map(
    (t) =>
      `<tr data-vm-totals="${escape(t.vm)}"><td>${escape(t.vm)}</td><td class="n">${number(t.peakBalloon)}</td><td class="n">${number(t.swapOut)}</td><td class="n">${number(t.swapIn)}</td><td class="n">${number(t.shortfallSeconds)}</td></tr>`,
  );
  const head = `<th>VM</th><th class="n">peak balloon</th><th class="n">swapped out</th><th class="n">swapped in</th><th class="n">shortfall (page-seconds)</th>`;
  return `<h2>Each VM's totals</h2>${table(head, rows)}`;
}

/** The whole page for a host's model: the same model gives the same bytes. */
export function renderHostPage(model: HostReportModel): string {
  const drawn = drawHostCharts(model);
  const seconds = model.host.length;
  return pageFrame({
    title: `vmballoon host report: ${model.vms.length} VMs, ${seconds} seconds`,
    heading: "The host, second by second",
    lede: `${number(model.vms.length)} VMs under ${policyName(model)}'s memory policy for ${number(seconds)} seconds, from a host trace of ${number(model.records)} records.`,
    body: `${summary(model)}
${thinning(drawn)}
${drawn.charts.length > 0 ? `<section class="charts">${drawn.charts.map(figure).join("\n")}</section>` : ""}
${vmSection(model, drawn)}
${roundsTable(model)}
${totalsTable(model)}`,
  });
}
