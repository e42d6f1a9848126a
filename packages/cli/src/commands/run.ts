/*
 * `vmballoon run`: the driver itself, in userspace. The engine of
 * @vmballoon/core with the real page source of @vmballoon/hv-x86, and either
 * the real balloon port (`--host vmware`) or the reference monitor of
 * SIMULATION.md (`--host simulated`). Time belongs here: one cycle a second
 * (the seed's delayed work), the stats file rewritten after each, and
 * SIGTERM/SIGINT unloading as the seed's `vmballoon_exit` does.
 */
import { readFileSync, rmSync } from "node:fs";
import { MAX_PFN, commandName, describeStatus } from "@vmballoon/protocol";
import { Balloon, debugfsText, type Hypervisor, type HypervisorReply } from "@vmballoon/core";
import { EventSchedule, SimMonitor, type Scenario } from "@vmballoon/core/sim";
import { BalloonHypervisor, LinuxPageSource, SystemCallError, detect, probeBalloon, type ProbeResult } from "@vmballoon/hv-x86";
import { CliError, EXIT, UsageError } from "../errors.js";
import { writeAtomically } from "../files.js";
import { isTerminal, mebibytes } from "../output.js";
import { optionValue, type OptionValue } from "../options.js";
import { loadScenario } from "../scenario-file.js";

export interface RunOptions {
  readonly host?: OptionValue;
  readonly target?: OptionValue;
  readonly scenario?: OptionValue;
  readonly statsFile?: OptionValue;
  readonly interval?: OptionValue;
  readonly force?: boolean;
  readonly probe?: boolean;
  readonly json?: boolean;
}

/** The run, as the options describe it, checked before anything runs. */
interface Plan {
  readonly host: "vmware" | "simulated";
  readonly intervalMs: number;
  readonly target: number | undefined;
  readonly scenario: { readonly file: string; readonly scenario: Scenario } | undefined;
  readonly statsFile: string | undefined;
  readonly force: boolean;
  readonly probe: boolean;
  readonly json: boolean;
}

const hex = (value: number) => `0x${(value >>> 0).toString(16)}`;

/** `1s`, `250ms`, `2` (seconds), `0.5s`, `1m` → milliseconds. */
export function parseInterval(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  const unit = match?.[2] ?? "s";
  const ms = match ? Number(match[1]) * (unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000) : Number.NaN;
  if (!(ms >= 1 && ms <= 86_400_000)) {
    throw new UsageError(`--interval must be a duration from 1ms to 24h such as 1s, 250ms or 2, not '${value}'`);
  }
  return Math.round(ms);
}

function plan(options: RunOptions): Plan {
  const host = options.host === undefined ? "vmware" : String(options.host);
  if (host !== "vmware" && host !== "simulated") throw new UsageError(`--host must be vmware or simulated, not '${host}'`);
  const intervalMs = options.interval === undefined ? 1000 : parseInterval(String(options.interval));
  const scenarioFile = optionValue(options.scenario, "--scenario", "a file name");
  const statsFile = optionValue(options.statsFile, "--stats-file", "a file name");

  let target: number | undefined;
  if (options.target !== undefined) {
    target = typeof options.target === "number" ? options.target : Number.NaN;
    if (!Number.isInteger(target) || target < 0 || target > MAX_PFN) {
      throw new UsageError(`--target must be a whole number of pages from 0 to ${MAX_PFN}, not '${String(options.target)}'`);
    }
  }

  if (host === "vmware") {
    if (target !== undefined || scenarioFile !== undefined) {
      throw new UsageError("--target and --scenario are for --host simulated: on VMware the host sets the target");
    }
  } else {
    if (options.force || options.probe) throw new UsageError("--force and --probe are for --host vmware");
    if ((target === undefined) === (scenarioFile === undefined)) {
      throw new UsageError("--host simulated needs either --target N (pages) or --scenario FILE");
    }
  }
  const scenario = scenarioFile === undefined ? undefined : { file: scenarioFile, scenario: loadScenario(scenarioFile) };
  return { host, intervalMs, target, scenario, statsFile, force: options.force === true, probe: options.probe === true, json: options.json === true };
}

/** Why there is no balloon to drive here, from a probe of the balloon port. */
function probeVerdict(probe: ProbeResult, cpu: string): string {
  const port = `port ${hex(probe.port)}`;
  switch (probe.outcome) {
    case "answered":
      return `${probe.detail}, but ${cpu}, not VMwareVMware: vmballoon runs the backdoor in-process only where CPUID says VMware`;
    case "silent":
      return `nothing speaks the balloon protocol on ${port}: START read ${hex(probe.registers!.eax)} (${cpu})`;
    case "faulted": {
      const ioperm = probe.ioperm === "granted" || probe.ioperm === null ? "" : `; ioperm: ${probe.ioperm}`;
      return `nothing speaks the balloon protocol on ${port}: the IN faulted in the probe (${probe.signal}${ioperm}) (${cpu})`;
    }
    default:
      return `${probe.detail} (${cpu})`;
  }
}

