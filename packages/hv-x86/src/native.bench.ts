/*
 * `npm run bench`: figures, not a timed test. Built to .bench/native.bench.js and run by the
 * package's `bench` script.
 *
 * 1. One backdoor-shaped call through koffi: the balloon trampoline's test
 *    build (the `IN` replaced by register exchanges), bare and through the
 *    engine's Hypervisor port. Goal: at most 100 ns a call.
 * 2. The page source, in each memory (pinned, secret, mlock): allocate + pin
 *    or lock + frame number, pages a second, and the release of the same pages,
 *    beside C doing the same system calls (bench/page-source.c, when gcc is
 *    there); frees in random order; then the three side by side. Goals: pinned
 *    at least 0.9x mlock's rate in, and within 1.15x of C.
 * 3. The frame check at 1, 4 and 16 GiB ballooned (BENCH_CHECK_GIB): a full
 *    read of pagemap, and a check when nothing migrated (goal: under 5 ms a
 *    GiB), beside C's same reads.
 * 4. One full inflate cycle of the engine (16,384 pages, the seed's NOSLEEP
 *    cap) with the real page source behind the reference monitor.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ALLOC, COMMANDS } from "@vmballoon/protocol";
import { Balloon, NO_PAGE } from "@vmballoon/core";
import { SimMonitor } from "@vmballoon/core/sim";
import { BalloonHypervisor } from "./balloon-port.js";
import { LinuxPageSource, type PageMemory } from "./page-source.js";
import { BALLOON, backdoorCall, backdoorCall64 } from "./trampolines.js";
import { shuffle } from "./test-random.js";
import { memoryWorks } from "./test-memories.js";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function nsPerCall(rounds: number, calls: number, body: (calls: number) => number): { best: number; median: number } {
  const figures: number[] = [];
  let sink = 0;
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint();
    sink += body(calls);
    figures.push(Number(process.hrtime.bigint() - start) / calls);
  }
  if (sink === 0.5) console.log(sink); // keeps the loops' results alive
  return { best: Math.min(...figures), median: median(figures) };
}

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(60)} ${value}`);
}

console.log("@vmballoon/hv-x86 bench");
console.log(`  node ${process.version}, ${process.platform}-${process.arch}`);

// 1. The call.
console.log("\nbackdoor-shaped call through koffi (test build: xchg instead of IN), ns a call");
const { call, registers } = backdoorCall({ ...BALLOON, harmless: true });
const bare = nsPerCall(7, 2_000_000, (calls) => {
  let sum = 0;
  for (let i = 0; i < calls; i++) sum += call(COMMANDS.LOCK, i) + registers[1]!;
  return sum;
});
line("trampoline: call(command, argument) + EBX", `best ${bare.best.toFixed(1)}, median ${bare.median.toFixed(1)}`);

const port = BalloonHypervisor.open({
  cpuid: (leaf) => (leaf === 1 ? { eax: 0, ebx: 0, ecx: 0x8000_0000, edx: 0 } : { eax: 0, ebx: 0x61774d56, ecx: 0x4d566572, edx: 0x65726177 }), // "VMwareVMware"
  openPorts: () => {},
  backdoor: () => backdoorCall({ ...BALLOON, harmless: true }),
  backdoor64: () => backdoorCall64({ ...BALLOON, harmless: true }),
});
const throughPort = nsPerCall(7, 2_000_000, (calls) => {
  let sum = 0;
  for (let i = 0; i < calls; i++) sum += port.call(COMMANDS.LOCK, i).result;
  return sum;
});
line("Hypervisor port: BalloonHypervisor.call → {status, result}", `best ${throughPort.best.toFixed(1)}, median ${throughPort.median.toFixed(1)}`);

// 2. The page source.
const root = process.geteuid?.() === 0;

/** The page source's system calls in C (bench/page-source.c), built with gcc -O2 when gcc is there. */
function buildC(): string | undefined {
  if (spawnSync("gcc", ["--version"]).status !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "vmballoon-bench-"));
  const source = fileURLToPath(new URL("../bench/page-source.c", import.meta.url));
  execFileSync("gcc", ["-O2", "-o", join(dir, "page-source"), source]);
  return join(dir, "page-source");
}

