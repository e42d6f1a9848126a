import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HvError, balloonFramesOf } from "@vmballoon/hv-x86";
import { BIN, jsonLines, vmballoon } from "./cli-runner.js";
import { EXIT, exitStatusOf } from "./errors.js";

/** `run ARGS` is bad usage: status 2, nothing on stdout, the first line of stderr this message. */
function expectUsageError(args: readonly string[], message: string): void {
  const { status, stdout, stderr } = vmballoon(["run", ...args]);
  expect(status).toBe(2);
  expect(stdout).toBe("");
  expect(stderr.split("\n")[0]).toBe(`vmballoon: ${message}`);
}

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const root = typeof process.geteuid === "function" && process.geteuid() === 0;
const ringAllowed = !existsSync("/proc/sys/kernel/io_uring_disabled") || readFileSync("/proc/sys/kernel/io_uring_disabled", "utf8").trim() === "0";
const limitTools = ["prlimit", "setpriv"].every((tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0);
const folder = mkdtempSync(join(tmpdir(), "vmballoon-run-"));

function scenarioFile(name: string, scenario: object): string {
  const file = join(folder, name);
  writeFileSync(file, JSON.stringify(scenario));
  return file;
}

const guest = { totalPages: 262144, freePages: 200000, firstPfn: 4096, nosleepReserve: 1024, sleepReserve: 256 };

/** The lock file of the tests' runs: never the machine's /run/vmballoon.lock. */
const LOCK = join(folder, "lock");

/**
 * A running `vmballoon run` (with `--json` unless `json` is false), whose
 * JSON Lines and stderr are read as they come. Every wait is for an event: a
 * record, a piece of stderr, or the exit.
 */
class Runner {
  readonly child: ChildProcessWithoutNullStreams;
  readonly records: Record<string, any>[] = [];
  stderr = "";
  stdout = "";
  private waiters: (() => void)[] = [];
  private closed = false;
  readonly exited: Promise<{ status: number | null; signal: string | null }>;

  /** `prefix`: a command that runs the program, such as `prlimit ... setpriv ...`. */
  constructor(args: string[], { json = true, prefix = [] as string[] } = {}) {
    const lock = args.includes("--lock-file") ? [] : ["--lock-file", LOCK];
    const command = [...prefix, process.execPath, BIN, "run", ...(json ? ["--json"] : []), ...lock, ...args];
    this.child = spawn(command[0]!, command.slice(1), { env: { ...process.env, NO_COLOR: "1" } });
    let buffered = "";
    this.child.stdout.setEncoding("utf8").on("data", (text: string) => {
      this.stdout += text;
      if (json) {
        buffered += text;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) !== -1) {
          this.records.push(JSON.parse(buffered.slice(0, newline)));
          buffered = buffered.slice(newline + 1);
        }
      }
      this.wakeAll();
    });
    this.child.stderr.setEncoding("utf8").on("data", (text: string) => {
      this.stderr += text;
      this.wakeAll();
    });
    this.exited = new Promise((resolve) =>
      this.child.on("close", (status, signal) => {
        this.closed = true;
        this.wakeAll();
        resolve({ status, signal });
      }),
    );
    running.push(this);
  }

  private wakeAll(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Waits until `test` gives something, after any output; fails when the process ends first. */
  private async waitFor<T>(test: () => T | undefined, what: string): Promise<T> {
    for (;;) {
      const found = test();
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`the run ended before ${what}; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Waits for a record that satisfies `test`. */
  until(test: (record: Record<string, any>) => boolean): Promise<Record<string, any>> {
    return this.waitFor(() => this.records.find(test), "the record looked for");
  }

  /** Waits for stderr to match. */
  untilStderr(pattern: RegExp): Promise<RegExpExecArray> {
    return this.waitFor(() => pattern.exec(this.stderr) ?? undefined, `stderr matched ${pattern}`);
  }

  statusKiB(field: string): number {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${this.child.pid}/status`, "utf8"));
    return Number(match?.[1]);
  }
}

/** The trace's records. */
function readTrace(file: string): Record<string, any>[] {
  return jsonLines(readFileSync(file, "utf8"));
}

/**
 * The frames the host holds as ballooned after each command of a trace, as
 * the monitor of SIMULATION.md keeps them: a LOCK that succeeded adds its
 * frame, an UNLOCK that succeeded removes it, a START forgets them all.
 * Returns the set before the trace's last START and at its end.
 */
function hostFrames(records: Record<string, any>[]): { beforeLastStart: Set<number>; atEnd: Set<number> } {
  const held = new Set<number>();
  let beforeLastStart = new Set<number>();
  for (const r of records) {
    if (r.t !== "cmd" || r.status !== 0) continue;
    if (r.cmd === "START") {
      beforeLastStart = new Set(held);
      held.clear();
    } else if (r.cmd === "LOCK") held.add(r.arg);
    else if (r.cmd === "UNLOCK") held.delete(r.arg);
  }
  return { beforeLastStart, atEnd: held };
}

/**
 * What every way out must leave: the trace ends with the unload (the last
 * command a START, then the debugfs text and the exit record with an empty
 * balloon), the frames the host held before it are as many as the pages
 * given back, and the process holds none.
 */
