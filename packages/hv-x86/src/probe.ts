/*
 * Probes: one real backdoor `IN`, run in a child process, so that where
 * nothing emulates the port the fault kills the child, not the caller. This
 * is the only way this package executes the backdoor where CPUID does not say
 * VMwareVMware, and only when asked.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { BACKDOOR_CMD_GETVERSION, BACKDOOR_PORT, COMMANDS, HV_PORT, describeStatus } from "@vmballoon/protocol";
import { backdoorVersionOf, type BackdoorVersion } from "./detect.js";
import { hex } from "./hex.js";
import type { Registers } from "./trampolines.js";

/** What a probe saw. */
export interface ProbeResult {
  /** The port probed: 0x5658 (backdoor) or 0x5670 (balloon). */
  readonly port: number;
  /** The command sent: GETVERSION (10) or START (0). */
  readonly command: number;
  /**
   * `answered`: the protocol answered; `silent`: the `IN` completed but
   * nothing answered (the port read all ones, or the backdoor's magic did not
   * come back); `faulted`: the `IN` killed the child; `failed`: the child
   * could not get as far as the `IN`.
   */
  readonly outcome: "answered" | "silent" | "faulted" | "failed";
  /** `ioperm` in the child: `"granted"`, or the errno's name (`"EPERM"`, `"ENOSYS"`). */
  readonly ioperm: string | null;
  /** The registers after the `IN`, when it completed. */
  readonly registers: Registers | null;
  /** The signal that ended the child, when one did. */
  readonly signal: string | null;
  /** One line saying what happened. */
  readonly detail: string;
}

export interface ProbeOptions {
  /** Most milliseconds to wait for the child (default 60 s: an emulated guest starts node slowly). */
  readonly timeoutMs?: number;
  /** The child's script (default: `probe-child.js` beside this module). */
  readonly childScript?: string;
}

/** The built child script: beside this module in `dist`; from the sources (tests), the built one. */
function defaultChildScript(): string {
  const beside = new URL("./probe-child.js", import.meta.url);
  if (existsSync(beside)) return fileURLToPath(beside);
  return fileURLToPath(new URL("../dist/probe-child.js", import.meta.url));
}

interface ChildReport {
  stage: "in" | "done" | "failed";
  ioperm?: string;
  eax?: number;
  ebx?: number;
  ecx?: number;
  edx?: number;
  error?: string;
}

interface ChildOutcome {
  readonly reports: ChildReport[];
  readonly signal: string | null;
  readonly status: number | null;
  readonly stderr: string;
  readonly timedOut: boolean;
}

function runChild(kind: "backdoor" | "balloon", options: ProbeOptions): Promise<ChildOutcome> {
  const script = options.childScript ?? defaultChildScript();
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, kind], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      const reports: ChildReport[] = [];
      for (const line of stdout.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          reports.push(JSON.parse(line) as ChildReport);
        } catch {
          // Half a line from a child that died while writing it.
        }
      }
      resolve({ reports, signal, status, stderr, timedOut });
    });
  });
}

/** Shared reading of a child's outcome; `judge` decides about completed `IN`s. */
function interpret(port: number, command: number, outcome: ChildOutcome, judge: (registers: Registers) => { answered: boolean; detail: string }): ProbeResult {
  const last = outcome.reports[outcome.reports.length - 1];
  const ioperm = outcome.reports.find((report) => report.ioperm !== undefined)?.ioperm ?? null;
  const base = { port, command, ioperm, signal: outcome.signal };
  const where = `port ${hex(port)}`;

  if (last?.stage === "done") {
    const registers = { eax: last.eax! >>> 0, ebx: last.ebx! >>> 0, ecx: last.ecx! >>> 0, edx: last.edx! >>> 0 };
    const { answered, detail } = judge(registers);
    return { ...base, outcome: answered ? "answered" : "silent", registers, detail };
  }
  if (last?.stage === "in" && outcome.signal !== null && !outcome.timedOut) {
    const permission = ioperm === "granted" ? "" : `; ioperm: ${ioperm}`;
    return {
      ...base,
      outcome: "faulted",
      registers: null,
      detail: `the IN on ${where} faulted (${outcome.signal}${permission}): nothing answers there for this process`,
    };
  }
  const why = outcome.timedOut
    ? "the probe timed out"
    : last?.stage === "failed"
      ? (last.error ?? "the probe failed")
      : (outcome.stderr.trim().split("\n").pop() ?? "") || `the probe ended with ${outcome.signal ?? `status ${outcome.status}`}`;
  return { ...base, outcome: "failed", registers: null, detail: `could not probe ${where}: ${why}` };
}

/**
 * GETVERSION on the backdoor port 0x5658, in a child process: the backdoor's
 * version when something answers (VMware, QEMU with vmport), else null —
 * never a crash of this process. The child tries `ioperm` first (QEMU needs
 * it; VMware does not) and goes on without it.
 */
export async function probeBackdoor(options: ProbeOptions = {}): Promise<{ backdoor: BackdoorVersion | null; probe: ProbeResult }> {
  const outcome = await runChild("backdoor", options);
  let backdoor: BackdoorVersion | null = null;
  const probe = interpret(BACKDOOR_PORT, BACKDOOR_CMD_GETVERSION, outcome, (registers) => {
    backdoor = backdoorVersionOf(registers);
    return backdoor
      ? { answered: true, detail: `the backdoor answered GETVERSION: version ${backdoor.version}, product type ${backdoor.productType}` }
      : { answered: false, detail: `nothing answered GETVERSION on port ${hex(BACKDOOR_PORT)} (EAX ${hex(registers.eax)}, EBX ${hex(registers.ebx)})` };
  });
  return { backdoor, probe };
}

/**
 * START (protocol 2) on the balloon port 0x5670, in a child process, after
 * `ioperm` (the balloon port is closed to user mode everywhere). `answered`
 * when EAX is a status of the protocol; an unassigned port reads 0xffffffff.
 */
export async function probeBalloon(options: ProbeOptions = {}): Promise<ProbeResult> {
  const outcome = await runChild("balloon", options);
  return interpret(HV_PORT, COMMANDS.START, outcome, (registers) => {
    if (registers.eax === 0xffffffff) {
      return { answered: false, detail: `nothing speaks the balloon protocol on port ${hex(HV_PORT)}: START read 0xffffffff` };
    }
    const status = describeStatus(registers.eax);
    return { answered: true, detail: `the balloon port ${hex(HV_PORT)} answered START with ${status ? status.name : hex(registers.eax)}` };
  });
}
