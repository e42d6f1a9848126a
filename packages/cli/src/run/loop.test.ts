/**
 * The loop of `vmballoon run`, unit-tested on a session of each driver
 * against the reference guest and monitor: no root, no child process, no
 * real memory. Every way out unloads; an error after START unloads and is
 * one line; the stats file's warnings are said once.
 */
import { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ModernSimGuest, driver, type AnyTraceRecord, type DriverName, type DriverSession, type MachinePageSource } from "@vmballoon/core/sim";
import { CliError, EXIT } from "../errors.js";
import { StopSignals, runLoop, type LoopPorts } from "./loop.js";
import { TraceSink } from "./trace-sink.js";

const FREE = 20_000;
const SPEC = { totalPages: 24_000, freePages: FREE, firstPfn: 4096, nosleepReserve: 500, sleepReserve: 100, huge: false };

/** The reference guest as this machine: a page source the session drives as `run` drives the real one. */
function machine(): { source: MachinePageSource & { guest: ModernSimGuest }; released: () => number } {
  const guest = new ModernSimGuest(SPEC);
  let releases = 0;
  const source = Object.assign(Object.create(guest) as ModernSimGuest, {
    guest,
    frameLimit: () => SPEC.firstPfn + SPEC.freePages,
    memoryAt: (pfn: number) => guest.memoryAt(pfn),
    releaseIdle: () => {},
  });
  return { source, released: () => releases++ };
}

interface Harness {
  readonly session: DriverSession;
  readonly guest: ModernSimGuest;
  readonly records: object[];
  readonly lines: string[];
  readonly trace: AnyTraceRecord[];
  readonly signals: EventEmitter;
  releases: number;
  ports(extra?: Partial<LoopPorts>): LoopPorts;
}

function harness(name: DriverName, target: number, onRecord?: (record: AnyTraceRecord) => void): Harness {
  const { source } = machine();
  const trace: AnyTraceRecord[] = [];
  const session = driver(name).onMachine(source, {
    target,
    guestFree: () => source.guest.freeCount,
    onRecord: onRecord ?? ((record) => trace.push(record)),
  });
  const h: Harness = {
    session,
    guest: source.guest,
    records: [],
    lines: [],
    trace,
    signals: new EventEmitter(),
    releases: 0,
    ports: (extra = {}) => ({
      session,
      intervalMs: 1,
      emitter: { emit: (record) => h.records.push(record) },
      narrator: { line: (text) => h.lines.push(text), summary: (text) => h.lines.push(text), cycle: () => {} },
      machine: { mlockedPages: () => 0, vmLckKiB: () => 0, vmPinKiB: () => 0, release: () => void h.releases++ },
      start: (oomScoreAdj) => ({ t: "start", oomScoreAdj }),
      ...extra,
      stops: extra.stops ?? new StopSignals(h.signals),
    }),
  };
  return h;
}

/** Every page back: the guest's free stack as it was before the load. */
const everyPageBack = (h: Harness) => expect(h.guest.freeCount).toBe(FREE);