function expectUnloaded(trace: Record<string, any>[], exit: Record<string, any>): void {
  const commands = trace.filter((r) => r.t === "cmd");
  expect(commands.at(-1)).toMatchObject({ cmd: "START", status: 0 });
  expect(trace.slice(-2).map((r) => r.t)).toStrictEqual(["cmd", "exit"]);
  expect(trace.at(-1)).toMatchObject({ t: "exit", size: 0 });
  expect(trace.filter((r) => r.t === "debugfs")).toHaveLength(1);
  const { beforeLastStart, atEnd } = hostFrames(trace);
  expect(beforeLastStart.size).toBe(exit.freed);
  expect(atEnd.size).toBe(0);
  expect(exit).toMatchObject({ t: "exit", size: 0, mlockedPages: 0, vmLckKiB: 0, vmPinKiB: 0 });
}

const running: Runner[] = [];
afterEach(() => {
  for (const runner of running.splice(0)) if (runner.child.exitCode === null) runner.child.kill("SIGKILL");
});

describe("vmballoon run: bad usage gets one line and status 2, before anything runs", () => {
  it.each([
    [["--host", "xen"], "--host must be vmware or simulated, not 'xen'"],
    [["--host", "simulated"], "--host simulated needs either --target N (pages) or --scenario FILE"],
    [["--host", "simulated", "--target", "5", "--scenario", "x.json"], "--host simulated needs either --target N (pages) or --scenario FILE"],
    [["--host", "simulated", "--target", "12.5"], "--target must be a whole number of pages from 0 to 4294967295, not '12.5'"],
    [["--host", "simulated", "--target", "many"], "--target must be a whole number of pages from 0 to 4294967295, not 'many'"],
    [["--host", "simulated", "--target", "-5"], "--target must be a whole number of pages from 0 to 4294967295, not '-5'"],
    [["--host", "simulated", "--target", "5", "--interval", "-1s"], "--interval must be a duration from 1ms to 24h such as 1s, 250ms or 2, not '-1s'"],
    [["--host", "simulated", "--target", "4294967296"], "--target must be a whole number of pages from 0 to 4294967295, not '4294967296'"],
    [["--target", "5"], "--target and --scenario are for --host simulated: on VMware the host sets the target"],
    [["--host", "simulated", "--target", "5", "--probe"], "--force and --probe are for --host vmware"],
    [["--host", "simulated", "--target", "5", "--interval", "soon"], "--interval must be a duration from 1ms to 24h such as 1s, 250ms or 2, not 'soon'"],
    [["--host", "simulated", "--target", "5", "--stats-file"], "option `--stats-file <file>` value is missing"],
    [["--host", "simulated", "--target", "5", "--json", "--trace", "-"], "--json and --trace - both want stdout; give --trace a file"],
    [["--host", "simulated", "--target", "5", "--memory", "swap"], "--memory must be pinned, secret or mlock, not 'swap'"],
    [["--host", "simulated", "--target", "5", "--memory"], "option `--memory <kind>` value is missing"],
  ])("%j", expectUsageError);

  it("a scenario that breaks a rule is named by file and field", () => {
    const file = scenarioFile("bad.json", { cycles: 3, unload: true, guest, events: [{ cycle: 9, setTarget: 1 }] });
    const { status, stderr } = vmballoon(["run", "--host", "simulated", "--scenario", file]);
    expect(status).toBe(2);
    expect(stderr).toBe(`vmballoon: ${file}: events[0].cycle: cycle 9 is past the scenario's last cycle (3)\n`);
  });
});

describe.skipIf(!linuxX64)("vmballoon run --host vmware, off VMware (needs Linux x64)", () => {
  const vmware = linuxX64 && JSON.parse(vmballoon(["detect", "--json"]).stdout).vmware === true;

  it.skipIf(vmware)("refuses with status 69 and one line naming what CPUID says (needs a machine that is not a VMware guest)", () => {
    const { status, stdout, stderr } = vmballoon(["run"]);
    expect(status).toBe(69);
    expect(stdout).toBe("");
    expect(stderr).toMatch(
      /^vmballoon: not a VMware guest \(CPUID says '[^']+'\): there is no balloon to drive here \(--probe tries the balloon port in a child process\)\n$/,
    );
  });

  it.skipIf(vmware)(
    "--probe tries START on port 0x5670 in a child, and says nothing speaks the balloon protocol (status 69) (needs a machine that is not a VMware guest)",
    () => {
      const { status, stderr } = vmballoon(["run", "--host", "vmware", "--probe"]);
      expect(status).toBe(69);
      expect(stderr.split("\n").length).toBe(2); // one line
      expect(stderr).toMatch(/^vmballoon: nothing speaks the balloon protocol on port 0x5670: /);
    },
  );
});

describe("exit statuses of the native layer's errors", () => {
  it.each([
    ["E_NATIVE_UNAVAILABLE", EXIT.UNAVAILABLE],
    ["E_NOT_VMWARE", EXIT.UNAVAILABLE],
    ["E_PORT_UNAVAILABLE", EXIT.UNAVAILABLE],
    ["E_PORT_DENIED", EXIT.NO_PERMISSION],
    ["E_FRAMES_HIDDEN", EXIT.NO_PERMISSION],
  ] as const)("%s → %i", (code, status) => {
    expect(exitStatusOf(new HvError(code, "x"))).toBe(status);
  });
});