/** `--host vmware`: the checks of DESIGN.md, each failing with one line, then the real port. */
async function openVmware(plan: Plan): Promise<BalloonHypervisor> {
  const found = detect();
  if (!found.vmware) {
    const cpu = found.hypervisor ? `CPUID says '${found.hypervisor}'` : "CPUID shows no hypervisor";
    if (!plan.probe) {
      throw new CliError(`not a VMware guest (${cpu}): there is no balloon to drive here (--probe tries the balloon port in a child process)`, EXIT.UNAVAILABLE);
    }
    throw new CliError(probeVerdict(await probeBalloon(), cpu), EXIT.UNAVAILABLE);
  }
  if (found.balloonDriver !== null && !plan.force) {
    throw new CliError(
      `the kernel's balloon driver ${found.balloonDriver} is loaded and owns the balloon: unload it (modprobe -r ${found.balloonDriver}) or pass --force`,
      EXIT.UNAVAILABLE,
    );
  }
  return BalloonHypervisor.open();
}

/** Remembers the last reply, so that a failed load can say what the host answered. */
class LastReply implements Hypervisor {
  command = -1;
  status = 0;
  constructor(private readonly inner: Hypervisor) {}
  call(command: number, argument: number): HypervisorReply {
    const reply = this.inner.call(command, argument);
    this.command = command;
    this.status = reply.status;
    return reply;
  }
}

function vmLckKiB(): number {
  const match = /^VmLck:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) : Number.NaN;
}

/**
 * JSON Lines on stdout with `--json`. Stops writing when stdout fails: the
 * reader went away (EPIPE), or a full disk, which the program's handler of
 * stdout's errors reports (one line, exit status 1). The balloon goes on.
 */
class Emitter {
  private closed = false;
  constructor(private readonly enabled: boolean) {
    if (enabled) process.stdout.on("error", () => (this.closed = true));
  }
  emit(record: object): void {
    if (this.enabled && !this.closed) process.stdout.write(`${JSON.stringify(record)}\n`);
  }
}

/** Messages on stderr: a status line on a terminal, notable changes only elsewhere. */
class Narrator {
  private readonly terminal = isTerminal(process.stderr);
  private lastTarget = -1;
  private atTarget = false;
  private statusShown = false;

  constructor(private readonly quiet: boolean) {}

  line(text: string): void {
    if (this.statusShown) process.stderr.write("\r\u001b[K");
    this.statusShown = false;
    process.stderr.write(`vmballoon: ${text}\n`);
  }

  cycle(cycle: number, size: number, target: number): void {
    if (this.terminal && !this.quiet) {
      process.stderr.write(`\r\u001b[Kcycle ${cycle}: balloon ${size} pages (${mebibytes(size)}), target ${target}`);
      this.statusShown = true;
      return;
    }
    if (this.quiet) return;
    if (target !== this.lastTarget) {
      this.lastTarget = target;
      this.atTarget = size === target;
      this.line(`cycle ${cycle}: target ${target} pages (${mebibytes(target)}); balloon ${size} pages${this.atTarget ? ", at its target" : ""}`);
    } else if (!this.atTarget && size === target) {
      this.atTarget = true;
      this.line(`cycle ${cycle}: balloon at its target, ${size} pages (${mebibytes(size)})`);
    }
  }
}

