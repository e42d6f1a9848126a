/**
 * The report as a person sees it: the page opened by a real browser (Debian's
 * chromium, headless, driven over its DevTools pipe by puppeteer-core, with no
 * network), at a desktop's width and at a phone's, and for print. The DOM as
 * the browser built it has one point per cycle for the size and for the
 * target; the page does not scroll sideways; nothing but the file itself is
 * requested; the screenshot has the charts drawn (coloured pixels of the size
 * and target series inside the size chart's box, and of the reset marks in
 * the events chart). The host's page (HOST.md's trace: `host --report`, and
 * `report` of a host trace under MoM) the same way: every chart there, each
 * with the colours of its data in its box. No page logs an error to the
 * console. The screenshots are kept in the folder printed at the end, to be
 * looked at.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { PNG } from "pngjs";
import puppeteer, { type Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, vmballoon } from "./cli-runner.js";
import { HOST_COLORS, ROUND_COLORS, STATE_COLORS } from "./report/host-charts.js";
import { canHaveChromium, ensureChromium } from "./test-chromium.js";

/** Outside CI a machine without chromium and without root to install it skips; in CI it fails. Installing waits for beforeAll. */
const NO_CHROMIUM = !canHaveChromium() && process.env.CI !== "true";

const SHOTS = join(tmpdir(), "vmballoon-browser");
const DEVICES = {
  desktop: { width: 1280, height: 900, isMobile: false },
  phone: { width: 390, height: 844, isMobile: true },
} as const;

interface Report {
  readonly name: string;
  readonly file: string;
  readonly cycles: number[];
}

const reports: Report[] = [];
const hostReports: { readonly name: string; readonly file: string; readonly vms: readonly string[]; readonly states: boolean; readonly swapped: boolean }[] =
  [];

/** Whether the host of a host trace swapped anything out. */
function swappedOut(trace: string): boolean {
  return readFileSync(trace, "utf8")
    .split("\n")
    .some((line) => line.startsWith('{"t":"host"') && (JSON.parse(line) as { swapOut: number }).swapOut > 0);
}

/** Opens a page as a reader would: the viewport, the medium; what it requested and what it logged as an error are collected. */
async function open(url: string, viewport: (typeof DEVICES)[keyof typeof DEVICES], media: "screen" | "print") {
  const page = await browser!.newPage();
  const requested: string[] = [];
  const errors: string[] = [];
  page.on("request", (request) => requested.push(request.url()));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.setViewport({ ...viewport, deviceScaleFactor: 1, hasTouch: viewport.isMobile });
  await page.emulateMediaType(media);
  await page.goto(url, { waitUntil: "load" });
  return { page, requested, errors };
}
let browser: Browser | undefined;

function cyclesOfTrace(text: string): number[] {
  return text
    .split("\n")
    .filter((line) => line.includes('"t":"cycle"'))
    .map((line) => (JSON.parse(line) as { cycle: number }).cycle);
}

/** The little of the browser's window used in page.evaluate (the CLI is compiled without the DOM's types). */
interface BrowserWindow {
  readonly scrollX: number;
  readonly scrollY: number;
  readonly document: {
    readonly documentElement: { readonly scrollWidth: number };
    querySelector(selector: string): { getBoundingClientRect(): { left: number; top: number; width: number; height: number } } | null;
  };
}

type Box = { left: number; top: number; width: number; height: number };

/** Pixels of the PNG inside `box` that are near `color` (or, with none, not near white). */
function countPixels(png: PNG, box: Box, color?: readonly [number, number, number]): number {
  let count = 0;
  for (let y = Math.max(0, Math.round(box.top)); y < Math.min(png.height, box.top + box.height); y++) {
    for (let x = Math.max(0, Math.round(box.left)); x < Math.min(png.width, box.left + box.width); x++) {
      const i = (y * png.width + x) * 4;
      const [r, g, b] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
      if (color === undefined ? r + g + b < 3 * 235 : Math.abs(r - color[0]) + Math.abs(g - color[1]) + Math.abs(b - color[2]) < 60) count++;
    }
  }
  return count;
}

type Rgb = readonly [number, number, number];
/** A colour as drawn: `#rrggbb` over white at an opacity (the stacked areas are 0.75). */
function rgb(hex: string, opacity = 1): Rgb {
  const channel = (i: number) => Math.round(opacity * parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) + (1 - opacity) * 255);
  return [channel(0), channel(1), channel(2)];
}

const SIZE_BLUE = [0x1d, 0x4e, 0xd8] as const;
const TARGET_AMBER = [0xd9, 0x77, 0x06] as const;
const RESET_RED = [0xdc, 0x26, 0x26] as const;