describe.skipIf(!linuxX64 || !root)("vmballoon run --host simulated, behind this machine's memory (needs root on Linux x64)", () => {
  it("without root: status 77 and one line saying frame numbers need CAP_SYS_ADMIN", () => {
    const { status, stderr } = vmballoon(["run", "--host", "simulated", "--target", "16"], { uid: 65534 });
    expect(status).toBe(77);
    expect(stderr).toBe("vmballoon: reading frame numbers from /proc/self/pagemap needs CAP_SYS_ADMIN (run as root): this process sees them as 0\n");
  });

  it("--target 16384 reaches 64 MiB locked, writes its stats file, and on SIGTERM unloads and exits 0 with the memory returned", async () => {
    const stats = join(folder, "vmmemctl");
    const runner = new Runner(["--host", "simulated", "--target", "16384", "--stats-file", stats, "--interval", "200ms"]);
    const start = await runner.until((r) => r.t === "start");
    expect(start).toMatchObject({ host: "simulated", target: 16384, intervalMs: 200, statsFile: stats, trace: null, lockFile: LOCK, oomScoreAdj: 1000 });
    // The first the OOM killer takes (DESIGN.md, "oom_score_adj").
    expect(readFileSync(`/proc/${runner.child.pid}/oom_score_adj`, "utf8")).toBe("1000\n");

    const full = await runner.until((r) => r.t === "cycle" && r.size === 16384);
    expect(full.target).toBe(16384);
    expect(full.mlockedPages).toBe(16384);
    expect(full.stats.lock).toBe(16384);
    // The kernel's view of the process: 64 MiB pinned by default (VmPin; locked, VmLck, for the other memories), as good as exactly: the idle batch was returned.
    // Pinned memory where io_uring is allowed (kernel.io_uring_disabled 0, or before 6.6).
    if (ringAllowed) expect(start.memory).toBe("pinned");
    else expect(start.memory).not.toBe("pinned");
    expect(runner.statusKiB(start.memory === "pinned" ? "VmPin" : "VmLck")).toBe(65536);

    // The stats file: the seed's debugfs layout, as of the last cycle.
    await runner.until((r) => r.t === "cycle" && r.cycle >= full.cycle + 1);
    const text = readFileSync(stats, "utf8");
    expect(text).toMatch(/^target: {16}16384 pages\ncurrent: {15}16384 pages\n/);
    expect(text).toMatch(/^lock: {18}16384 \( {3}0 failed\)$/m);
    expect(text).toMatch(/^timer: +\d+$/m);

    runner.child.kill("SIGTERM");
    const { status, signal } = await runner.exited;
    expect({ status, signal }).toEqual({ status: 0, signal: null });
    const exit = runner.records.at(-1)!;
    expect(exit).toMatchObject({ t: "exit", reason: "SIGTERM", size: 0, freed: 16384, mlockedPages: 0, vmLckKiB: 0, vmPinKiB: 0 });
    // Like the kernel's debugfs file, the stats file goes with the driver.
    expect(existsSync(stats)).toBe(false);
    expect(runner.stderr).toBe("");
  });

  it("SIGINT unloads too, and says so on stderr without --json; --memory mlock is the memory the first line names", async () => {
    const runner = new Runner(["--host", "simulated", "--target", "1000", "--interval", "100ms", "--memory", "mlock"], { json: false });
    await runner.untilStderr(/balloon 1000 pages, at its target/);
    expect(runner.stderr.split("\n")[0]).toMatch(/ and this machine's memory \(\d+ pages; mlock memory\), a cycle every 100 ms/);
    runner.child.kill("SIGINT");
    expect((await runner.exited).status).toBe(0);
    expect(runner.stderr).toMatch(/unloaded \(SIGINT\): START sent, 1000 pages \(3\.9 MiB\) given back; frame checks \d+: \d+ pages moved, \d+ repaired\n$/);
    expect(runner.stdout).toBe("");
  });

  // Each stop signal, from outside: exit status 0 (README, "Signals"), the unload at the end of the trace, the stats file gone.
  it.each(["SIGHUP", "SIGQUIT", "SIGTERM", "SIGINT"] as const)(
    "%s: START, every page given back, exit status 0, trace ends with the unload, stats file gone",
    async (signal) => {
      const stats = join(folder, `stats-${signal}`);
      const trace = join(folder, `trace-${signal}.jsonl`);
      const runner = new Runner(["--host", "simulated", "--target", "3000", "--stats-file", stats, "--trace", trace, "--interval", "50ms"]);
      const full = await runner.until((r) => r.t === "cycle" && r.size === 3000);
      // Flushed each cycle: the trace already holds every LOCK the host was sent.
      const during = readTrace(trace);
      expect(during.filter((r) => r.t === "cmd" && r.cmd === "LOCK" && r.status === 0)).toHaveLength(full.stats.lock - full.stats.lockFail);
      expect(existsSync(stats)).toBe(true);

      runner.child.kill(signal);
      expect(await runner.exited).toStrictEqual({ status: 0, signal: null });
      const exit = runner.records.at(-1)!;
      expect(exit).toMatchObject({ t: "exit", reason: signal, freed: 3000 });
      const records = readTrace(trace);
      expectUnloaded(records, exit);
      // The trace's cycles are the run's.
      expect(records.filter((r) => r.t === "cycle").map((r) => r.cycle)).toStrictEqual(runner.records.filter((r) => r.t === "cycle").map((r) => r.cycle));
      expect(existsSync(stats)).toBe(false);
      expect(runner.stderr).toBe("");
    },
  );

  it("an error while running (the trace's disk full) still unloads: START, every page back, stats file gone, exit 1 with one line", async () => {
    const stats = join(folder, "stats-error");
    // /dev/full takes the load's commands in the buffer and fails the first flush, at the end of cycle 1, with pages held.
    const runner = new Runner(["--host", "simulated", "--target", "3000", "--stats-file", stats, "--trace", "/dev/full", "--interval", "50ms"]);
    const { status } = await runner.exited;
    expect(status).toBe(1);
    // The trace fails before cycle 1's record: the error is the first thing after the start.
    expect(runner.records.map((r) => r.t)).toStrictEqual(["start", "exit"]);
    const exit = runner.records.at(-1)!;
    expect(exit).toMatchObject({ t: "exit", reason: "error", size: 0, mlockedPages: 0, vmLckKiB: 0, vmPinKiB: 0 });
    // Cycle 1 inflates at the non-sleeping rate: all 3000 pages unless this machine's MemFree is at its reserve.
    expect(exit.freed).toBeGreaterThan(0);
    expect(runner.stderr).toMatch(
      new RegExp(
        `^vmballoon: failed while running: cannot write the trace to /dev/full: no space left on device; unloaded: START sent, ${exit.freed} pages \\(\\d+\\.\\d MiB\\) given back\n$`,
      ),
    );
    expect(existsSync(stats)).toBe(false);
  });

  it("--trace - puts the trace alone on stdout (without --json); with --json it is bad usage", async () => {
    const file = scenarioFile("short.json", { cycles: 3, unload: true, guest, events: [{ cycle: 0, setTarget: 500 }] });
    const runner = new Runner(["--host", "simulated", "--scenario", file, "--trace", "-", "--interval", "10ms"], { json: false });
    expect((await runner.exited).status).toBe(0);
    const records = jsonLines(runner.stdout);
    const cycles = records.filter((r) => r.t === "cycle");
    expect(cycles.map((r) => r.cycle)).toStrictEqual([1, 2, 3]);
    expect(cycles.every((r) => r.target === 500 && r.size <= 500)).toBe(true);
    expectUnloaded(records, { t: "exit", size: 0, freed: cycles.at(-1)!.size, mlockedPages: 0, vmLckKiB: 0, vmPinKiB: 0 });
    // simulate's format: the same kinds of record, with the same keys in the same order.
    const simulated = jsonLines(vmballoon(["simulate", "--scenario", file, "--trace", "-"]).stdout);
    const shapes = (trace: Record<string, any>[]) => new Map(trace.map((r) => [r.t, Object.keys(r).join(",")]));
    expect(shapes(records)).toStrictEqual(shapes(simulated));
  });

  it("two runs started at once, many times: exactly one runs, the other exits 75 naming its pid, and never touches its stats file or trace", async () => {
    const stats = join(folder, "stats-race");
    const trace = join(folder, "trace-race.jsonl");
    for (let round = 0; round < 6; round++) {
      const args = ["--host", "simulated", "--target", "200", "--stats-file", stats, "--trace", trace, "--interval", "20ms"];
      const pair = [new Runner(args), new Runner(args)];
      // The loser ends by itself; the winner runs until told to stop.
      const loserIndex = await Promise.race(pair.map((runner, index) => runner.exited.then(() => index)));
      const loser = pair[loserIndex]!;
      const winner = pair[1 - loserIndex]!;
      expect((await loser.exited).status).toBe(75);
      expect(loser.stdout).toBe("");
      expect(loser.stderr).toBe(`vmballoon: another vmballoon run (pid ${winner.child.pid}) owns the balloon: ${LOCK} is locked; one run at a time\n`);
      const cycle = await winner.until((r) => r.t === "cycle" && r.size === 200);
      // The winner's file, whole, left alone by the loser.
      await winner.until((r) => r.t === "cycle" && r.cycle > cycle.cycle);
      expect(readFileSync(stats, "utf8")).toMatch(/^target: {18}200 pages\ncurrent: {17}200 pages\n/);
      winner.child.kill("SIGTERM");
      expect((await winner.exited).status).toBe(0);
      expect(existsSync(stats)).toBe(false);
      // The winner's trace, whole from its load to its unload.
      const records = readTrace(trace);
      expect(records.slice(0, 2).map((r) => [r.cycle, r.cmd])).toStrictEqual([
        [0, "START"],
        [0, "GUEST_ID"],
      ]);
      expectUnloaded(records, winner.records.at(-1)!);
    }
  }, 120_000);

  it("after a SIGKILL (no unload possible), the next run takes the lock, rewrites the stale stats file and trace, and cleans up", async () => {
    const stats = join(folder, "stats-killed");
    const trace = join(folder, "trace-killed.jsonl");
    const args = ["--host", "simulated", "--target", "300", "--stats-file", stats, "--trace", trace, "--interval", "20ms"];
    const killed = new Runner(args);
    await killed.until((r) => r.t === "cycle" && r.size === 300);
    killed.child.kill("SIGKILL");
    expect((await killed.exited).signal).toBe("SIGKILL");
    // What a SIGKILL leaves: the stats file saying 300 pages, a trace with no unload.
    expect(readFileSync(stats, "utf8")).toMatch(/^target: {18}300 pages\ncurrent: {17}300 pages\n/);
    expect(readTrace(trace).at(-1)!.t).toBe("cycle");

    const next = new Runner([...args.slice(0, 3), "100", ...args.slice(4)]);
    const first = await next.until((r) => r.t === "cycle");
    expect(first.cycle).toBe(1);
    await next.until((r) => r.t === "cycle" && r.cycle > first.cycle);
    expect(readFileSync(stats, "utf8")).toMatch(/^target: {18}100 pages\n/);
    next.child.kill("SIGTERM");
    expect((await next.exited).status).toBe(0);
    const records = readTrace(trace);
    // A new trace, from the new load: START, GUEST_ID, and the target of the new run only.
    expect(records.slice(0, 2).map((r) => r.cmd)).toStrictEqual(["START", "GUEST_ID"]);
    expect(records.filter((r) => r.t === "cycle").every((r) => r.target === 100)).toBe(true);
    expectUnloaded(records, next.records.at(-1)!);
    expect(existsSync(stats)).toBe(false);
  });

  it("a stats file on a full file system: one warning, the balloon goes on, the file is removed at the exit", async () => {
    const mount = join(folder, "small");
    mkdirSync(mount, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mount]);
    try {
      const stats = join(mount, "vmmemctl");
      const runner = new Runner(["--host", "simulated", "--target", "300", "--stats-file", stats, "--interval", "20ms"]);
      await runner.until((r) => r.t === "cycle" && r.size === 300);
      // Fill it: the next rewrite of the stats file has nowhere to go.
      try {
        writeFileSync(join(mount, "filler"), Buffer.alloc(128 * 1024));
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
      }
      const warning = await runner.until((r) => r.t === "warning");
      expect(warning.message).toBe(`cannot write the stats file ${stats}: no space left on device`);
      // The balloon goes on: more cycles, and no second warning for the same error.
      const after = runner.records.indexOf(warning);
      await runner.until((r) => r.t === "cycle" && runner.records.indexOf(r) > after + 5);
      expect(runner.records.filter((r) => r.t === "warning")).toHaveLength(1);
      expect(runner.stderr).toBe(`vmballoon: warning: ${warning.message}; the balloon goes on, and the file is retried each cycle\n`);

      runner.child.kill("SIGTERM");
      expect((await runner.exited).status).toBe(0);
      expect(runner.records.at(-1)).toMatchObject({ t: "exit", reason: "SIGTERM", freed: 300, mlockedPages: 0 });
      expect(existsSync(stats)).toBe(false);
    } finally {
      execFileSync("umount", [mount]);
    }
  });

  it.skipIf(!limitTools)(
    "a memlock limit without CAP_IPC_LOCK: one line says what and how to raise it, once, and the balloon goes on at the limit (needs prlimit and setpriv)",
    async () => {
      // 8 MiB of RLIMIT_MEMLOCK, and CAP_IPC_LOCK dropped (root keeps CAP_SYS_ADMIN, so the frames stay readable).
      const prefix = ["prlimit", "--memlock=8388608", "setpriv", "--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock"];
      const runner = new Runner(["--host", "simulated", "--target", "20000", "--interval", "20ms"], { prefix });
      const limit = await runner.until((r) => r.t === "limit");
      expect(limit.message).toMatch(
        /^cannot lock more memory \((ENOMEM from io_uring_register|EAGAIN from mmap|ENOMEM from mlock)\): RLIMIT_MEMLOCK \(8 MiB\) is reached.* and this process lacks CAP_IPC_LOCK; raise it \(ulimit -l unlimited, LimitMEMLOCK=infinity in a systemd unit\) or run as root with CAP_IPC_LOCK$/,
      );
      // The balloon goes on at the limit, and the line is not said again.
      const after = runner.records.indexOf(limit);
      const later = await runner.until((r) => r.t === "cycle" && runner.records.indexOf(r) > after + 5);
      expect(later.size).toBeGreaterThan(0);
      expect(later.size).toBeLessThanOrEqual(2048);
      expect(runner.records.filter((r) => r.t === "limit")).toHaveLength(1);
      runner.child.kill("SIGTERM");
      expect((await runner.exited).status).toBe(0);
      expect(runner.stderr.split("\n").filter((line) => line.includes("RLIMIT_MEMLOCK"))).toStrictEqual([`vmballoon: ${limit.message}`]);
    },
  );

  it("a lock file that cannot be opened: one line and status 2, before START", () => {
    const { status, stdout, stderr } = vmballoon(["run", "--host", "simulated", "--target", "100", "--lock-file", "/nonexistent/dir/lock", "--json"]);
    expect(status).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe("vmballoon: cannot take the lock /nonexistent/dir/lock: no such file or directory\n");
  });

  it("rewrites the stats file atomically: a reader never sees half of it", async () => {
    const stats = join(folder, "atomic");
    const file = scenarioFile("climb.json", {
      cycles: 400,
      unload: true,
      guest,
      events: Array.from({ length: 40 }, (_, i) => ({ cycle: i * 10, setTarget: 1000 + i * 100 })),
    });
    const runner = new Runner(["--host", "simulated", "--scenario", file, "--stats-file", stats, "--interval", "2ms"]);
    await runner.until((r) => r.t === "cycle");
    let reads = 0;
    while (runner.child.exitCode === null && reads < 2000) {
      let text: string;
      try {
        text = readFileSync(stats, "utf8");
      } catch {
        break; // removed at the unload
      }
      reads++;
      expect(text.split("\n").length).toBe(18);
      expect(text).toMatch(/^target: +\d+ pages\n[\s\S]*\nerrFree: +\d+\n$/);
      await new Promise((r) => setImmediate(r));
    }
    expect(reads).toBeGreaterThan(10);
    expect((await runner.exited).status).toBe(0);
  });

  it("plays a scenario's schedule against the reference monitor, and unloads at its end (status 0)", async () => {
    const file = scenarioFile("schedule.json", {
      cycles: 5,
      unload: true,
      guest,
      events: [
        { cycle: 1, setTarget: 3000 },
        { cycle: 3, reset: true },
        { cycle: 4, setTarget: 1000 },
      ],
    });
    const runner = new Runner(["--host", "simulated", "--scenario", file, "--interval", "20ms"]);
    expect((await runner.exited).status).toBe(0);
    const cycles = runner.records.filter((r) => r.t === "cycle");
    expect(cycles.map((r) => r.size)).toEqual([3000, 3000, 3000, 1000, 1000]);
    expect(cycles.map((r) => r.resetRequired)).toEqual([false, false, true, false, false]);
    expect(cycles[3]!.stats.start).toBe(2); // the reset's START
    expect(runner.records.at(-1)).toMatchObject({ t: "exit", reason: "scenario", freed: 1000, mlockedPages: 0, vmLckKiB: 0, vmPinKiB: 0 });
  });

  it("a load the monitor refuses fails with status 1 and says what it answered", () => {
    const file = scenarioFile("refused.json", { cycles: 2, unload: true, guest, events: [{ cycle: 0, failNext: { cmd: "START", count: 1, status: 8 } }] });
    const { status, stdout, stderr } = vmballoon(["run", "--host", "simulated", "--scenario", file, "--json", "--lock-file", LOCK]);
    expect(status).toBe(1);
    expect(jsonLines(stdout).map((record) => record.t)).toEqual(["start", "initFailed"]);
    expect(stderr).toBe("vmballoon: the balloon did not load: START answered ERROR_BUSY\n");
  });

  it("a stats file that cannot be written stops the run before START (status 2), with no memory held", () => {
    const { status, stdout, stderr } = vmballoon([
      "run",
      "--host",
      "simulated",
      "--target",
      "100",
      "--stats-file",
      "/nonexistent/dir/vmmemctl",
      "--json",
      "--lock-file",
      LOCK,
    ]);
    expect(status).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe("vmballoon: cannot write the stats file /nonexistent/dir/vmmemctl: no such file or directory\n");
  });
});

