/*
 * `vmballoon run`: the driver itself, in userspace. The engine of
 * @vmballoon/core — the seed's (`--driver seed`, the default) or today's
 * Linux driver's (`--driver modern`) — with the real page source of
 * @vmballoon/hv-x86, and either the real balloon port (`--host vmware`) or
 * the reference monitor of SIMULATION.md / SIMULATION-MODERN.md (`--host
 * simulated`). With today's driver and `--shrinker`, a PSI trigger on
 * /proc/pressure/memory stands in for the kernel's shrinker. Time belongs here: one cycle a second
 * (the seed's delayed work), the stats file rewritten after each, the trace
 * flushed after each, and every way out (SIGTERM, SIGINT, SIGHUP, SIGQUIT, an
 * error) unloading as the seed's `vmballoon_exit` does. One run at a time: a
 * lock taken before START.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { CAPABILITIES, MAX_PFN, commandName, describeStatus } from "@vmballoon/protocol";
import {
  Balloon,
  ModernBalloon,
  NO_PAGE,
  debugfsText,
  type FrameCheckTotals,
  type Hypervisor,
  type HypervisorReply,
  type ModernHypervisor,
  type ModernHypervisorReply,
} from "@vmballoon/core";
import {
  EventSchedule,
  ModernEventSchedule,
  ModernSimMonitor,
  ModernTracingHypervisor,
  SimMonitor,
  TracingHypervisor,
  builtinModernScenario,
  cycleRecord,
  formatTraceRecord,
  modernCycleRecord,
  parseModernScenario,
  shrinkSlab,
  type ModernScenario,
  type ModernTraceRecord,
  type Scenario,
  type TraceRecord,
} from "@vmballoon/core/sim";
import {
  BalloonHypervisor,
  DEFAULT_PRESSURE_TRIGGER,
  LinuxPageSource,
  MemoryPressure,
  ModernBalloonHypervisor,
  checkPressureTrigger,
  detect,
  hex,
  isHeld,
  parseMeminfo,
  probeBalloon,
  tryLock,
  type HeldLock,
  type PageSourceOptions,
  type ProbeResult,
} from "@vmballoon/hv-x86";
import { CliError, EXIT, UsageError, describeFileError } from "../errors.js";
import { writeAtomically } from "../files.js";
import { LineWriter } from "../trace-writer.js";
import { isTerminal, mebibytes } from "../output.js";
import { driverOf, optionValue, type Driver, type OptionValue } from "../options.js";
import { loadScenario } from "../scenario-file.js";

export interface RunOptions {
  readonly host?: OptionValue;
  readonly target?: OptionValue;
  readonly scenario?: OptionValue;
  readonly statsFile?: OptionValue;
  readonly trace?: OptionValue;
  readonly lockFile?: OptionValue;
  readonly interval?: OptionValue;
  readonly force?: boolean;
  readonly probe?: boolean;
  readonly json?: boolean;
  readonly driver?: OptionValue;
  readonly shrinker?: boolean;
  readonly pressure?: OptionValue;
}

/** The run, as the options describe it, checked before anything runs. */
interface Plan {
  readonly driver: Driver;
  readonly host: "vmware" | "simulated";
  readonly intervalMs: number;
  readonly target: number | undefined;
  /** The seed's scenario, or today's driver's (`--driver modern`: its keys and events). */
  readonly scenario: { readonly file: string; readonly scenario: Scenario | ModernScenario } | undefined;
  /** The module parameter `vmwballoon_shrinker_enable` (today's driver): `--shrinker`, or the scenario's `shrinker`. */
  readonly shrinker: boolean;
  /** The PSI trigger of the shrinker (with `shrinker`). */
  readonly pressure: string;
  readonly statsFile: string | undefined;
  readonly trace: string | undefined;
  readonly lockFile: string;
  readonly force: boolean;
  readonly probe: boolean;
  readonly json: boolean;
}

/** The lock that makes one run the balloon's only owner (DESIGN.md, "One owner"). */
export const DEFAULT_LOCK_FILE = "/run/vmballoon.lock";

