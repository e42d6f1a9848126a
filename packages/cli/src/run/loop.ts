/**
 * `vmballoon run`'s loop: time, signals, the stats file, the trace, the
 * messages, around a {@link DriverSession}. It knows no engine and no page
 * source: the session is the driver, `machine` the little the records need
 * of this machine. Every way out unloads once the driver is loaded.
 */
import { rmSync } from "node:fs";
import { describeStatus } from "@vmballoon/protocol";
import type { DriverSession } from "@vmballoon/core/sim";
import { hex } from "@vmballoon/hv-x86";
import { CliError, EXIT } from "../errors.js";
import { writeAtomically } from "../files.js";
import { mebibytes } from "../output.js";
import type { MessageSink, RecordSink } from "./narrator.js";
import { OOM_SCORE_ADJ, STOP_SIGNALS } from "./plan.js";
import type { TraceSink } from "./trace-sink.js";

/** Where the stop signals come from: this process, or a test's emitter. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

/**
 * The stop signals, listened to from the moment this is made (`run` makes it
 * before it opens anything, so that a signal during the set-up is not the
 * default's death but a stop the loop sees): the first one is kept, and
 * whoever waits is woken.
 */
export class StopSignals {
  /** The first stop signal, once one came. */
  signal: NodeJS.Signals | undefined;
  private wake: () => void = () => {};
  private readonly listener = (signal: NodeJS.Signals) => {
    this.signal ??= signal;
    this.wake();
  };

  constructor(private readonly source: SignalSource = process) {
    for (const signal of STOP_SIGNALS) source.on(signal, this.listener);
  }

  /** Calls `wake` at the next stop signal (at once when one came already). */
  onStop(wake: () => void): void {
    this.wake = wake;
    if (this.signal !== undefined) wake();
  }

  /** Stops listening. */
  close(): void {
    for (const signal of STOP_SIGNALS) this.source.off(signal, this.listener);
  }
}

/** What the records need of this machine, and its memory's release after the unload. */
export interface MachineFigures {
  /** Pages the page source holds mlocked now. */
  mlockedPages(): number;
  /** This process's VmLck, KiB (mlocked memory). */
  vmLckKiB(): number;
  /** This process's VmPin, KiB (pinned memory: io_uring's fixed buffers). */
  vmPinKiB(): number;
  /** After the unload: the page source gives every byte back (the batch page's mapping included). */
  release(): void;
}

/** Everything the loop drives and reports to. */
export interface LoopPorts {
  readonly session: DriverSession;
  readonly intervalMs: number;
  /** The last cycle, for a scenario that unloads: the run then ends by itself ("scenario"). */
  readonly lastCycle?: number;
  /** The stats file: written before the load (a file that cannot be is an error), after each cycle (a warning), removed on every way out. */
  readonly statsFile?: string;
  readonly trace?: TraceSink;
  readonly emitter: RecordSink;
  readonly narrator: MessageSink;
  readonly machine: MachineFigures;
  /** The start record, given the oom_score_adj that was set (null: it could not be). */
  readonly start: (oomScoreAdj: number | null) => object;
  /** The first messages, after the start record (none with --json). */
  readonly intro?: readonly string[];
  /** Memory pressure for the shrinker: whether the PSI trigger fired since last asked. */
  readonly pressure?: { fired(): boolean };
  /** The stop signals, listened to since the caller's set-up began (default: this process's, from now). */
  readonly stops?: StopSignals;
  /** Writes /proc/self/oom_score_adj; the reason it could not (default: nothing to write). */
  readonly setOomScoreAdj?: () => string | undefined;
  /** Told when the driver is loaded (true) and when its unload begins (false): its own messages are said only in between. */
  readonly onLoaded?: (loaded: boolean) => void;
  /** Writes a file whole (default: {@link writeAtomically}). */
  readonly writeFile?: (file: string, text: string) => void;
}