describe("vmballoon run --driver: bad usage gets one line and status 2", () => {
  it.each([
    [["--driver", "linux"], '--driver must be seed or modern, not "linux"'],
    [["--host", "simulated", "--target", "5", "--shrinker"], "--shrinker and --pressure are for --driver modern: the seed has no shrinker"],
    [
      ["--host", "simulated", "--target", "5", "--driver", "modern", "--pressure", "some 1 2000000"],
      "--pressure sets the trigger of --shrinker: give --shrinker too",
    ],
    [
      ["--host", "simulated", "--target", "5", "--driver", "modern", "--shrinker", "--pressure", "some 1 100"],
      "--pressure: the window must be from 500000 to 10000000 microseconds, not 100, not 'some 1 100'",
    ],
  ])("%j", expectUsageError);

  it("today's driver's scenarios follow its rules (shrink: 0 is not one): named by file and field", () => {
    const file = scenarioFile("modern-bad.json", { cycles: 3, unload: true, capabilities: 0x3e, guest, events: [{ cycle: 1, shrink: 0 }] });
    const { status, stderr } = vmballoon(["run", "--host", "simulated", "--driver", "modern", "--scenario", file]);
    expect(status).toBe(2);
    expect(stderr).toMatch(new RegExp(`^vmballoon: ${file}: events\\[0\\]\\.shrink: [^\n]*\n$`));
  });
});