/**
 * What `run` writes to /proc/self/oom_score_adj: the first process the OOM
 * killer takes. Its locked pages are the memory the guest wants back first,
 * and its death gives them back; the unload it loses is made good by the next
 * START (DESIGN.md, "oom_score_adj").
 */
export const OOM_SCORE_ADJ = 1000;

/** The signals that unload and end the run, each with exit status 0. */
export const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] as const;

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
  const driver = driverOf(options.driver);
  const host = options.host === undefined ? "vmware" : String(options.host);
  if (host !== "vmware" && host !== "simulated") throw new UsageError(`--host must be vmware or simulated, not '${host}'`);
  const intervalMs = options.interval === undefined ? 1000 : parseInterval(String(options.interval));
  const scenarioFile = optionValue(options.scenario, "--scenario", "a file name");
  const statsFile = optionValue(options.statsFile, "--stats-file", "a file name");
  const trace = optionValue(options.trace, "--trace", "a file name ('-' for stdout)");
  const lockFile = optionValue(options.lockFile, "--lock-file", "a file name") ?? DEFAULT_LOCK_FILE;
  if (options.json && trace === "-") throw new UsageError("--json and --trace - both want stdout; give --trace a file");

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
  const pressureOption = optionValue(options.pressure, "--pressure", "a PSI trigger such as 'some 150000 2000000'");
  if (driver === "seed" && (options.shrinker || pressureOption !== undefined)) {
    throw new UsageError("--shrinker and --pressure are for --driver modern: the seed has no shrinker");
  }
  if (pressureOption !== undefined && !options.shrinker) throw new UsageError("--pressure sets the trigger of --shrinker: give --shrinker too");
  const pressure = pressureOption ?? DEFAULT_PRESSURE_TRIGGER;
  const pressureProblem = checkPressureTrigger(pressure);
  if (pressureProblem !== undefined) throw new UsageError(`--pressure: ${pressureProblem}, not '${pressure}'`);
  const scenario =
    scenarioFile === undefined
      ? undefined
      : { file: scenarioFile, scenario: driver === "modern" ? loadScenario(scenarioFile, parseModernScenario) : loadScenario(scenarioFile) };
  const scenarioShrinker = scenario !== undefined && "shrinker" in scenario.scenario && scenario.scenario.shrinker;
  return {
    driver,
    host,
    shrinker: options.shrinker === true || scenarioShrinker,
    pressure,
    intervalMs,
    target,
    scenario,
    statsFile,
    trace,
    lockFile,
    force: options.force === true,
    probe: options.probe === true,
    json: options.json === true,
  };
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

/** `--host vmware`: the checks of DESIGN.md, each failing with one line, then the real port (the driver's). */
async function openVmware(plan: Plan): Promise<BalloonHypervisor | ModernBalloonHypervisor> {
  const found = detect();
  if (!found.vmware) {
    const cpu = found.hypervisor ? `CPUID says '${found.hypervisor}'` : "CPUID shows no hypervisor";
    if (!plan.probe) {
      throw new CliError(
        `not a VMware guest (${cpu}): there is no balloon to drive here (--probe tries the balloon port in a child process)`,
        EXIT.UNAVAILABLE,
      );
    }
    throw new CliError(probeVerdict(await probeBalloon(), cpu), EXIT.UNAVAILABLE);
  }
  if (found.balloonDriver !== null && !plan.force) {
    throw new CliError(
      `the kernel's balloon driver ${found.balloonDriver} is loaded and owns the balloon: unload it (modprobe -r ${found.balloonDriver}) or pass --force`,
      EXIT.UNAVAILABLE,
    );
  }
  return plan.driver === "modern" ? ModernBalloonHypervisor.open() : BalloonHypervisor.open();
}

/**
 * Today's driver on VMware, from user mode: there is no VMCI doorbell to
 * register (that needs the kernel's VMCI driver), so SIGNALLED_WAKEUP_CMD is
 * taken out of what START grants, and the driver never sends a doorbell
 * handle; it wakes once a cycle, as without the capability.
 */
