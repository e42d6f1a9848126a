// The in-guest check runner: runs the checks of vm/checks.mjs that belong to
// this boot (named on the kernel command line), one process each, and prints
// ONE line `VMTEST-RESULT {json}` on the console for the host to parse.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { checksFor } from "../checks.mjs";
import { evaluate } from "./expect.mjs";

const MARK = "VMTEST-RESULT ";
const CHECK_TIMEOUT_MS = 120_000;
const tail = (s, n = 600) => (s.length > n ? "…" + s.slice(-n) : s);

function kernelArgs() {
  const args = {};
  for (const word of readFileSync("/proc/cmdline", "utf8").trim().split(/\s+/)) {
    const eq = word.indexOf("=");
    if (eq > 0) args[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return args;
}

function runCheck(check) {
  const base = { name: check.name, group: check.group ?? "other", command: check.command, expect: check.expect };
  const started = Date.now();
  const [file, ...args] = check.command;
  const r = spawnSync(file, args, { cwd: "/app", encoding: "utf8", timeout: CHECK_TIMEOUT_MS, env: process.env });
  const result = {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? "",
    error: r.error ? String(r.error.message ?? r.error) : undefined,
  };
  const failures = evaluate(check.expect, result);
  return {
    ...base,
    status: failures.length === 0 ? "pass" : "fail",
    ms: Date.now() - started,
    failures,
    ended: result.signal ? `signal ${result.signal}` : `exit ${result.status}`,
    stdout: tail(result.stdout),
    stderr: tail(result.stderr),
  };
}

const dmesgLines = () => (spawnSync("dmesg", [], { encoding: "utf8" }).stdout ?? "").trim().split("\n");

const out = { boot: null, node: process.version, checks: [] };
try {
  const kernelLogBefore = dmesgLines().length;
  const args = kernelArgs();
  out.boot = args.vmtest_boot ?? null;
  if (!out.boot) throw new Error("no vmtest_boot= on the kernel command line");
  for (const check of checksFor(out.boot)) {
    const c = runCheck(check);
    out.checks.push(c);
    process.stderr.write(`VMTEST-CHECK ${c.status.toUpperCase()} ${c.name}${c.ms !== undefined ? ` (${c.ms} ms)` : ""}\n`);
  }
  // On failure, what the kernel said while the checks ran (a trapped fault, an oops).
  if (out.checks.some((c) => c.status === "fail")) out.dmesg = dmesgLines().slice(kernelLogBefore).slice(-15);
} catch (error) {
  out.error = String(error?.stack ?? error);
}
out.uptime = readFileSync("/proc/uptime", "utf8").split(" ")[0];
process.stdout.write("\n" + MARK + JSON.stringify(out) + "\n");