/** The frames the host holds after a modern trace's commands: each batch entry a BATCHED_LOCK took, less those a BATCHED_UNLOCK gave back; START forgets them. */
function modernHostFrames(records: Record<string, any>[]): Set<number> {
  const held = new Set<number>();
  for (const r of records) {
    if (r.t !== "cmd") continue;
    if (r.cmd === "START") held.clear();
    else if (r.status === 0 && (r.cmd === "BATCHED_LOCK" || r.cmd === "BATCHED_UNLOCK")) {
      for (const [pfn, status] of r.batch as [number, number][]) {
        if (status !== 0) continue;
        if (r.cmd === "BATCHED_LOCK") held.add(pfn);
        else held.delete(pfn);
      }
    }
  }
  return held;
}

describe.skipIf(!linuxX64 || !root)("vmballoon run --driver modern --host simulated, behind this machine's memory (needs root on Linux x64)", () => {
  it("inflates with BATCHED_LOCK of frames the process holds (pinned or locked), through a batch page of its own; SIGTERM unloads as today's driver does", async () => {
    const trace = join(folder, "modern.jsonl");
    const runner = new Runner(["--host", "simulated", "--driver", "modern", "--target", "3000", "--trace", trace, "--interval", "50ms"]);
    const start = await runner.until((r) => r.t === "start");
    expect(start).toMatchObject({ driver: "modern", host: "simulated", target: 3000, shrinker: false });
    const full = await runner.until((r) => r.t === "cycle" && r.size === 3000);
    // The host offered 2 MB pages; the page source refused them, and the driver went on in 4 KB pages.
    expect(full).toMatchObject({ maxPageSize: "2M", batching: true, batchMaxPages: 512, hugePages: 0 });
    expect(full.stats.pages.allocFail[1]).toBeGreaterThan(0);
    expect(full.frames).toMatchObject({ checked: 3001, moved: 0, repaired: 0, released: 0, batchPageMoves: 0 }); // the 3000 pages and the batch page

    // From outside the process: every frame the host was told in a batch entry is a frame of the process's page source now
    // (pinned by default, or locked), and so is the batch page whose frame every batched command carried.
    const during = readTrace(trace);
    const locks = during.filter((r) => r.t === "cmd" && r.cmd === "BATCHED_LOCK");
    expect(locks.length).toBeGreaterThanOrEqual(6); // 3000 pages, 512 a command
    expect(during.some((r) => r.t === "cmd" && (r.cmd === "LOCK" || r.cmd === "BATCHED_2M_LOCK"))).toBe(false);
    const host = modernHostFrames(during);
    expect(host.size).toBe(3000);
    const locked = balloonFramesOf(runner.child.pid!);
    for (const frame of host) expect(locked.has(frame)).toBe(true);
    const batchFrames = new Set(locks.map((r) => r.arg));
    expect(batchFrames.size).toBe(1);
    const [batchFrame] = batchFrames;
    expect(locked.has(batchFrame)).toBe(true);
    expect(host.has(batchFrame)).toBe(false);

    runner.child.kill("SIGTERM");
    expect(await runner.exited).toStrictEqual({ status: 0, signal: null });
    const exit = runner.records.at(-1)!;
    expect(exit).toMatchObject({ t: "exit", reason: "SIGTERM", size: 0, freed: 3000, mlockedPages: 0, vmLckKiB: 0, vmPinKiB: 0 });
    expect(exit.frames.checks).toBe(runner.records.filter((r) => r.t === "cycle").length);
    // Today's unload: DOORBELL_SET(-1, -1), START(0), then every page freed without UNLOCK.
    const records = readTrace(trace);
    const last = records.filter((r) => r.t === "cmd").slice(-2);
    expect(last).toMatchObject([
      { cmd: "VMCI_DOORBELL_SET", arg: 0xffffffff, arg2: 0xffffffff },
      { cmd: "START", arg: 0 },
    ]);
    expect(records.filter((r) => r.t === "cmd" && r.cmd === "BATCHED_UNLOCK")).toHaveLength(0);
    expect(records.at(-1)).toMatchObject({ t: "exit", size: 0 });
    // The trace is one `vmballoon report` reads.
    const report = vmballoon(["report", trace, "--output", join(folder, "modern.html")]);
    expect(report.status).toBe(0);
    expect(readFileSync(join(folder, "modern.html"), "utf8")).toMatch(/<html/i);
  });

  it("plays a modern scenario's schedule (targets, a reset, a failed START) against the modern monitor, and unloads at its end", async () => {
    const file = scenarioFile("modern.json", {
      cycles: 6,
      unload: true,
      capabilities: 0x3e,
      guest: { ...guest, huge: true },
      events: [
        { cycle: 1, setTarget: 2048 },
        { cycle: 3, reset: true },
        { cycle: 4, failNext: { cmd: "START", count: 1, status: 8 } },
        { cycle: 4, guestUse: 10 },
      ],
    });
    const trace = join(folder, "modern-scenario.jsonl");
    const runner = new Runner(["--host", "simulated", "--driver", "modern", "--scenario", file, "--trace", trace, "--interval", "10ms"], { json: false });
    expect(await runner.exited).toStrictEqual({ status: 0, signal: null });
    expect(runner.stderr).toMatch(/guestUse\/guestRelease\/huge\/migrate events do not apply/);
    const records = readTrace(trace);
    const cycles = records.filter((r) => r.t === "cycle");
    expect(cycles.map((r) => r.cycle)).toStrictEqual([1, 2, 3, 4, 5, 6]);
    expect(cycles[1]).toMatchObject({ size: 2048, target: 2048 });
    // The reset at cycle 3: GET_TARGET answers RESET; the next cycle gives the pages back (no UNLOCK) and its START fails
    // (the forced failure); cycle 5 starts again; the unload's START(0) is cycle 7.
    const starts = records.filter((r) => r.t === "cmd" && r.cmd === "START");
    expect(starts.map((r) => [r.cycle, r.status])).toStrictEqual([
      [1, 0x3000000],
      [4, 8],
      [5, 0x3000000],
      [7, 0x3000000],
    ]);
    expect(cycles.at(-1)).toMatchObject({ size: 2048 });
    expect(records.at(-1)).toMatchObject({ t: "exit", size: 0 });
  });
});

