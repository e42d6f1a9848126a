// Small process helpers for the host side of the QEMU harness.
import { spawnSync } from "node:child_process";
import { appendFileSync } from "node:fs";

export class StepError extends Error {}

/**
 * Runs a command, capturing its output. Throws a StepError (with the output's
 * tail) unless `allowFail`. When `log` is a path, the output is appended there.
 */
export function run(cmd, args, { cwd, env, allowFail = false, log, input } = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    env: env ?? process.env,
    encoding: "utf8",
    input,
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    maxBuffer: 256 * 1024 * 1024,
  });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (log) appendFileSync(log, `$ ${[cmd, ...args].join(" ")}\n${output}\n[exit ${r.status ?? r.signal}]\n`);
  const ok = !r.error && r.status === 0;
  if (!ok && !allowFail) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
    throw new StepError(`${cmd} ${args.join(" ")}: ${why}\n${output.trim().split("\n").slice(-20).join("\n")}`);
  }
  return { ok, status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", output };
}

/** `sh -c SCRIPT`, for pipelines. */
export function sh(script, opts) {
  return run("sh", ["-c", `set -e; ${script}`], opts);
}

/** Whether a command is on PATH. */
export function have(cmd) {
  return run("sh", ["-c", `command -v "$1"`, "sh", cmd], { allowFail: true }).ok;
}

/** Times `fn`, returning [result, seconds]. */
export async function timed(fn) {
  const t = process.hrtime.bigint();
  const value = await fn();
  return [value, Number(process.hrtime.bigint() - t) / 1e9];
}

export const fmtS = (s) => `${s.toFixed(1)} s`;
export const fmtMiB = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;