class WithoutDoorbell implements ModernHypervisor {
  constructor(private readonly inner: ModernHypervisor) {}
  call(command: number, argument: number, argument2: number): ModernHypervisorReply {
    const reply = this.inner.call(command, argument, argument2);
    reply.ecx = (reply.ecx & ~CAPABILITIES.SIGNALLED_WAKEUP_CMD) >>> 0;
    return reply;
  }
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

/** A `Field:  N kB` line of a /proc file, in KiB (NaN when absent). */
function procKiB(file: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(file, "utf8"));
  return match ? Number(match[1]) : Number.NaN;
}

const vmLckKiB = () => procKiB("/proc/self/status", "VmLck");
/** The guest's free pages for the trace's `guestFree`: here the guest is this machine, so its MemFree (the page source's own reading of /proc/meminfo). */
const memFreePages = () => parseMeminfo(readFileSync("/proc/meminfo", "latin1")).freePages;

/**
 * The trace of `--trace`: every command as it returns, in simulate's format,
 * flushed once a cycle. A command's record never throws into the engine (the
 * command has been sent): a write error is kept, and thrown by {@link flush}.
 */
class TraceSink {
  /** The first write error, boxed: whatever was thrown, even `undefined`, is kept. */
  private failure: { readonly error: unknown } | undefined;
  private closed = false;
  constructor(private readonly writer: LineWriter) {}

  record(record: TraceRecord | ModernTraceRecord): void {
    if (this.failure !== undefined) return;
    try {
      this.writer.write(formatTraceRecord(record));
    } catch (error) {
      this.failure = { error };
    }
  }

  flush(): void {
    if (this.failure === undefined) {
      try {
        this.writer.flush();
      } catch (error) {
        this.failure = { error };
      }
    }
    if (this.failure !== undefined) throw this.failure.error;
  }

  /** At the end: flushed and closed; throws a write error. */
  close(): void {
    this.flush();
    this.closed = true;
    this.writer.close();
  }