const V1_MEMORY = "/sys/fs/cgroup/memory";
const psiAndCgroup = linuxX64 && root && existsSync("/proc/pressure/memory") && existsSync(`${V1_MEMORY}/memory.limit_in_bytes`);

describe.skipIf(!psiAndCgroup)("vmballoon run --driver modern --shrinker, on real memory pressure (needs root, PSI and a v1 memory cgroup hierarchy)", () => {
  const cgroup = `${V1_MEMORY}/vmballoon-psi-${process.pid}`;
  afterEach(() => {
    if (existsSync(cgroup)) rmdirSync(cgroup);
  });

  /** Memory stalls: a child in a cgroup of 16 MiB writes 256 MiB of file, so that it reclaims within its limit. */
  function stall(): Promise<void> {
    const file = join(folder, "stall");
    const child = spawn("/bin/sh", ["-c", `echo $$ > ${cgroup}/cgroup.procs && exec dd if=/dev/zero of=${file} bs=1M count=256 conv=fsync status=none`]);
    return new Promise((resolve) => child.on("close", () => (rmSync(file, { force: true }), resolve())));
  }

  it("a PSI trigger that fires calls the shrinker: frames given back with BATCHED_UNLOCK, then no inflation for a while", async () => {
    mkdirSync(cgroup);
    writeFileSync(`${cgroup}/memory.limit_in_bytes`, String(16 * 2 ** 20));
    const trace = join(folder, "psi.jsonl");
    // A trigger of 1 µs of stall in 2 s: any reclaim stall on the machine fires it.
    const runner = new Runner([
      "--host",
      "simulated",
      "--driver",
      "modern",
      "--target",
      "20000",
      "--shrinker",
      "--pressure",
      "some 1 2000000",
      "--trace",
      trace,
      "--interval",
      "100ms",
    ]);
    expect(await runner.until((r) => r.t === "start")).toMatchObject({ driver: "modern", shrinker: "some 1 2000000" });
    await runner.until((r) => r.t === "cycle" && r.size === 20000);
    const fullAt = runner.records.length;

    // Stalls until the run reports a shrink (waiting for the event, not for a time); at most 20 of them.
    const seen = () => runner.records.find((r) => r.t === "shrink");
    const stalls = (async () => {
      for (let i = 0; i < 20 && seen() === undefined; i++) await stall();
    })();
    const found = await Promise.race([runner.until((r) => r.t === "shrink"), stalls.then(seen)]);
    await stalls;
    expect(found).toBeDefined();
    const shrink = found!;
    // One call of the shrinker core: a sixteenth of the balloon (at least SHRINK_BATCH), deflated in scans of 128.
    expect(shrink.count).toBeGreaterThan(0);
    expect(shrink.nrToScan).toBe(Math.max(128, Math.ceil(shrink.count / 16)));
    // do_shrink_slab scans whole batches of 128 while a batch is left: the rest of nrToScan waits for the next call.
    expect(shrink.count).toBeGreaterThanOrEqual(shrink.nrToScan);
    expect(shrink.freed).toBe(Math.floor(shrink.nrToScan / 128) * 128);

    // The next cycle: smaller by what the shrink freed, and held back from inflating (the shrinker's delay).
    const shrinkAt = runner.records.indexOf(shrink);
    expect(shrinkAt).toBeGreaterThan(fullAt - 1);
    const after = await runner.until((r) => r.t === "cycle" && runner.records.indexOf(r) > shrinkAt);
    expect(after.size).toBeLessThanOrEqual(20000 - shrink.freed);
    expect(after.shrinkTimeout).toBeGreaterThan(0);
    expect(after.stats.shrink).toBeGreaterThanOrEqual(1);

    runner.child.kill("SIGTERM");
    expect(await runner.exited).toStrictEqual({ status: 0, signal: null });
    // The trace shows the shrink and the UNLOCKs it sent: as many frames as it freed (before the next shrink, if any).
    const records = readTrace(trace);
    const at = records.findIndex((r) => r.t === "shrink");
    expect(records[at]).toMatchObject({ nrToScan: shrink.nrToScan, count: shrink.count, freed: shrink.freed });
    const unlocked = records
      .slice(0, at)
      .reverse()
      .filter((r) => r.t === "cmd")
      .slice(0, Math.ceil(shrink.freed / 128));
    expect(unlocked.every((r) => r.cmd === "BATCHED_UNLOCK" && r.status === 0)).toBe(true);
    expect(unlocked.reduce((sum, r) => sum + (r.batch as [number, number][]).filter(([, status]) => status === 0).length, 0)).toBe(shrink.freed);
  }, 300_000);
});
