import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HvError } from "@vmballoon/hv-x86";
import { BIN, vmballoon } from "./cli-runner.js";
import { EXIT, exitStatusOf } from "./errors.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const root = typeof process.geteuid === "function" && process.geteuid() === 0;
const folder = mkdtempSync(join(tmpdir(), "vmballoon-run-"));

function scenarioFile(name: string, scenario: object): string {
  const file = join(folder, name);
  writeFileSync(file, JSON.stringify(scenario));
  return file;
}

const guest = { totalPages: 262144, freePages: 200000, firstPfn: 4096, nosleepReserve: 1024, sleepReserve: 256 };

/** A running `vmballoon run` whose JSON Lines are read as they come. */
class Runner {
  readonly child: ChildProcessWithoutNullStreams;
  readonly records: Record<string, any>[] = [];
  stderr = "";
  private buffered = "";
  private waiters: (() => void)[] = [];
  readonly exited: Promise<{ status: number | null; signal: string | null }>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, "run", "--json", ...args], { env: { ...process.env, NO_COLOR: "1" } });
    this.child.stdout.setEncoding("utf8").on("data", (text: string) => {
      this.buffered += text;
      let newline: number;
      while ((newline = this.buffered.indexOf("\n")) !== -1) {
        this.records.push(JSON.parse(this.buffered.slice(0, newline)));
        this.buffered = this.buffered.slice(newline + 1);
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.child.stderr.setEncoding("utf8").on("data", (text: string) => (this.stderr += text));
    this.exited = new Promise((resolve) => this.child.on("close", (status, signal) => resolve({ status, signal })));
    running.push(this);
  }

  /** Waits for a record that satisfies `test`. */
  async until(test: (record: Record<string, any>) => boolean, timeoutMs = 20_000): Promise<Record<string, any>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.records.find(test);
      if (found) return found;
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`no such record; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  statusKiB(field: string): number {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${this.child.pid}/status`, "utf8"));
    return Number(match?.[1]);
  }
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
  ])("%j", (args, message) => {
    const { status, stdout, stderr } = vmballoon(["run", ...args]);
    expect(status).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.split("\n")[0]).toBe(`vmballoon: ${message}`);
  });

  it("a scenario that breaks a rule is named by file and field", () => {
    const file = scenarioFile("bad.json", { cycles: 3, unload: true, guest, events: [{ cycle: 9, setTarget: 1 }] });
    const { status, stderr } = vmballoon(["run", "--host", "simulated", "--scenario", file]);
    expect(status).toBe(2);
    expect(stderr).toBe(`vmballoon: ${file}: events[0].cycle: cycle 9 is past the scenario's last cycle (3)\n`);
  });
});

describe.skipIf(!linuxX64)("vmballoon run --host vmware, off VMware", () => {
  const vmware = linuxX64 && JSON.parse(vmballoon(["detect", "--json"]).stdout).vmware === true;

  it.skipIf(vmware)("refuses with status 69 and one line naming what CPUID says", () => {
    const { status, stdout, stderr } = vmballoon(["run"]);
    expect(status).toBe(69);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^vmballoon: not a VMware guest \(CPUID says '[^']+'\): there is no balloon to drive here \(--probe tries the balloon port in a child process\)\n$/);
  });

  it.skipIf(vmware)("--probe tries START on port 0x5670 in a child, and says nothing speaks the balloon protocol (status 69)", () => {
    const { status, stderr } = vmballoon(["run", "--host", "vmware", "--probe"]);
    expect(status).toBe(69);
    expect(stderr.split("\n").length).toBe(2); // one line
    expect(stderr).toMatch(/^vmballoon: nothing speaks the balloon protocol on port 0x5670: /);
  });
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

describe.skipIf(!linuxX64 || !root)("vmballoon run --host simulated, behind this machine's memory", () => {
  it("without root: status 77 and one line saying frame numbers need CAP_SYS_ADMIN", () => {
    const { status, stderr } = vmballoon(["run", "--host", "simulated", "--target", "16"], { uid: 65534 });
    expect(status).toBe(77);
    expect(stderr).toBe("vmballoon: reading frame numbers from /proc/self/pagemap needs CAP_SYS_ADMIN (run as root): this process sees them as 0\n");
  });

  it("--target 16384 reaches 64 MiB locked, writes its stats file, and on SIGTERM unloads and exits 0 with the memory returned", async () => {
    const stats = join(folder, "vmmemctl");
    const runner = new Runner(["--host", "simulated", "--target", "16384", "--stats-file", stats, "--interval", "200ms"]);
    const start = await runner.until((r) => r.t === "start");
    expect(start).toMatchObject({ host: "simulated", target: 16384, intervalMs: 200, statsFile: stats });

    const full = await runner.until((r) => r.t === "cycle" && r.size === 16384);
    expect(full.target).toBe(16384);
    expect(full.lockedPages).toBe(16384);
    expect(full.stats.lock).toBe(16384);
    // The kernel's view of the process: 64 MiB locked (as good as exactly: the idle batch was returned).
    expect(runner.statusKiB("VmLck")).toBe(65536);

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
    expect(exit).toMatchObject({ t: "exit", reason: "SIGTERM", size: 0, freed: 16384, lockedPages: 0, vmLckKiB: 0 });
    // Like the kernel's debugfs file, the stats file goes with the driver.
    expect(existsSync(stats)).toBe(false);
    expect(runner.stderr).toBe("");
  });

  it("SIGINT unloads too, and says so on stderr without --json", async () => {
    const child = spawn(process.execPath, [BIN, "run", "--host", "simulated", "--target", "1000", "--interval", "100ms"], { env: { ...process.env, NO_COLOR: "1" } });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const done = new Promise<number | null>((resolve) => child.on("close", (status) => resolve(status)));
    const deadline = Date.now() + 20_000;
    while (!stderr.includes("at its target") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGINT");
    expect(await done).toBe(0);
    expect(stderr).toMatch(/balloon 1000 pages, at its target/);
    expect(stderr).toMatch(/unloaded \(SIGINT\): START sent, 1000 pages \(3\.9 MiB\) given back; frame checks \d+: \d+ pages moved, \d+ repaired\n$/);
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
    expect(runner.records.at(-1)).toMatchObject({ t: "exit", reason: "scenario", freed: 1000, lockedPages: 0, vmLckKiB: 0 });
  });

  it("a load the monitor refuses fails with status 1 and says what it answered", () => {
    const file = scenarioFile("refused.json", { cycles: 2, unload: true, guest, events: [{ cycle: 0, failNext: { cmd: "START", count: 1, status: 8 } }] });
    const { status, stdout, stderr } = vmballoon(["run", "--host", "simulated", "--scenario", file, "--json"]);
    expect(status).toBe(1);
    expect(stdout.trim().split("\n").map((line) => JSON.parse(line).t)).toEqual(["start", "initFailed"]);
    expect(stderr).toBe("vmballoon: the balloon did not load: START answered ERROR_BUSY\n");
  });

  it("a stats file that cannot be written stops the run before START (status 2), with no memory held", () => {
    const { status, stdout, stderr } = vmballoon(["run", "--host", "simulated", "--target", "100", "--stats-file", "/nonexistent/dir/vmmemctl", "--json"]);
    expect(status).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe("vmballoon: cannot write the stats file /nonexistent/dir/vmmemctl: no such file or directory\n");
  });
});