  /** After an error: what can still be written is, and the file is closed as it is, without a word. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.flush();
    } catch {
      // The first failure is the one reported.
    }
    try {
      this.writer.abandon();
    } catch {
      // Likewise.
    }
  }
}

/**
 * `--lock-file`: taken before START, held until the process ends. Another
 * run holding it is exit status 75, one line with its pid.
 */
function takeLock(file: string): HeldLock {
  let lock;
  try {
    lock = tryLock(file);
  } catch (error) {
    throw describeFileError(error, "take the lock", file);
  }
  if (isHeld(lock)) return lock;
  const owner = lock.ownerPid === undefined ? "another vmballoon run" : `another vmballoon run (pid ${lock.ownerPid})`;
  throw new CliError(`${owner} owns the balloon: ${file} is locked; one run at a time`, EXIT.TEMPFAIL);
}

/** Writes {@link OOM_SCORE_ADJ}; the reason it could not, if it could not. */
function setOomScoreAdj(): string | undefined {
  try {
    writeFileSync("/proc/self/oom_score_adj", `${OOM_SCORE_ADJ}\n`);
    return undefined;
  } catch (error) {
    return (describeFileError(error, "write", "/proc/self/oom_score_adj") as Error).message;
  }
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

  // Each limit the page source meets (memlock, capability, cgroup), said once.
  const limitsShown = new Set<string>();
  const onLimit = (message: string) => {
    if (limitsShown.has(message)) return;
    limitsShown.add(message);
    narrator.line(message);
    emitter.emit({ t: "limit", message });
  };

  // The host first (its checks say whether there is anything to do here), then the memory.
  const realHost = settings.host === "vmware" ? await openVmware(settings) : undefined;
  const sourceOptions: PageSourceOptions = { onLimit };
  const source = LinuxPageSource.open(sourceOptions);
  let lock: HeldLock | undefined;
  // A terminal gone (SIGHUP) must not turn a message into an uncaught error before the unload.
  const ignore = () => {};
  process.stderr.on("error", ignore);
  try {
    // One owner: before the trace, the stats file and START, so that a second run touches none of them.
    lock = takeLock(settings.lockFile);
    // The trace is written in place: read while the run goes on, and there after a SIGKILL.
    const writer = settings.trace === undefined ? undefined : new LineWriter(settings.trace, { inPlace: true });
    return await drive(settings, realHost, source, writer, emitter, narrator);
  } finally {
    source.close();
    lock?.release();
    process.stderr.off("error", ignore);
  }
}

/** What the loop needs of a driver: the seed's engine or today's, wired to its host, the memory and the trace. */
interface Engine {
  /** Cycle 0. False when the load failed (the seed's START or GUEST_ID); {@link loadFailure} says how. */
  load(): boolean;
  loadFailure(): { command: string; status: number };
  /** The scenario's monitor events of `cycle` (and its shrinks and doorbells, for today's driver). */
  enterCycle(cycle: number): void;
  work(): void;
  /** The frame check after a cycle: moved pages repaired with the host. */
  checkFrames(): object;
  frameTotals(): FrameCheckTotals;
  snapshot(): { readonly size: number; readonly target: number };
  debugfsText(): string;
  cycleRecord(cycle: number): TraceRecord | ModernTraceRecord;
  /** The driver's exit: the pages freed; `hang` when today's driver could not pop every page. */
  unload(): void;
  /** Today's driver with the shrinker on: a PSI event calls it. Returns the shrink's record, or undefined when nothing fired. */
  readonly pressure: (() => { readonly count: number; readonly freed: number; readonly nrToScan: number } | undefined) | undefined;
  close(): void;
}

/** The seed's engine (vmw_balloon 1.2.1.3-k). */
function seedEngine(
  settings: Plan,
  realHost: Hypervisor | undefined,
  source: LinuxPageSource,
  trace: TraceSink | undefined,
  onError: (message: string) => void,
): Engine {
  let monitor: SimMonitor | undefined;
  let hypervisor: Hypervisor;
  if (realHost) hypervisor = realHost;
  else {
    monitor = new SimMonitor({ firstPfn: 0, frames: source.frameLimit(), totalPages: source.totalPages() });
    if (settings.target !== undefined) monitor.target = settings.target;
    hypervisor = monitor;
  }
  // Traced at the port: every command the engine sends (its repairs and its unload included) is in the trace.
  const tracer = trace === undefined ? undefined : new TracingHypervisor(hypervisor, (record) => trace.record(record));
  const lastReply = new LastReply(tracer ?? hypervisor);
  const balloon = new Balloon(lastReply, source, { onError });
  // The scenario's monitor events; the guest is this machine, so guestUse/guestRelease do not apply.
  const schedule = new EventSchedule((settings.scenario?.scenario as Scenario | undefined)?.events ?? []);
  return {
    load: () => balloon.init(),
    loadFailure: () => ({ command: commandName(lastReply.command) ?? String(lastReply.command), status: lastReply.status }),
    enterCycle(cycle) {
      if (tracer) tracer.cycle = cycle;
      if (monitor) schedule.apply(cycle, monitor);
    },
    work: () => balloon.work(),
    checkFrames: () => balloon.checkFrames(),
    frameTotals: () => balloon.frameCheckTotals(),
    snapshot: () => balloon.snapshot(),
    debugfsText: () => debugfsText(balloon.snapshot()),
    cycleRecord: (cycle) => cycleRecord(cycle, balloon.snapshot(), memFreePages()),
    unload: () => void balloon.exit(),
    pressure: undefined,
    close() {},
  };
}

/** SHRINK_BATCH of mm/shrinker.c: one PSI event asks the shrinker for at least this much. */
const SHRINK_BATCH = 128;

/**
 * Today's driver (drivers/misc/vmw_balloon.c, Linux 6.7+): capabilities,
 * batches through a real page whose frame the host is given, 2 MB pages
 * where the page source offers them (never, here), and the shrinker on PSI.
 */
function modernEngine(
  settings: Plan,
  realHost: ModernHypervisor | undefined,
  source: LinuxPageSource,
  trace: TraceSink | undefined,
  onError: (message: string) => void,
): Engine {
  const scenario = settings.scenario?.scenario as ModernScenario | undefined;
  // The host reads and writes the batch page through the page source: the real page's bytes.
  const memoryAt = (pfn: number) => source.memoryAt(pfn);
  let monitor: ModernSimMonitor | undefined;
  let hypervisor: ModernHypervisor;
  if (realHost) hypervisor = new WithoutDoorbell(realHost);
  else {
    monitor = new ModernSimMonitor({
      firstPfn: 0,
      frames: source.frameLimit(),
      totalPages: source.totalPages(),
      capabilities: scenario?.capabilities ?? builtinModernScenario.capabilities,
      startReply: scenario?.startReply ?? builtinModernScenario.startReply,
      memoryAt,
    });
    if (settings.target !== undefined) monitor.target = settings.target;
    hypervisor = monitor;
  }
  const tracer = trace === undefined ? undefined : new ModernTracingHypervisor(hypervisor, memoryAt, (record) => trace.record(record));
  const started = performance.now();
  // The kernel's jiffies (HZ = 1000): the shrinker's delay of SHRINK_DELAY seconds is real time here.
  const balloon = new ModernBalloon(tracer ?? hypervisor, source, { jiffies: () => Math.floor(performance.now() - started), onError });
  const schedule = new ModernEventSchedule(scenario?.events ?? []);
  let cycle = 0;
  const pressure = settings.shrinker ? MemoryPressure.open(settings.pressure) : undefined;

  /** One call of the shrinker core, traced as simulate traces a `shrink` event. */
  const shrink = (nrToScan: number) => {
    if (!settings.shrinker) return undefined;
    const { count, freed } = shrinkSlab(balloon, nrToScan);
    trace?.record({ t: "shrink", cycle, nrToScan, count, freed });
    return { count, freed, nrToScan };
  };
  const targets = {
    monitor: monitor!,
    // The host rings: counted, as the model does; the next cycle runs at its time.
    doorbell() {
      const delivered = monitor!.doorbellRegistered && balloon.doorbellHandle !== null;
      if (delivered) balloon.doorbell();
      trace?.record({ t: "doorbell", cycle, delivered });
    },
    shrink: (nrToScan: number) => void shrink(nrToScan),
    debugfs: () => trace?.record({ t: "debugfs", cycle, text: balloon.debugfsText() }),
  };
  return {
    load() {
      balloon.init();
      // Read once at the load, as simulate's scenarios do (statsOn): the statistics are on from then, for the trace and --json.
      if (scenario?.statsOn ?? true) balloon.debugfsRecord();
      return true;
    },
    loadFailure: () => ({ command: "START", status: 0 }),
    enterCycle(next) {
      cycle = next;
      if (tracer) tracer.cycle = next;
      if (monitor) schedule.apply(next, targets);
    },
    work: () => balloon.work(),
    checkFrames: () => balloon.checkFrames(),
    frameTotals: () => balloon.frameCheckTotals(),
    snapshot: () => balloon.snapshot(),
    debugfsText: () => balloon.debugfsText(),
    cycleRecord: (at) => modernCycleRecord(at, balloon.snapshot(), memFreePages()),
    unload() {
      balloon.exit();
      // The C keeps its batch page to the end (the module's memory goes with it); here it goes back with the rest.
      if (balloon.batchPageHandle !== NO_PAGE) source.free(balloon.batchPageHandle);
    },
    pressure:
      pressure === undefined
        ? undefined
        : () => {
            if (!pressure.fired()) return undefined;
            // One call of the shrinker core a PSI event: a sixteenth of the balloon, at least a batch (DESIGN.md, "The shrinker").
            return shrink(Math.max(SHRINK_BATCH, Math.ceil(balloon.shrinkerCount() / 16)));
          },
    close: () => pressure?.close(),
  };
}

/** The run itself, with the lock held: load, cycles, unload, on every way out. */
async function drive(
  settings: Plan,
  realHost: BalloonHypervisor | ModernBalloonHypervisor | undefined,
  source: LinuxPageSource,
  writer: LineWriter | undefined,
  emitter: Emitter,
  narrator: Narrator,
): Promise<number> {
  const trace = writer === undefined ? undefined : new TraceSink(writer);
  let loaded = false;
  // The driver's pr_err messages; a failed load is reported below, in one line.
  const onError = (message: string) => loaded && narrator.line(message);
  const engine =
    settings.driver === "modern"
      ? modernEngine(settings, realHost as ModernBalloonHypervisor | undefined, source, trace, onError)
      : seedEngine(settings, realHost as BalloonHypervisor | undefined, source, trace, onError);

  const statsFile = settings.statsFile;
  let cycle = 0;
  const enterCycle = (next: number) => {
    cycle = next;
    engine.enterCycle(next);
  };

  // Stop on any of the stop signals: the wait between cycles ends at once, and the unload follows.
  let stopSignal: NodeJS.Signals | undefined;
  let wake: () => void = () => {};
  const onSignal = (signal: NodeJS.Signals) => {
    stopSignal ??= signal;
    wake();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);

  // A stats file that fails after the start is a warning, once per distinct error; the balloon goes on.
  const warnings = new Set<string>();
  const writeStats = () => {
    try {
      writeAtomically(statsFile!, engine.debugfsText(), "write the stats file");
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (warnings.has(message)) return;
      warnings.add(message);
      narrator.line(`warning: ${message}; the balloon goes on, and the file is retried each cycle`);
      emitter.emit({ t: "warning", message });
    }
  };

  /** The shrinker on memory pressure (today's driver, --shrinker): checked after each cycle and between cycles. */
  const checkPressure = () => {
    const shrink = engine.pressure?.();
    if (shrink === undefined) return;
    trace?.flush();
    emitter.emit({ t: "shrink", cycle, ...shrink });
    narrator.line(`memory pressure (PSI): the shrinker gave back ${shrink.freed} of ${shrink.count} pages; no inflation for 5 s`);
  };

  let statsWritten = false;
  let lockedAfterExit = 0;
  try {
    // Checked before the load: a stats file that cannot be written stops the run before START.
    if (statsFile !== undefined) {
      writeAtomically(statsFile, engine.debugfsText(), "write the stats file");
      statsWritten = true;
    }
    const oomProblem = setOomScoreAdj();
    if (oomProblem !== undefined) narrator.line(`warning: ${oomProblem}; the OOM killer may take another process before this one`);

    const scenario = settings.scenario?.scenario;
    emitter.emit({
      t: "start",
      driver: settings.driver,
      host: settings.host,
      pid: process.pid,
      intervalMs: settings.intervalMs,
      totalPages: source.totalPages(),
      target: settings.target ?? null,
      scenario: settings.scenario?.file ?? null,
      statsFile: statsFile ?? null,
      trace: settings.trace ?? null,
      lockFile: settings.lockFile,
      oomScoreAdj: oomProblem === undefined ? OOM_SCORE_ADJ : null,
      memory: source.memory,
      shrinker: settings.driver === "modern" ? (settings.shrinker ? settings.pressure : false) : null,
    });
    const what =
      settings.host === "vmware"
        ? "the VMware balloon port 0x5670"
        : settings.scenario
          ? `the reference monitor, scenario ${settings.scenario.file} (${scenario!.cycles} cycles, then ${scenario!.unload ? "unload" : "keeps running"})`
          : `the reference monitor, target ${settings.target} pages (${mebibytes(settings.target!)})`;
    if (!settings.json) {
      const driver = settings.driver === "modern" ? "today's driver" : "the seed's driver";
      const shrinker = settings.shrinker ? `; the shrinker on memory pressure (PSI '${settings.pressure}')` : "";
      narrator.line(
        `driving ${what} with ${driver} and this machine's memory (${source.totalPages()} pages), a cycle every ${settings.intervalMs} ms${shrinker}; SIGTERM, SIGINT (Ctrl-C), SIGHUP or SIGQUIT unloads`,
      );
      const guestOnly = ["guestUse", "guestRelease", "huge", "migrate"];
      if (scenario && (scenario.events as readonly object[]).some((e) => guestOnly.some((key) => key in e))) {
        narrator.line("the guest is this machine: the scenario's guest section and guestUse/guestRelease/huge/migrate events do not apply");
      }
    }

    enterCycle(0);
    if (!engine.load()) {
      const { command, status } = engine.loadFailure();
      const described = describeStatus(status);
      trace?.record({ t: "initFailed" });
      trace?.flush();
      emitter.emit({ t: "initFailed", cmd: command, status });
      throw new CliError(`the balloon did not load: ${command} answered ${described ? described.name : hex(status)}`, EXIT.FAILURE);
    }
    loaded = true;

    let stopReason: string | undefined;
    for (;;) {
      if (stopSignal !== undefined) break;
      enterCycle(cycle + 1);
      engine.work();
      // The frame the host was told must be the frame the page sits on: moved pages are repaired (UNLOCK, LOCK).
      const frames = engine.checkFrames();
      source.releaseIdle();
      const snapshot = engine.snapshot();
      if (statsFile !== undefined) writeStats();
      trace?.record(engine.cycleRecord(cycle));
      trace?.flush();
      emitter.emit({
        t: "cycle",
        cycle,
        ...snapshot,
        mlockedPages: source.mlockedPages,
        frames,
      });
      narrator.cycle(cycle, snapshot.size, snapshot.target);
      checkPressure();
      if (scenario && scenario.unload && cycle >= scenario.cycles) {
        stopReason = "scenario";
        break;
      }
      let pressureError: Error | undefined;
      await new Promise<void>((resolve) => {
        // Between cycles, the PSI trigger is asked every 50 ms (each cycle, when cycles are shorter): a poll with a timeout of 0.
        const watch =
          engine.pressure === undefined
            ? undefined
            : setInterval(
                () => {
                  try {
                    checkPressure();
                  } catch (error) {
                    pressureError = error instanceof Error ? error : new Error(String(error));
                    finish();
                  }
                },
                Math.min(50, settings.intervalMs),
              );
        const finish = () => {
          clearTimeout(timer);
          if (watch !== undefined) clearInterval(watch);
          resolve();
        };
        const timer = setTimeout(finish, settings.intervalMs);
        wake = finish;
        if (stopSignal !== undefined) wake();
      });
      if (pressureError !== undefined) throw pressureError;
    }

    const reason = stopSignal ?? stopReason ?? "scenario";
    const held = unload();
    trace?.close();
    if (!settings.json) {
      const frames = engine.frameTotals();
      const batchPage = "batchPageMoves" in frames ? `, the batch page moved ${String(frames.batchPageMoves)} times` : "";
      const checks = `frame checks ${frames.checks}: ${frames.moved} pages moved, ${frames.repaired} repaired${batchPage}`;
      narrator.line(`unloaded (${reason}): START sent, ${held} pages (${mebibytes(held)}) given back; ${checks}`);
    }
    emitExit(reason, held);
    return EXIT.OK;
  } catch (error) {
    // Whatever went wrong, the memory goes back before the error is reported.
    let unloaded = "";
    if (loaded) {
      try {
        const held = unload();
        unloaded = `; unloaded: START sent, ${held} pages (${mebibytes(held)}) given back`;
        emitExit("error", held);
      } catch (unloadError) {
        // The first error is the one reported; this one is said after it. Closing the source still frees every page.
        const why = unloadError instanceof Error ? unloadError.message : String(unloadError);
        unloaded = `; the unload failed too (${why}): the pages go back to this machine as the run ends`;
      }
    }
    trace?.abandon();
    // One line, status 1 (or the status the error carries, such as a refused load's).
    const message = error instanceof Error ? error.message : String(error);
    const status = error instanceof CliError ? error.exitStatus : EXIT.FAILURE;
    throw new CliError(loaded || unloaded ? `failed while running: ${message}${unloaded}` : message, status, { cause: error });
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
    engine.close();
    // The kernel's debugfs file goes away with the driver; so does this one, on every way out.
    if (statsWritten) rmSync(statsFile!, { force: true });
  }

  /** The driver's exit (seed: START, then every page freed; modern: DOORBELL_SET(-1, -1), START(0), then every page freed). Returns the pages given back. */
  function unload(): number {
    const size = engine.snapshot().size;
    trace?.record({ t: "debugfs", ...(settings.driver === "modern" ? { cycle } : {}), text: engine.debugfsText() });
    enterCycle(cycle + 1);
    loaded = false;
    engine.unload();
    source.releaseIdle();
    lockedAfterExit = source.mlockedPages;
    source.close();
    trace?.record({ t: "exit", size: engine.snapshot().size, guestFree: memFreePages() });
    return size;
  }

  function emitExit(reason: string, freed: number): void {
    emitter.emit({
      t: "exit",
      reason,
      size: engine.snapshot().size,
      freed,
      mlockedPages: lockedAfterExit,
      vmLckKiB: vmLckKiB(),
      frames: engine.frameTotals(),
    });
  }
}
