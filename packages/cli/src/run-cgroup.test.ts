/*
 * `vmballoon run` inside a memory cgroup smaller than its target: the
 * balloon stops below the cgroup's limit, says so once, and is never
 * OOM-killed. A v1 memory cgroup of 512 MiB is made for the test under
 * /sys/fs/cgroup/memory (as on this project's machine) and removed after.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { BIN } from "./cli-runner.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const root = typeof process.geteuid === "function" && process.geteuid() === 0;
const V1_MEMORY = "/sys/fs/cgroup/memory";
const cgroupV1 = root && existsSync(`${V1_MEMORY}/memory.limit_in_bytes`);
const CGROUP = `${V1_MEMORY}/vmballoon-test-${process.pid}`;
const LIMIT = 512 * 2 ** 20;

afterAll(() => {
  if (existsSync(CGROUP)) rmdirSync(CGROUP);
});

describe.skipIf(!linuxX64 || !cgroupV1)("vmballoon run in a memory cgroup of 512 MiB (needs root and a v1 memory cgroup hierarchy)", () => {
  it("--target 1 GiB stops below the limit, and is never OOM-killed (without the cgroup reserve it is)", async () => {
    mkdirSync(CGROUP);
    writeFileSync(`${CGROUP}/memory.limit_in_bytes`, String(LIMIT));
    // The child joins the cgroup before node starts, so that all of its memory is charged there.
    const child = spawn(
      "/bin/sh",
      [
        "-c",
        `echo $$ > ${CGROUP}/cgroup.procs && exec "$0" "$@"`,
        process.execPath,
        BIN,
        "run",
        "--json",
        "--host",
        "simulated",
        "--target",
        "262144",
        "--interval",
        "5ms",
      ],
      {
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
    const records: Record<string, any>[] = [];
    let buffered = "";
    let stderr = "";
    let wake: () => void = () => {};
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) !== -1) {
        records.push(JSON.parse(buffered.slice(0, newline)));
        buffered = buffered.slice(newline + 1);
      }
      wake();
    });
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const exited = new Promise<{ status: number | null; signal: string | null }>((resolve) =>
      child.on("close", (status, signal) => resolve({ status, signal })),
    );
    child.on("close", () => wake());

    // Wait (for cycle records, not for time) until the balloon has not grown for 40 cycles.
    let steady = 0;
    let last = -1;
    for (let seen = 0; steady < 40;) {
      while (seen < records.length && steady < 40) {
        const record = records[seen++]!;
        if (record.t !== "cycle") continue;
        steady = record.size === last ? steady + 1 : 0;
        last = record.size;
      }
      if (steady >= 40) break;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`run ended early; stderr: ${stderr}`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
    const usage = Number(readFileSync(`${CGROUP}/memory.max_usage_in_bytes`, "utf8"));
    const oomKills = Number(/^oom_kill (\d+)$/m.exec(readFileSync(`${CGROUP}/memory.oom_control`, "utf8"))?.[1] ?? 0);

    child.kill("SIGTERM");
    const { status, signal } = await exited;
    expect({ status, signal }).toStrictEqual({ status: 0, signal: null });
    expect(oomKills).toBe(0);
    // Below the limit, with most of what the cgroup allowed in the balloon.
    expect(usage).toBeLessThan(LIMIT);
    expect(last * 4096).toBeLessThan(LIMIT);
    expect(last * 4096).toBeGreaterThan(LIMIT / 4);
    expect(records.at(-1)).toMatchObject({ t: "exit", reason: "SIGTERM", size: 0, freed: last, mlockedPages: 0 });
    // Every cycle's frame check, in its record and in the totals at the exit.
    const cycles = records.filter((record) => record.t === "cycle");
    for (const { size, frames } of cycles) {
      expect(frames.checked).toBe(size + frames.released);
      expect(frames.repaired + frames.released).toBe(frames.moved); // none moves in secret memory; mlock's moves are repaired
    }
    expect(records.at(-1)!.frames.checks).toBe(cycles.length);
  }, 300_000);
});
