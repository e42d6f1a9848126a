import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { parseHTML } from "linkedom";
import { describe, expect, it } from "vitest";
import { FIXTURES, STACK, reportPage, vmballoon } from "./cli-runner.js";

const temp = () => mkdtempSync(join(tmpdir(), "vmballoon-report-"));
const MODERN = join(FIXTURES, "modern");
const golden = (file: string) => gunzipSync(readFileSync(file)).toString("utf8");

/** The report of a trace file, as `vmballoon report` writes it. */
const reportOf = reportPage;

function dom(html: string) {
  return parseHTML(html).document;
}

/** `data-cycle` of the elements that match `selector`, in document order. */
function cyclesOf(html: string, selector: string): number[] {
  return [...dom(html).querySelectorAll(selector)].map((e) => Number(e.getAttribute("data-cycle")));
}

/** The cycles of a trace's cycle records, and their sizes. */
function cycleRecords(text: string): { cycle: number; size: number; target: number }[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { t: string; cycle: number; size: number; target: number })
    .filter((r) => r.t === "cycle");
}

describe("vmballoon report: the page", () => {
  it("has one point per cycle for the size and for the target, in order, placed by cycle and by value", () => {
    const trace = join(FIXTURES, "deflate-basic.trace.jsonl.gz");
    const html = reportOf(trace);
    const records = cycleRecords(golden(trace));
    const cycles = records.map((r) => r.cycle);
    expect(cycles.length).toBe(12);
    expect(cyclesOf(html, '[data-series="size"]')).toEqual(cycles);
    expect(cyclesOf(html, '[data-series="target"]')).toEqual(cycles);
    // Each dot is where its cycle and its value put it: x grows with the cycle, y falls as the size grows.
    const dots = [...dom(html).querySelectorAll('[data-series="size"]')].map((e) => ({ x: Number(e.getAttribute("cx")), y: Number(e.getAttribute("cy")) }));
    for (let i = 1; i < dots.length; i++) {
      expect(dots[i]!.x).toBeGreaterThan(dots[i - 1]!.x);
      const [a, b] = [records[i - 1]!.size, records[i]!.size];
      expect(Math.sign(dots[i - 1]!.y - dots[i]!.y)).toBe(Math.sign(b - a));
    }
  });

  it.each([
    // The scenario resets the monitor before cycles 2 and 5: it answers ERROR_RESET there, and the driver STARTs again in the next cycle.
    ["reset-midway", "reset", [2, 3, 5, 6]],
    // Two forced GET_TARGET failures from cycle 2: one a cycle.
    ["get-target-errors", "failure", [2, 3]],
    // The host refuses the first sixteen frames, so every inflate cycle meets refusals.
    ["refused-pages", "refusal", [1, 2, 3, 4, 5, 6]],
    // A reset at cycle 3, then two START failures: the driver tries again at 4 and 5 and gets through at 6.
    ["start-fails-in-reset", "reset", [3, 4, 5, 6]],
    ["start-fails-in-reset", "failure", [4, 5]],
  ])("%s: marks each %s at its cycles %j", (name, kind, cycles) => {
    const html = reportOf(join(FIXTURES, `${name}.trace.jsonl.gz`));
    expect(cyclesOf(html, `[data-mark="${kind}"]`).sort((a, b) => a - b)).toEqual(cycles);
  });

  it("marks a batched LOCK that fails as a whole as a failure, and its entries' statuses as refusals (today's driver)", () => {
    // random-24's host answers BATCHED_LOCK with ERROR_CMD_INVALID in cycles 10 to 12, and refuses entries (ERROR_BUSY, PPN_LOCKED, …) in cycle 20.
    const html = reportOf(join(MODERN, "random-24.trace.jsonl.gz"));
    const failures = cyclesOf(html, '[data-mark="failure"]');
    const refusals = cyclesOf(html, '[data-mark="refusal"]');
    for (const cycle of [10, 11, 12]) {
      expect(failures).toContain(cycle);
      expect(refusals).not.toContain(cycle);
    }
    expect(refusals).toContain(20);
  });

  it("marks allocation failures where the guest ran short (pressure-nosleep), and nothing in a quiet run (inflate-basic)", () => {
    const pressure = reportOf(join(FIXTURES, "pressure-nosleep.trace.jsonl.gz"));
    expect(cyclesOf(pressure, '[data-mark="allocation failure"]').length).toBeGreaterThan(0);
    const quiet = reportOf(join(FIXTURES, "inflate-basic.trace.jsonl.gz"));
    expect(dom(quiet).querySelectorAll("[data-mark]").length).toBe(0);
  });

  it("counts the commands and shows the final debugfs text", () => {
    const trace = join(FIXTURES, "reset-midway.trace.jsonl.gz");
    const text = golden(trace);
    const page = dom(reportOf(trace));
    const lines = text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { t: string; cmd?: string; status?: number; text?: string });
    const get = page.querySelector('[data-command="GET_TARGET"]')!;
    const cells = [...get.querySelectorAll("td")].map((td) => td.textContent);
    const sent = lines.filter((r) => r.cmd === "GET_TARGET").length;
    expect(cells.slice(0, 3)).toEqual(["GET_TARGET", String(sent), "2"]);
    expect(cells[3]).toBe("ERROR_RESET\u00a0×2");
    expect(page.querySelector('[data-debugfs="final"]')!.textContent).toBe(lines.find((r) => r.t === "debugfs")!.text);
  });

  it("needs nothing from the network: no script, no stylesheet or font to fetch, no external reference", () => {
    const html = reportOf(join(FIXTURES, "reset-midway.trace.jsonl.gz"));
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);
  });

  it("reads today's driver's traces too, with their other records on the time axis", () => {
    const trace = join(MODERN, "random-24.trace.jsonl.gz");
    const text = golden(trace);
    const html = reportOf(trace);
    expect(cyclesOf(html, '[data-series="size"]')).toEqual(cycleRecords(text).map((r) => r.cycle));
    const shrinks = text
      .split("\n")
      .filter((l) => l.includes('"t":"shrink"'))
      .map((l) => (JSON.parse(l) as { cycle: number }).cycle);
    expect(shrinks.length).toBeGreaterThan(0);
    expect(cyclesOf(html, '[data-mark="shrink"]').sort((a, b) => a - b)).toEqual([...new Set(shrinks)].sort((a, b) => a - b));
    expect(dom(html).querySelector(".summary dd")!.textContent).toBe("today's Linux driver");
  });

  it("past 10,000 cycles draws the lowest and highest of each run of cycles, peak included", () => {
    const cycles = 25_000;
    const lines = [JSON.stringify({ t: "cmd", cycle: 0, cmd: "START", arg: 2, status: 0, result: 0 })];
    for (let c = 1; c <= cycles; c++) lines.push(JSON.stringify({ t: "cycle", cycle: c, size: c === 12_345 ? 99_999 : c % 100, target: 50 }));
    lines.push(JSON.stringify({ t: "debugfs", text: "target: 50\n" }));
    const file = join(temp(), "long.jsonl");
    writeFileSync(file, `${lines.join("\n")}\n`);
    const size = cyclesOf(reportOf(file), '[data-series="size"]');
    expect(size.length).toBeLessThanOrEqual(10_000);
    expect(size.length).toBeGreaterThan(5_000);
    expect(size).toContain(12_345);
    expect(size).toEqual([...size].sort((a, b) => a - b));
  }, 60_000);

  it("reads a gzipped trace and stdin (-) the same as the plain file", () => {
    const plain = join(temp(), "trace.jsonl");
    const text = golden(join(FIXTURES, "unlock-errors.trace.jsonl.gz"));
    writeFileSync(plain, text);
    const page = reportOf(plain);
    expect(reportOf(join(FIXTURES, "unlock-errors.trace.jsonl.gz"))).toBe(page);
    const piped = vmballoon(["report", "-", "--output", "-"], { input: text });
    expect(piped.status).toBe(0);
    expect(piped.stdout).toBe(page);
  });
});