describe.skipIf(NO_CHROMIUM)("the report in chromium (skipped without Debian's chromium and root to install it; never in CI)", () => {
  beforeAll(async () => {
    const found = ensureChromium();
    if (!("path" in found)) throw new Error(`no chromium: ${found.missing}`);
    mkdirSync(SHOTS, { recursive: true });
    // The built-in scenario's story, from simulate --report, and today's driver's trace, from report.
    const builtin = join(SHOTS, "builtin.html");
    const trace = join(SHOTS, "builtin.jsonl");
    const simulated = vmballoon(["simulate", "--trace", trace, "--report", builtin]);
    if (simulated.status !== 0) throw new Error(`simulate --report failed: ${simulated.stderr}`);
    reports.push({ name: "builtin", file: builtin, cycles: cyclesOfTrace(readFileSync(trace, "utf8")) });
    const modernTrace = join(FIXTURES, "modern", "random-24.trace.jsonl.gz");
    const modern = join(SHOTS, "modern.html");
    const reported = vmballoon(["report", modernTrace, "--output", modern]);
    if (reported.status !== 0) throw new Error(`report failed: ${reported.stderr}`);
    reports.push({ name: "modern", file: modern, cycles: cyclesOfTrace(gunzipSync(readFileSync(modernTrace)).toString("utf8")) });
    // The host's page: the built-in overcommitted host under ESX from host --report, and under MoM from report of its trace.
    const esx = join(SHOTS, "host-esx.html");
    const esxTrace = join(SHOTS, "host-esx.jsonl");
    const hosted = vmballoon(["host", "--scenario", "overcommit", "--trace", esxTrace, "--report", esx]);
    if (hosted.status !== 0) throw new Error(`host --report failed: ${hosted.stderr}`);
    hostReports.push({ name: "host-esx", file: esx, vms: ["db", "web", "batch", "cache"], states: true, swapped: swappedOut(esxTrace) });
    const momTrace = join(SHOTS, "host-mom.jsonl");
    const mom = join(SHOTS, "host-mom.html");
    const traced = vmballoon(["host", "--scenario", "overcommit", "--policy", "mom", "--trace", momTrace]);
    if (traced.status !== 0) throw new Error(`host --trace failed: ${traced.stderr}`);
    const momReported = vmballoon(["report", momTrace, "--output", mom]);
    if (momReported.status !== 0) throw new Error(`report of a host trace failed: ${momReported.stderr}`);
    hostReports.push({ name: "host-mom", file: mom, vms: ["db", "web", "batch", "cache"], states: false, swapped: swappedOut(momTrace) });
    browser = await puppeteer.launch({
      executablePath: found.path,
      headless: true,
      pipe: true,
      // Nothing may come from the network: every host resolves to nowhere.
      args: ["--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"],
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (reports.length > 0) process.stdout.write(`browser screenshots: ${SHOTS}\n`);
  });

  for (const name of ["builtin", "modern"]) {
    for (const [device, viewport] of Object.entries(DEVICES)) {
      for (const media of device === "desktop" ? (["screen", "print"] as const) : (["screen"] as const)) {
        it(`${name}, ${device} (${viewport.width} px), ${media}: one point per cycle in the browser's DOM, no sideways scroll, nothing fetched, charts drawn`, async () => {
          const report = reports.find((r) => r.name === name)!;
          expect(report.cycles.length).toBeGreaterThan(20);
          const url = pathToFileURL(report.file).href;
          const { page, requested, errors } = await open(url, viewport, media);
          try {
            expect(requested).toEqual([url]);
            expect(errors).toEqual([]);

            const cyclesOf = (series: string) =>
              page.$$eval(`circle[data-series="${series}"]`, (dots) => dots.map((dot) => Number(dot.getAttribute("data-cycle"))));
            expect(await cyclesOf("size")).toEqual(report.cycles);
            expect(await cyclesOf("target")).toEqual(report.cycles);

            const layout = await page.evaluate(() => {
              const window = globalThis as unknown as BrowserWindow;
              const box = (selector: string) => {
                const r = window.document.querySelector(selector)!.getBoundingClientRect();
                return { left: r.left + window.scrollX, top: r.top + window.scrollY, width: r.width, height: r.height };
              };
              return {
                scrollWidth: window.document.documentElement.scrollWidth,
                size: box('[data-chart="size"] svg'),
                events: box('[data-chart="events"] svg'),
              };
            });
            expect(layout.scrollWidth).toBeLessThanOrEqual(viewport.width);
            expect(layout.size.width).toBeGreaterThan(viewport.width / 3);

            const shot = join(SHOTS, `${name}-${device}-${media}.png`);
            await page.screenshot({ path: shot, fullPage: true });
            const png = PNG.sync.read(readFileSync(shot));
            expect(png.width).toBe(viewport.width);
            // Axes, grid, lines and dots: a chart, not a blank box.
            expect(countPixels(png, layout.size)).toBeGreaterThan(layout.size.width * layout.size.height * 0.03);
            expect(countPixels(png, layout.size, SIZE_BLUE)).toBeGreaterThan(150);
            expect(countPixels(png, layout.size, TARGET_AMBER)).toBeGreaterThan(100);
            // Both runs have resets: red dots on the time axis.
            expect(countPixels(png, layout.events, RESET_RED)).toBeGreaterThan(10);
          } finally {
            await page.close();
          }
        });
      }
    }
  }
  for (const name of ["host-esx", "host-mom"]) {
    for (const [device, viewport] of Object.entries(DEVICES)) {
      for (const media of device === "desktop" ? (["screen", "print"] as const) : (["screen"] as const)) {
        it(`${name}, ${device} (${viewport.width} px), ${media}: every chart drawn with its data, no sideways scroll, nothing fetched, no console error`, async () => {
          const report = hostReports.find((r) => r.name === name)!;
          const url = pathToFileURL(report.file).href;
          const { page, requested, errors } = await open(url, viewport, media);
          try {
            expect(requested).toEqual([url]);
            expect(errors).toEqual([]);
            const charts = ["free", "host-memory", "swap", "shortfall", "rounds"];
            const selectors = [...charts.map((id) => `[data-chart="${id}"] svg`), ...report.vms.map((vm) => `[data-vm="${vm}"] svg`)];
            const layout = await page.evaluate((selectors: string[]) => {
              const window = globalThis as unknown as BrowserWindow;
              const box = (selector: string) => {
                const element = window.document.querySelector(selector);
                if (element === null) return null;
                const r = element.getBoundingClientRect();
                return { left: r.left + window.scrollX, top: r.top + window.scrollY, width: r.width, height: r.height };
              };
              return { scrollWidth: window.document.documentElement.scrollWidth, boxes: selectors.map(box) };
            }, selectors);
            expect(layout.scrollWidth).toBeLessThanOrEqual(viewport.width);
            const boxes = Object.fromEntries(selectors.map((selector, i) => [selector, layout.boxes[i]!]));
            for (const selector of selectors) {
              expect(boxes[selector], selector).not.toBeNull();
              expect(boxes[selector]!.width, selector).toBeGreaterThan(viewport.width / 3);
            }

            const shot = join(SHOTS, `${name}-${device}-${media}.png`);
            await page.screenshot({ path: shot, fullPage: true });
            const png = PNG.sync.read(readFileSync(shot));
            expect(png.width).toBe(viewport.width);
            const pixels = (selector: string, hex: string, opacity?: number) => countPixels(png, boxes[selector]!, rgb(hex, opacity));
            const free = '[data-chart="free"] svg';
            expect(pixels(free, HOST_COLORS.free)).toBeGreaterThan(100);
            // ESX's states as bands (the run spends most of its time in soft); MoM has none. (The lightest bands are too near white to count.)
            if (report.states) expect(pixels(free, STATE_COLORS.soft.band)).toBeGreaterThan(2_000);
            else expect(pixels(free, STATE_COLORS.soft.band)).toBeLessThan(50);
            const memory = '[data-chart="host-memory"] svg';
            expect(pixels(memory, HOST_COLORS.backed, 0.75)).toBeGreaterThan(2_000);
            expect(pixels(memory, HOST_COLORS.balloon, 0.75)).toBeGreaterThan(500);
            // Under ESX the host swaps (the first VMs' idle memory, before the balloons grow); under MoM it never has to.
            expect(pixels('[data-chart="swap"] svg', HOST_COLORS.swapOut) > 20).toBe(report.swapped);
            const rounds = Object.values(ROUND_COLORS).reduce((n, color) => n + pixels('[data-chart="rounds"] svg', color), 0);
            expect(rounds).toBeGreaterThan(50);
            for (const vm of report.vms) {
              const box = `[data-vm="${vm}"] svg`;
              expect(pixels(box, HOST_COLORS.backed, 0.75), vm).toBeGreaterThan(1_000);
              expect(pixels(box, HOST_COLORS.demand), vm).toBeGreaterThan(30);
            }
            // The working set (db's grows to 2.5 GiB) and, under ESX, the estimate against it.
            const working = `[data-vm="db"] svg:nth-of-type(2)`;
            const workingBox = await page.$eval(working, (e) => {
              const r = e.getBoundingClientRect();
              return { left: r.left + globalThis.scrollX, top: r.top + globalThis.scrollY, width: r.width, height: r.height };
            });
            expect(countPixels(png, workingBox, rgb(HOST_COLORS.active))).toBeGreaterThan(50);
            expect(countPixels(png, workingBox, rgb(HOST_COLORS.estimate)) > 30).toBe(report.states);
          } finally {
            await page.close();
          }
        });
      }
    }
  }
});