function runC(binary: string | undefined, args: string[]): Record<string, number>[] {
  if (binary === undefined) return [];
  const out = spawnSync(binary, args, { encoding: "utf8" });
  if (out.status !== 0) return [];
  return out.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, number>);
}

const rate = (pages: number, seconds: number) => Math.round(pages / seconds);
const thousands = (value: number) => value.toLocaleString("en");

if (!root) {
  console.log("\npage source: skipped (frame numbers need root)");
} else {
  const c = buildC();
  const memories = (["pinned", "secret", "mlock"] as const).filter(memoryWorks);
  const how = { pinned: "pin (io_uring fixed buffer)", secret: "fault in (read of /dev/zero)", mlock: "mlock" };
  const sideBySide: { memory: PageMemory; in: number; out: number; cIn?: number; cOut?: number }[] = [];
  const best = (values: number[]) => Math.max(...values.slice(1));
  for (const memory of memories) {
    console.log(`\npage source, ${memory} memory: allocate + ${how[memory]} + frame number, then free newest first, 65,536 pages (256 MiB) a round`);
    const source = LinuxPageSource.open({ memory });
    const pages = new Uint32Array(65_536);
    const figures: { in: number; out: number }[] = [];
    for (let round = 1; round <= 4; round++) {
      let start = process.hrtime.bigint();
      let frames = 0;
      for (let i = 0; i < pages.length; i++) {
        const page = source.allocate(ALLOC.NOSLEEP);
        if (page === NO_PAGE) throw new Error(`allocation failed: ${source.lastFailure}`);
        pages[i] = page;
        frames += source.frameNumber(page) > 0 ? 1 : 0;
      }
      const allocateSeconds = Number(process.hrtime.bigint() - start) / 1e9;
      start = process.hrtime.bigint();
      for (let i = pages.length - 1; i >= 0; i--) source.free(pages[i]!);
      source.releaseIdle();
      const freeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (frames !== pages.length || source.mlockedPages !== 0) throw new Error("a page without a frame, or one left locked");
      figures.push({ in: rate(pages.length, allocateSeconds), out: rate(pages.length, freeSeconds) });
      line(
        `round ${round}${round === 1 ? " (memory this process never had)" : ""}`,
        `${thousands(figures.at(-1)!.in)} pages/s in, ${thousands(figures.at(-1)!.out)} pages/s out`,
      );
    }
    const cFigures = runC(c, ["alloc", memory, "65536", "4"]);
    sideBySide.push({ memory, in: best(figures.map((f) => f.in)), out: best(figures.map((f) => f.out)) });
    if (cFigures.length === 4) {
      for (const [round, figure] of cFigures.entries())
        line(`  C, the same calls, round ${round + 1}`, `${thousands(figure.in!)} pages/s in, ${thousands(figure.out!)} pages/s out`);
      Object.assign(sideBySide.at(-1)!, { cIn: best(cFigures.map((f) => f.in!)), cOut: best(cFigures.map((f) => f.out!)) });
      line(
        "  C / TypeScript, best of rounds 2-4",
        `in ${(best(cFigures.map((f) => f.in!)) / best(figures.map((f) => f.in))).toFixed(2)}x, out ${(best(cFigures.map((f) => f.out!)) / best(figures.map((f) => f.out))).toFixed(2)}x`,
      );
    } else line("  C, the same calls", "not run (no gcc here)");

    // The worst case for the release: pages freed in random order, so that no two make a run.
    for (let i = 0; i < pages.length; i++) pages[i] = source.allocate(ALLOC.NOSLEEP);
    shuffle(pages, 12345);
    const start = process.hrtime.bigint();
    for (let i = 0; i < pages.length; i++) source.free(pages[i]!);
    source.releaseIdle();
    const shuffledSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    line("free in random order (seed 12345)", `${thousands(rate(pages.length, shuffledSeconds))} pages/s out, ${source.mlockedPages} left locked`);
    source.close();
  }

  console.log("\nthe memories side by side, best of rounds 2-4, pages/s (C: the same system calls)");
  const mlock = sideBySide.find((figure) => figure.memory === "mlock");
  for (const figure of sideBySide) {
    const c =
      figure.cIn === undefined
        ? "C not run"
        : `C ${thousands(figure.cIn)} in, ${thousands(figure.cOut!)} out; C / TS in ${(figure.cIn / figure.in).toFixed(2)}x`;
    const vsMlock = mlock === undefined || figure === mlock ? "" : `; ${(figure.in / mlock.in).toFixed(2)}x mlock's rate in`;
    line(figure.memory, `${thousands(figure.in)} in, ${thousands(figure.out)} out; ${c}${vsMlock}`);
  }

  // The frame check, every cycle of `vmballoon run`.
  const available = Math.floor(Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 2 ** 20);
  const sizes = (process.env.BENCH_CHECK_GIB ?? "1,4,16").split(",").map(Number);
  console.log(
    "\nthe frame check: ms a check of a balloon of N GiB (mlock memory; median of 5): a full read of pagemap, and a check with no migration since the last read",
  );
  for (const gib of sizes) {
    if (gib + 2 > available) {
      line(`${gib} GiB`, `skipped: ${available} GiB available`);
      continue;
    }
    for (const [mode, label] of [
      ["always", "full scan"],
      ["migrations", "no migration since"],
    ] as const) {
      const source = LinuxPageSource.open({ memory: "mlock", frameCheck: mode });
      const count = gib * 262_144;
      for (let i = 0; i < count; i++) if (source.allocate(ALLOC.CANSLEEP) === NO_PAGE) throw new Error(`allocation failed: ${source.lastFailure}`);
      source.releaseIdle();
      source.checkFrames(() => true);
      const times: number[] = [];
      for (let round = 0; round < 5; round++) {
        const start = process.hrtime.bigint();
        const checked = source.checkFrames(() => true);
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
        if (checked !== count) throw new Error(`checked ${checked} of ${count}`);
      }
      const ms = median(times);
      line(`${gib} GiB, ${label}`, `${ms.toFixed(2)} ms, ${(ms / gib).toFixed(3)} ms a GiB`);
      source.close();
    }
    const cFigures = runC(c, ["check", String(gib * 262_144), "5"]);
    if (cFigures.length === 5) line(`${gib} GiB, C: the same preads of pagemap`, `${median(cFigures.map((f) => f.ms!)).toFixed(2)} ms`);
  }
  if (memories.includes("secret")) {
    const source = LinuxPageSource.open({ memory: "secret", frameCheck: "always" });
    for (let i = 0; i < 262_144; i++) source.allocate(ALLOC.CANSLEEP);
    source.releaseIdle();
    const times: number[] = [];
    for (let round = 0; round < 5; round++) {
      const start = process.hrtime.bigint();
      source.checkFrames(() => true);
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    line("1 GiB of secret memory, full scan", `${median(times).toFixed(2)} ms`);
    source.close();
  }

  const source = LinuxPageSource.open();
  // 4. The engine on top.
  console.log("\nthe engine: one inflate cycle of 16,384 pages (NOSLEEP cap) and the unload, real pages, reference monitor");
  const monitor = new SimMonitor({ firstPfn: 0, frames: source.frameLimit(), totalPages: source.totalPages() });
  for (let round = 1; round <= 3; round++) {
    const balloon = new Balloon(monitor, source);
    balloon.init();
    monitor.target = 16_384;
    let start = process.hrtime.bigint();
    balloon.work();
    source.releaseIdle();
    const inflateMs = Number(process.hrtime.bigint() - start) / 1e6;
    if (balloon.snapshot().size !== 16_384) throw new Error(`inflated to ${balloon.snapshot().size}`);
    start = process.hrtime.bigint();
    balloon.exit();
    source.releaseIdle();
    const exitMs = Number(process.hrtime.bigint() - start) / 1e6;
    line(`round ${round}`, `inflate ${inflateMs.toFixed(1)} ms, unload ${exitMs.toFixed(1)} ms`);
    monitor.target = 0;
  }
  source.close();
}