/** Sends `signal` once the balloon has reached `size` pages (checked each cycle through the narrator). */
function signalAt(h: Harness, size: number, signal: NodeJS.Signals): Partial<LoopPorts> {
  return {
    narrator: {
      line: (text) => h.lines.push(text),
      summary: (text) => h.lines.push(text),
      cycle: (_cycle, now) => {
        if (now >= size) h.signals.emit(signal, signal);
      },
    },
  };
}

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe.each(["seed", "modern"] as const)("run's loop with the %s driver (no root, no child process)", (name) => {
  it.each(["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] as const)("%s: unloads (START, every page back), exit status 0, memory released once", async (signal) => {
    const h = harness(name, 3000);
    const status = await runLoop(h.ports(signalAt(h, 3000, signal)));
    expect(status).toBe(EXIT.OK);
    everyPageBack(h);
    expect(h.releases).toBe(1);
    const exit = h.records.at(-1) as { t: string; reason: string; freed: number; size: number };
    expect(exit).toMatchObject({ t: "exit", reason: signal, freed: 3000, size: 0 });
    expect(h.lines.at(-1)).toMatch(new RegExp(`^unloaded \\(${signal}\\): START sent, 3000 pages`));
    // After the last cycle: the debugfs text, the unload's commands (START among them), the exit record.
    const lastCycle = h.trace.findLastIndex((r) => r.t === "cycle");
    const after = h.trace.slice(lastCycle + 1);
    expect(after[0]!.t).toBe("debugfs");
    expect(after.at(-1)).toMatchObject({ t: "exit", size: 0, guestFree: FREE });
    expect(after.slice(1, -1).some((r) => r.t === "cmd" && r.cmd === "START")).toBe(true);
  });

  it("a stop signal during the set-up, before the loop, is not lost: one cycle at most, then the unload, exit status 0", async () => {
    const h = harness(name, 3000);
    const stops = new StopSignals(h.signals);
    h.signals.emit("SIGTERM", "SIGTERM");
    expect(await runLoop(h.ports({ stops }))).toBe(EXIT.OK);
    expect(h.records.filter((r) => (r as { t: string }).t === "cycle").length).toBeLessThanOrEqual(1);
    expect(h.records.at(-1)).toMatchObject({ t: "exit", reason: "SIGTERM", size: 0 });
    everyPageBack(h);
    stops.close();
    expect(h.signals.listenerCount("SIGTERM")).toBe(0);
  });

  it("a scenario that unloads ends by itself after its last cycle", async () => {
    const h = harness(name, 1000);
    expect(await runLoop(h.ports({ lastCycle: 4 }))).toBe(EXIT.OK);
    expect(h.records.filter((r) => (r as { t: string }).t === "cycle")).toHaveLength(4);
    expect(h.records.at(-1)).toMatchObject({ t: "exit", reason: "scenario" });
    everyPageBack(h);
  });

  it("an error after START (the trace's disk full) unloads: every page back, one line, exit status 1", async () => {
    let writes = 0;
    const sink = new TraceSink({
      write: () => {
        if (++writes > 5) throw new Error("no space left on device");
      },
      flush: () => {},
      close: () => {},
      abandon: () => {},
    });
    const h = harness(name, 2000, (record) => sink.record(record));
    const error = await runLoop(h.ports({ trace: sink })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitStatus).toBe(EXIT.FAILURE);
    expect((error as CliError).message).toMatch(/^failed while running: no space left on device; unloaded: START sent, \d+ pages \(.* MiB\) given back$/);
    expect((error as CliError).message).not.toContain("\n");
    everyPageBack(h);
    expect(h.releases).toBe(1);
    expect(h.records.at(-1)).toMatchObject({ t: "exit", reason: "error" });
  });

  it("a stats file that stops being writable after the start: one warning for each distinct error, the balloon goes on, the file removed at the exit", async () => {
    dir = mkdtempSync(join(tmpdir(), "vmballoon-loop-"));
    const statsFile = join(dir, "vmmemctl");
    const h = harness(name, 2000);
    let writes = 0;
    const status = await runLoop(
      h.ports({
        lastCycle: 6,
        statsFile,
        writeFile: (file, text) => {
          writes++;
          // Before the load: written for real. Then two cycles of a full disk, then a read-only one.
          if (writes === 1) return writeFileSync(file, text);
          throw new Error(writes <= 3 ? "no space left on device" : "read-only file system");
        },
      }),
    );
    expect(status).toBe(EXIT.OK);
    expect(writes).toBe(7);
    const warnings = h.records.filter((r) => (r as { t: string }).t === "warning");
    expect(warnings).toEqual([
      { t: "warning", message: "no space left on device" },
      { t: "warning", message: "read-only file system" },
    ]);
    expect(h.lines.filter((l) => l.startsWith("warning: "))).toEqual([
      "warning: no space left on device; the balloon goes on, and the file is retried each cycle",
      "warning: read-only file system; the balloon goes on, and the file is retried each cycle",
    ]);
    expect(h.records.filter((r) => (r as { t: string }).t === "cycle")).toHaveLength(6);
    expect(existsSync(statsFile)).toBe(false);
    everyPageBack(h);
  });

  it("a stats file that cannot be written at all stops the run before START: nothing loaded, nothing sent", async () => {
    const h = harness(name, 2000);
    const error = await runLoop(
      h.ports({
        statsFile: "/nonexistent/dir/vmmemctl",
        writeFile: () => {
          throw new CliError("cannot write the stats file /nonexistent/dir/vmmemctl: no such file or directory", EXIT.USAGE);
        },
      }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as CliError).exitStatus).toBe(EXIT.USAGE);
    expect((error as CliError).message).toBe("cannot write the stats file /nonexistent/dir/vmmemctl: no such file or directory");
    expect(h.trace.filter((r) => r.t === "cmd")).toEqual([]);
    expect(h.releases).toBe(0);
    everyPageBack(h);
  });
});

describe("run's loop, what only one driver does", () => {
  it("the seed: a load the host refuses is one line naming the command and its status, exit status 1, no unload", async () => {
    const { source } = machine();
    const trace: AnyTraceRecord[] = [];
    const session = driver("seed").onMachine(source, {
      scenario: { cycles: 5, unload: true, guest: SPEC, events: [{ cycle: 0, failNext: { cmd: "START", count: 1, status: 1 } }] },
      onRecord: (r) => trace.push(r),
    });
    const records: object[] = [];
    const error = await runLoop({
      session,
      intervalMs: 1,
      emitter: { emit: (r) => records.push(r) },
      narrator: { line: () => {}, summary: () => {}, cycle: () => {} },
      machine: { mlockedPages: () => 0, vmLckKiB: () => 0, vmPinKiB: () => 0, release: () => {} },
      start: () => ({ t: "start" }),
      stops: new StopSignals(new EventEmitter()),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as CliError).message).toBe("the balloon did not load: START answered ERROR_CMD_INVALID");
    expect((error as CliError).exitStatus).toBe(EXIT.FAILURE);
    expect(records.at(-1)).toEqual({ t: "initFailed", cmd: "START", status: 1 });
    expect(trace.at(-1)).toEqual({ t: "initFailed" });
  });

  it("today's driver with the shrinker: a PSI event calls it, a shrink record follows, and pages go back", async () => {
    const { source } = machine();
    const session = driver("modern").onMachine(source, { target: 4000, shrinker: true, jiffies: () => 0 });
    const records: { t: string; freed?: number }[] = [];
    const signals = new EventEmitter();
    let fired = false;
    await runLoop({
      session,
      intervalMs: 1,
      emitter: { emit: (r) => records.push(r as { t: string }) },
      narrator: {
        line: () => {},
        summary: () => {},
        cycle: (_c, size) => {
          if (size >= 4000) fired = true;
          if (records.some((r) => r.t === "shrink")) signals.emit("SIGTERM", "SIGTERM");
        },
      },
      machine: { mlockedPages: () => 0, vmLckKiB: () => 0, vmPinKiB: () => 0, release: () => {} },
      start: () => ({ t: "start" }),
      stops: new StopSignals(signals),
      pressure: { fired: () => fired && !(fired = false) },
    });
    const shrink = records.find((r) => r.t === "shrink");
    expect(shrink).toMatchObject({ t: "shrink", nrToScan: 250, count: 4000 });
    expect(shrink!.freed).toBeGreaterThan(0);
    expect(source.guest.freeCount).toBe(FREE);
  });
});