/** SHRINK_BATCH of mm/shrinker.c: one PSI event asks the shrinker for at least this much. */
const SHRINK_BATCH = 128;

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The run itself: load, cycles, unload, on every way out. Returns the exit status; throws a {@link CliError} of one line. */
export async function runLoop(ports: LoopPorts): Promise<number> {
  const { session, trace, emitter, narrator, machine, statsFile } = ports;
  const stops = ports.stops ?? new StopSignals();
  const writeFile = ports.writeFile ?? ((file: string, text: string) => writeAtomically(file, text, "write the stats file"));
  let loaded = false;
  let lockedAfterExit = 0;

  // On any of the stop signals the wait between cycles ends at once, and the unload follows.

  // A stats file that fails after the start is a warning, once per distinct error; the balloon goes on.
  const warnings = new Set<string>();
  const writeStats = () => {
    try {
      writeFile(statsFile!, session.debugfsText());
    } catch (error) {
      const message = messageOf(error);
      if (warnings.has(message)) return;
      warnings.add(message);
      narrator.line(`warning: ${message}; the balloon goes on, and the file is retried each cycle`);
      emitter.emit({ t: "warning", message });
    }
  };

  /** The shrinker on memory pressure: a sixteenth of the balloon, at least a batch (DESIGN.md, "The shrinker"). */
  const checkPressure = () => {
    if (ports.pressure === undefined || !ports.pressure.fired()) return;
    const shrink = session.shrink(Math.max(SHRINK_BATCH, Math.ceil(session.shrinkable() / 16)));
    if (shrink === undefined) return;
    trace?.flush();
    emitter.emit({ t: "shrink", cycle: session.cycleNumber, ...shrink });
    narrator.line(`memory pressure (PSI): the shrinker gave back ${shrink.freed} of ${shrink.count} pages; no inflation for 5 s`);
  };

  /** The driver's exit: the debugfs record, then the unload and the exit record; the machine's memory released. Returns the pages given back. */
  const unload = (): number => {
    const size = session.snapshot().size;
    session.finish();
    loaded = false;
    ports.onLoaded?.(false);
    session.unload();
    lockedAfterExit = machine.mlockedPages();
    machine.release();
    return size;
  };

  const emitExit = (reason: string, freed: number) =>
    emitter.emit({
      t: "exit",
      reason,
      size: session.snapshot().size,
      freed,
      mlockedPages: lockedAfterExit,
      vmLckKiB: machine.vmLckKiB(),
      vmPinKiB: machine.vmPinKiB(),
      frames: session.frameTotals(),
    });

  let statsWritten = false;
  try {
    // Checked before the load: a stats file that cannot be written stops the run before START.
    if (statsFile !== undefined) {
      writeFile(statsFile, session.debugfsText());
      statsWritten = true;
    }
    const oomProblem = ports.setOomScoreAdj?.();
    if (oomProblem !== undefined) narrator.line(`warning: ${oomProblem}; the OOM killer may take another process before this one`);
    emitter.emit(ports.start(oomProblem === undefined ? OOM_SCORE_ADJ : null));
    for (const line of ports.intro ?? []) narrator.line(line);

    if (!session.load()) {
      const { command, status } = session.loadFailure();
      const described = describeStatus(status);
      trace?.flush();
      emitter.emit({ t: "initFailed", cmd: command, status });
      throw new CliError(`the balloon did not load: ${command} answered ${described ? described.name : hex(status)}`, EXIT.FAILURE);
    }
    loaded = true;
    ports.onLoaded?.(true);

    let stopReason: string | undefined;
    while (stops.signal === undefined) {
      session.cycle();
      // The frame the host was told must be the frame the page sits on: moved pages are repaired (UNLOCK, LOCK).
      const frames = session.checkFrames();
      const snapshot = session.snapshot();
      if (statsFile !== undefined) writeStats();
      session.recordCycle();
      trace?.flush();
      const cycle = session.cycleNumber;
      emitter.emit({ t: "cycle", cycle, ...snapshot, mlockedPages: machine.mlockedPages(), frames });
      narrator.cycle(cycle, snapshot.size, snapshot.target);
      checkPressure();
      if (ports.lastCycle !== undefined && cycle >= ports.lastCycle) {
        stopReason = "scenario";
        break;
      }
      await waitForNextCycle();
    }

    const reason = stops.signal ?? stopReason ?? "scenario";
    const held = unload();
    trace?.close();
    const frames = session.frameTotals();
    const batchPage = "batchPageMoves" in frames ? `, the batch page moved ${String(frames.batchPageMoves)} times` : "";
    const checks = `frame checks ${frames.checks}: ${frames.moved} pages moved, ${frames.repaired} repaired${batchPage}`;
    narrator.summary(`unloaded (${reason}): START sent, ${held} pages (${mebibytes(held)}) given back; ${checks}`);
    emitExit(reason, held);
    return EXIT.OK;
  } catch (error) {
    // Whatever went wrong, the memory goes back before the error is reported.
    const wasLoaded = loaded;
    let unloaded = "";
    if (wasLoaded) {
      try {
        const held = unload();
        unloaded = `; unloaded: START sent, ${held} pages (${mebibytes(held)}) given back`;
        emitExit("error", held);
      } catch (unloadError) {
        // The first error is the one reported; this one is said after it. Closing the source still frees every page.
        unloaded = `; the unload failed too (${messageOf(unloadError)}): the pages go back to this machine as the run ends`;
      }
    }
    trace?.abandon();
    // One line, status 1 (or the status the error carries, such as a refused load's).
    const status = error instanceof CliError ? error.exitStatus : EXIT.FAILURE;
    throw new CliError(wasLoaded ? `failed while running: ${messageOf(error)}${unloaded}` : messageOf(error), status, { cause: error });
  } finally {
    if (ports.stops === undefined) stops.close();
    // The kernel's debugfs file goes away with the driver; so does this one, on every way out.
    if (statsWritten) rmSync(statsFile!, { force: true });
  }

  /** Waits one interval, asking the PSI trigger every 50 ms meanwhile; a stop signal ends the wait at once. */
  async function waitForNextCycle(): Promise<void> {
    let pressureError: Error | undefined;
    await new Promise<void>((resolve) => {
      const watch =
        ports.pressure === undefined
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
              Math.min(50, ports.intervalMs),
            );
      const finish = () => {
        clearTimeout(timer);
        if (watch !== undefined) clearInterval(watch);
        resolve();
      };
      const timer = setTimeout(finish, ports.intervalMs);
      stops.onStop(finish);
    });
    if (pressureError !== undefined) throw pressureError;
  }
}