describe("simulate --report", () => {
  it.each([
    ["the built-in scenario", []],
    ["a conformance scenario", ["--scenario", join(FIXTURES, "start-fails-in-reset.scenario.json")]],
    ["a failed load", ["--scenario", join(FIXTURES, "init-fails.scenario.json")]],
  ])(
    "writes the same page as vmballoon report of simulate --trace's file (%s)",
    (_what, scenario) => {
      const dir = temp();
      const run = vmballoon(["simulate", ...scenario, "--trace", join(dir, "t.jsonl"), "--report", join(dir, "r.html")]);
      expect(run.status).toBe(0);
      const page = readFileSync(join(dir, "r.html"), "utf8");
      expect(reportOf(join(dir, "t.jsonl"))).toBe(page);
      expect(page).toMatch(/^<!doctype html>/);
    },
    60_000,
  );

  it("writes the page alone to stdout with --report -, and refuses --report - with --json", () => {
    const run = vmballoon(["simulate", "--scenario", join(FIXTURES, "notneeded.scenario.json"), "--report", "-"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^<!doctype html>[^]*<\/html>\n$/);
    const both = vmballoon(["simulate", "--json", "--report", "-"]);
    expect(both.status).toBe(2);
    expect(both.stderr.split("\n")[0]).toBe("vmballoon: --report - and --json both want stdout; give --report a file");
  });
});

describe("vmballoon report: bad input", () => {
  const dir = temp();
  const write = (name: string, content: string | Buffer) => {
    const file = join(dir, name);
    writeFileSync(file, content);
    return file;
  };
  const reset = golden(join(FIXTURES, "reset-midway.trace.jsonl.gz"));
  const resetLines = reset.split("\n");
  const head = (n: number) => `${resetLines.slice(0, n).join("\n")}\n`;

  it.each([
    [
      "a scenario file",
      () => join(FIXTURES, "reset-midway.scenario.json"),
      'reset-midway.scenario.json: line 1: "{" alone: one JSON document over several lines (a scenario?), not a trace, which has one JSON object on each line',
    ],
    [
      "binary data",
      () => write("binary.bin", Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0xff, 0xfe, 0x0a])),
      "binary.bin: line 1: binary data, not a trace (JSON Lines text)",
    ],
    [
      "a trace cut in the middle of a line",
      () => write("cut.jsonl", head(40).slice(0, -20)),
      "cut.jsonl: line 40: no line break at its end: the file is cut short in the middle of a record",
    ],
    [
      "a trace without its end",
      () => write("noend.jsonl", head(resetLines.length - 2)),
      `noend.jsonl: line ${resetLines.length - 1}: the file ends after cycle 8 without the trace's end (its final "debugfs", "exit" or "initFailed" record): cut short?`,
    ],
    [
      "a gzipped trace cut short",
      () => write("cut.jsonl.gz", gzipSync(reset).subarray(0, 3000)),
      /^cannot read the trace cut\.jsonl\.gz: a broken gzip file \(.+\)$/,
    ],
    [
      "a vmmemctl text",
      () => join(FIXTURES, "debugfs", "seed-signed.txt"),
      /^seed-signed\.txt: line 1: ".*": a text of "name: value" lines \(a vmmemctl text\?\), not a trace$/,
    ],
    [
      "vmballoon run --json's output",
      () => write("run.jsonl", '{"t":"start","host":"simulated","target":16384}\n{"t":"cycle","cycle":1,"size":1,"target":2,"mlockedPages":1}\n'),
      // The report reads host traces too: it says what theirs begins with.
      'run.jsonl: line 1: a trace cannot begin with a "start" record (the output of `vmballoon run --json`?): it begins with the load\'s commands (a host\'s trace begins with a "host" record)',
    ],
    ["an empty file", () => write("empty.jsonl", ""), "empty.jsonl: line 1: no records: an empty file is not a trace"],
    [
      "a record with a wrong field",
      () => write("field.jsonl", head(3).replace('"status":0,"result":50000', '"status":"0","result":50000')),
      'field.jsonl: line 3: "status" of a "cmd" record should be a whole number, not "0"',
    ],
    ["a missing file", () => join(dir, "nothing-here.jsonl"), /^cannot read the trace .*nothing-here\.jsonl: no such file or directory$/],
  ])("%s: one line naming what is wrong, exit status 2, no page", (_what, file, message) => {
    const path = file();
    const out = join(dir, `${_what.replace(/\W+/g, "-")}.html`);
    const run = vmballoon(["report", path, "--output", out]);
    expect(run.status).toBe(2);
    expect(run.stderr).not.toMatch(STACK);
    const lines = run.stderr.split("\n").filter(Boolean);
    expect(lines.length).toBe(1);
    const shown = lines[0]!
      .replace(/^vmballoon: /, "")
      .replace(`${dir}/`, "")
      .replace(`${join(FIXTURES, "debugfs")}/`, "")
      .replace(FIXTURES, "");
    if (typeof message === "string") expect(shown).toBe(message);
    else expect(shown).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it("without a trace: bad usage, exit status 2", () => {
    const run = vmballoon(["report", "--output", join(dir, "x.html")]);
    expect(run.status).toBe(2);
    expect(run.stderr.split("\n")[0]).toBe("vmballoon: report needs a trace file ('-' for stdin)");
  });
});
