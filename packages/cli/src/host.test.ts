import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkHostTrace, parseHostScenario, type EndRecord, type HostTraceRecord } from "@vmballoon/host";
import { describe, expect, it } from "vitest";
import { BIN, STACK, jsonLines, vmballoon } from "./cli-runner.js";

const temp = () => mkdtempSync(join(tmpdir(), "vmballoon-host-"));

/** A small host of three VMs, one on each driver and one without, under pressure (shared with the host package's tests). */
const small = JSON.parse(readFileSync(new URL("../../../__fixtures__/host/small.json", import.meta.url), "utf8")) as { vms: object[] } & Record<
  string,
  unknown
>;

function writeScenario(dir: string, value: unknown, name = "host.json"): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

/** One line on stderr, naming what is wrong, exit status `status`, nothing on stdout. */
function expectOneLine(args: readonly string[], status: number, message: RegExp, input?: string) {
  const run = vmballoon(args, input === undefined ? {} : { input });
  expect(run.stderr).not.toMatch(STACK);
  expect(run.stderr.split("\n")[0]).toMatch(message);
  expect(run.stdout).toBe("");
  expect(run.status).toBe(status);
}

describe("vmballoon host", () => {
  it("runs the built-in overcommitted host by default: the host over time, each VM's peak balloon, swap and shortfall", () => {
    const run = vmballoon(["host"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^vmballoon host — overcommit: 1800 s, 4 VMs .* policy esx\n {2}four 4 GiB VMs on a 10 GiB host under ESX, today's driver\n/);
    for (const vm of ["db", "web", "batch", "cache"]) expect(run.stdout).toMatch(new RegExp(`\\n  ${vm} +modern +\\d+ MiB +\\d+ MiB +\\d+ MiB +\\d+\\n`));
    expect(run.stdout).toMatch(/seconds +state +least free +balloon +swapped/);
  });

  it("on a terminal (util-linux's script): a progress line on stderr, cleared at the end, then the summary", () => {
    const dir = temp();
    const vms = Array.from({ length: 8 }, (_, i) => ({
      name: `v${i}`,
      memMiB: 64,
      driver: "modern",
      demand: [
        [0, 0],
        [1000, 50],
        [2000, 10],
      ],
    }));
    const file = writeScenario(dir, { seconds: 3000, host: { memMiB: 400 }, vms });
    const command = [process.execPath, BIN, "host", "--scenario", file].map((a) => `'${a}'`).join(" ");
    const run = spawnSync("script", ["-qec", command, "/dev/null"], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 60_000 });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^\rsecond 0 of 3000(\rsecond \d+ of 3000)*\r\u001b\[K/);
    expect(run.stdout).toMatch(/vmballoon host — .*host\.json: 3000 s, 8 VMs/);
    expect(run.stdout).toMatch(/\n {2}v7 +modern +\d+ MiB/);
  });

  it("--json: one summary whose totals are the trace's end record; --trace: a trace the checker accepts", () => {
    const dir = temp();
    const traceFile = join(dir, "t.jsonl");
    const file = writeScenario(dir, small);
    const run = vmballoon(["host", "--scenario", file, "--json", "--trace", traceFile]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout) as { vms: { vm: string; peakBalloon: number; swapOut: number; driver: string }[]; policy: string };
    const records = jsonLines(readFileSync(traceFile, "utf8")) as HostTraceRecord[];
    const end = records[records.length - 1]!;
    expect(end.t).toBe("end");
    expect(summary.policy).toBe("esx");
    expect(summary.vms.map(({ vm, peakBalloon, swapOut }) => ({ vm, peakBalloon, swapOut }))).toEqual(
      (end as EndRecord).vms.map(({ vm, peakBalloon, swapOut }) => ({ vm, peakBalloon, swapOut })),
    );
    expect(summary.vms.some((v) => v.peakBalloon > 0)).toBe(true);
    expect(checkHostTrace(parseHostScenario(JSON.stringify(small)), records)).toEqual([]);
  });

  it("--policy and --every: the trace has each VM's record only every N seconds and at rounds", () => {
    const run = vmballoon(["host", "--scenario", "policies", "--policy", "proxmox", "--every", "100", "--trace", "-"]);
    expect(run.status).toBe(0);
    const records = jsonLines(run.stdout) as HostTraceRecord[];
    const seconds = new Set(records.filter((r) => r.t === "vm").map((r) => (r as { second: number }).second));
    expect([...seconds].every((s) => s % 100 === 0 || s % 10 === 0)).toBe(true);
    expect(seconds.has(100)).toBe(true);
    expect(seconds.has(101)).toBe(false);
    const round = records.find((r) => r.t === "policy") as { input: { policy: string } };
    expect(round.input.policy).toBe("proxmox");
  });

  it("--vm-traces: each VM's scenario gives its driver trace through the built vmballoon simulate, line for line, for both drivers", () => {
    const dir = temp();
    const out = join(dir, "vms");
    const run = vmballoon(["host", "--scenario", writeScenario(dir, small), "--vm-traces", out]);
    expect(run.status).toBe(0);
    for (const [vm, driver] of [
      ["old", "seed"],
      ["new", "modern"],
    ] as const) {
      const replay = vmballoon(["simulate", "--driver", driver, "--scenario", join(out, `${vm}.scenario.json`), "--trace", "-"]);
      expect(replay.stderr).toBe("");
      expect(replay.status).toBe(0);
      const own = readFileSync(join(out, `${vm}.trace.jsonl`), "utf8");
      expect(own.split("\n").length).toBeGreaterThan(200);
      expect(replay.stdout).toBe(own);
    }
    expect(() => readFileSync(join(out, "bare.trace.jsonl"))).toThrow(/ENOENT/);
  });

  it("reads a VM's workload.csv beside the scenario, in GWA-T-12's layout too; a scenario from stdin", () => {
    const dir = temp();
    const header = "Timestamp [ms];\tCPU cores;\tMemory capacity provisioned [KB];\tMemory usage [KB]";
    writeFileSync(join(dir, "vm1.csv"), `${header}\n1376314846;\t2;\t65536;\t20480\n1376315146;\t2;\t65536;\t40960\n`);
    writeFileSync(join(dir, "vm2.csv"), "second,demandMiB,activeMiB\n0,10,5\n100,30,5\n");
    const scenario = {
      seconds: 60,
      host: { memMiB: 256 },
      vms: [
        { name: "a", memMiB: 64, workload: { csv: "vm1.csv" } },
        { name: "b", memMiB: 64, workload: { csv: "vm2.csv" } },
      ],
    };
    const file = writeScenario(dir, scenario);
    const run = vmballoon(["host", "--scenario", file, "--trace", "-"]);
    expect(run.status).toBe(0);
    const vm = (name: string, second: number) =>
      (jsonLines(run.stdout) as HostTraceRecord[]).find((r) => r.t === "vm" && r.vm === name && r.second === second) as { demand: number; active: number };
    expect(vm("a", 0)).toMatchObject({ demand: 20 * 256, active: 5 * 256 });
    expect(vm("a", 60).demand).toBe(Math.floor((20 + (20 * 60) / 300) * 256));
    expect(vm("b", 60)).toMatchObject({ demand: 22 * 256, active: 5 * 256 });
    const stdin = vmballoon(["host", "--scenario", "-", "--json"], { input: JSON.stringify(small) });
    expect(stdin.status).toBe(0);
    expect(JSON.parse(stdin.stdout).vms).toHaveLength(3);
  });

  it("bad flags and bad input: one line naming what is wrong, exit status 2, nothing run", () => {
    const dir = temp();
    expectOneLine(["host", "--policy", "xen"], 2, /^vmballoon: --policy must be esx, mom or proxmox, not "xen"$/);
    expectOneLine(["host", "--driver", "none"], 2, /^vmballoon: --driver must be seed or modern/);
    expectOneLine(["host", "--every", "0"], 2, /^vmballoon: --every must be a whole number of seconds/);
    expectOneLine(["host", "--every", "x"], 2, /^vmballoon: --every must be a whole number of seconds/);
    expectOneLine(["host", "--json", "--trace", "-"], 2, /both want stdout/);
    expectOneLine(["host", "--bogus"], 2, /Unknown option/);
    expectOneLine(["host", "--scenario", join(dir, "missing.json")], 2, /^vmballoon: cannot read the host scenario .*missing.json: no such file or directory$/);
    expectOneLine(["host", "--scenario", writeScenario(dir, { ...small, seconds: "x" })], 2, /host.json: seconds: expected a number, got "x"$/);
    expectOneLine(
      ["host", "--scenario", writeScenario(dir, { ...small, vms: [{ ...small.vms[0], demand: [[0, -5]] }] })],
      2,
      /vms\[0\]\.demand\[0\]\.MiB: -5 is below 0$/,
    );
    const csv = { ...small, vms: [{ name: "c", memMiB: 64, workload: { csv: "nope.csv" } }] };
    expectOneLine(
      ["host", "--scenario", writeScenario(dir, csv)],
      2,
      /vms\[0\]\.workload\.csv: cannot read the workload .*nope.csv: no such file or directory$/,
    );
    writeFileSync(join(dir, "bad.csv"), "0,10\n5,oops\n");
    const bad = { ...small, vms: [{ name: "c", memMiB: 64, workload: { csv: "bad.csv" } }] };
    expectOneLine(["host", "--scenario", writeScenario(dir, bad)], 2, /vms\[0\]\.workload\.csv: bad.csv: line 2: demandMiB is "oops"/);
    const notDir = join(dir, "file");
    writeFileSync(notDir, "");
    expectOneLine(["host", "--scenario", writeScenario(dir, small), "--vm-traces", notDir], 2, /--vm-traces: .* is not a directory/);
    expectOneLine(["host", "--scenario", "-"], 2, /^vmballoon: stdin: not valid JSON/, "{");
  });

  it("a workload file it may not read: one line, exit status 77", () => {
    if (process.getuid?.() !== 0) {
      expect(process.getuid?.()).not.toBe(0);
      return;
    }
    const dir = temp();
    writeFileSync(join(dir, "secret.csv"), "0,1\n");
    chmodSync(join(dir, "secret.csv"), 0o600);
    chmodSync(dir, 0o755);
    const file = writeScenario(dir, { ...small, vms: [{ name: "c", memMiB: 64, workload: { csv: "secret.csv" } }] });
    chmodSync(file, 0o644);
    const run = vmballoon(["host", "--scenario", file], { uid: 65534 });
    expect(run.stderr).toMatch(/^vmballoon: .*secret.csv: permission denied\n$/);
    expect(run.status).toBe(77);
  });
});