export async function run(options: RunOptions): Promise<number> {
  const settings = plan(options);
  const emitter = new Emitter(settings.json);
  const narrator = new Narrator(settings.json);

  // The host first (its checks say whether there is anything to do here), then the memory.
  const realHost = settings.host === "vmware" ? await openVmware(settings) : undefined;
  const source = LinuxPageSource.open();
  let monitor: SimMonitor | undefined;
  let hypervisor: Hypervisor;
  if (realHost) hypervisor = realHost;
  else {
    monitor = new SimMonitor({ firstPfn: 0, frames: source.frameLimit(), totalPages: source.totalPages() });
    if (settings.target !== undefined) monitor.target = settings.target;
    hypervisor = monitor;
  }
  const lastReply = new LastReply(hypervisor);
  let loaded = false;
  // The seed's pr_err messages; a failed load is reported below, in one line.
  const balloon = new Balloon(lastReply, source, { onError: (message) => loaded && narrator.line(message) });

  const statsFile = settings.statsFile;
  // The scenario's monitor events; the guest is this machine, so guestUse/guestRelease do not apply.
  const schedule = new EventSchedule(settings.scenario?.scenario.events ?? []);
  const enterCycle = (cycle: number) => {
    if (monitor) schedule.apply(cycle, monitor);
  };

  // Stop on SIGTERM/SIGINT: the wait between cycles ends at once, and the unload follows.
  let stopSignal: NodeJS.Signals | undefined;
  let wake: () => void = () => {};
  const onSignal = (signal: NodeJS.Signals) => {
    stopSignal ??= signal;
    wake();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  try {
    // Checked before the load: a stats file that cannot be written stops the run before START.
    if (statsFile !== undefined) writeAtomically(statsFile, debugfsText(balloon.snapshot()), "write the stats file");

    const scenario = settings.scenario?.scenario;
    emitter.emit({
      t: "start",
      host: settings.host,
      pid: process.pid,
      intervalMs: settings.intervalMs,
      totalPages: source.totalPages(),
      target: settings.target ?? null,
      scenario: settings.scenario?.file ?? null,
      statsFile: statsFile ?? null,
    });
    const what =
      settings.host === "vmware"
        ? "the VMware balloon port 0x5670"
        : settings.scenario
          ? `the reference monitor, scenario ${settings.scenario.file} (${scenario!.cycles} cycles, then ${scenario!.unload ? "unload" : "keeps running"})`
          : `the reference monitor, target ${settings.target} pages (${mebibytes(settings.target!)})`;
    if (!settings.json) {
      narrator.line(`driving ${what} with this machine's memory (${source.totalPages()} pages), a cycle every ${settings.intervalMs} ms; SIGTERM or Ctrl-C unloads`);
      if (scenario && (scenario.events.some((e) => e.guestUse !== undefined || e.guestRelease !== undefined))) {
        narrator.line("the guest is this machine: the scenario's guest section and guestUse/guestRelease events do not apply");
      }
    }

    enterCycle(0);
    if (!balloon.init()) {
      const status = describeStatus(lastReply.status);
      const command = commandName(lastReply.command) ?? String(lastReply.command);
      emitter.emit({ t: "initFailed", cmd: command, status: lastReply.status });
      throw new CliError(`the balloon did not load: ${command} answered ${status ? status.name : hex(lastReply.status)}`, EXIT.FAILURE);
    }
    loaded = true;

    let stopReason: string | undefined;
    for (let cycle = 1; ; cycle++) {
      if (stopSignal !== undefined) break;
      enterCycle(cycle);
      balloon.work();
      // The frame the host was told must be the frame the page sits on: moved pages are repaired (UNLOCK, LOCK).
      const frames = balloon.checkFrames();
      source.releaseIdle();
      const snapshot = balloon.snapshot();
      if (statsFile !== undefined) writeAtomically(statsFile, debugfsText(snapshot), "write the stats file");
      emitter.emit({
        t: "cycle",
        cycle,
        ...snapshot,
        lockedPages: source.lockedPages,
        frames,
      });
      narrator.cycle(cycle, snapshot.size, snapshot.target);
      if (scenario && scenario.unload && cycle >= scenario.cycles) {
        stopReason = "scenario";
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, settings.intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
        if (stopSignal !== undefined) wake();
      });
    }

    // vmballoon_exit: START, then every page freed without UNLOCK.
    const held = balloon.snapshot().size;
    balloon.exit();
    loaded = false;
    source.releaseIdle();
    const lockedPages = source.lockedPages;
    source.close();
    // The kernel's debugfs file goes away with the driver; so does this one.
    if (statsFile !== undefined) rmSync(statsFile, { force: true });
    const reason = stopSignal ?? stopReason ?? "scenario";
    const frames = balloon.frameCheckTotals();
    emitter.emit({ t: "exit", reason, size: balloon.snapshot().size, freed: held, lockedPages, vmLckKiB: vmLckKiB(), frames });
    if (!settings.json) {
      const checks = `frame checks ${frames.checks}: ${frames.moved} pages moved, ${frames.repaired} repaired`;
      narrator.line(`unloaded (${reason}): START sent, ${held} pages (${mebibytes(held)}) given back; ${checks}`);
    }
    return EXIT.OK;
  } catch (error) {
    // Whatever went wrong, the memory goes back before the error is reported.
    if (loaded) {
      try {
        balloon.exit();
      } catch {
        // The error being reported matters more than this one.
      }
    }
    source.close();
    // A system call that failed under the page source: one line, status 1. Anything else is a bug, and shows as one.
    if (error instanceof SystemCallError) throw new CliError(`failed while running: ${error.message}`, EXIT.FAILURE, { cause: error });
    throw error;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}
