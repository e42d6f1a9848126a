/*
 * `vmballoon run`: the driver itself, in userspace. A driver session of
 * @vmballoon/core — the seed's (`--driver seed`, the default) or today's
 * Linux driver's (`--driver modern`) — on the real page source of
 * @vmballoon/hv-x86, with either the real balloon port (`--host vmware`) or
 * the reference monitor of SIMULATION.md / SIMULATION-MODERN.md (`--host
 * simulated`). With today's driver and `--shrinker`, a PSI trigger on
 * /proc/pressure/memory stands in for the kernel's shrinker. This file wires
 * them; time, signals and the unload on every way out are the loop's
 * (`../run/loop.ts`). One run at a time: a lock taken before START.
 */
import { MemoryPressure, LinuxPageSource, SystemCallError, type HeldLock, type PageMemory } from "@vmballoon/hv-x86";
import { CliError, EXIT } from "../errors.js";
import { mebibytes } from "../output.js";
import { LineWriter } from "../trace-writer.js";
import { openVmware } from "../run/host.js";
import { StopSignals, runLoop } from "../run/loop.js";
import { memFreePages, setOomScoreAdj, takeLock, vmLckKiB, vmPinKiB } from "../run/machine.js";
import { Emitter, Narrator } from "../run/narrator.js";
import { plan, type Plan, type RunOptions } from "../run/plan.js";
import { TraceSink } from "../run/trace-sink.js";

export { DEFAULT_LOCK_FILE, OOM_SCORE_ADJ, STOP_SIGNALS, parseInterval, type RunOptions } from "../run/plan.js";

/** The first message: what is driven, with which driver, how often, and how it ends. */
function intro(settings: Plan, totalPages: number, memory: PageMemory): string[] {
  const { scenario } = settings;
  const what =
    settings.host === "vmware"
      ? "the VMware balloon port 0x5670"
      : scenario
        ? `the reference monitor, scenario ${scenario.file} (${scenario.scenario.cycles} cycles, then ${scenario.scenario.unload ? "unload" : "keeps running"})`
        : `the reference monitor, target ${settings.target} pages (${mebibytes(settings.target!)})`;
  const shrinker = settings.shrinker ? `; the shrinker on memory pressure (PSI '${settings.pressure}')` : "";
  const lines = [
    `driving ${what} with ${settings.driver.title} and this machine's memory (${totalPages} pages; ${memory} memory), a cycle every ${settings.intervalMs} ms${shrinker}; SIGTERM, SIGINT (Ctrl-C), SIGHUP or SIGQUIT unloads`,
  ];
  const guestOnly = ["guestUse", "guestRelease", "huge", "migrate"];
  if (scenario && (scenario.scenario.events as readonly object[]).some((e) => guestOnly.some((key) => key in e))) {
    lines.push("the guest is this machine: the scenario's guest section and guestUse/guestRelease/huge/migrate events do not apply");
  }
  return lines;
}

/** The page source, of the memory asked for: one that this kernel cannot give is one line (exit status 69), not a crash. */
function openSource(memory: PageMemory | undefined, onLimit: (message: string) => void): LinuxPageSource {
  try {
    return LinuxPageSource.open({ onLimit, ...(memory && { memory }) });
  } catch (error) {
    if (memory === undefined || !(error instanceof SystemCallError)) throw error;
    throw new CliError(`--memory ${memory}: this machine cannot give it (${error.message}); leave --memory out to take the best it has`, EXIT.UNAVAILABLE, {
      cause: error,
    });
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

  // Listened to before anything is opened: a stop signal during the set-up is a stop the loop sees, not the default's death.
  const stops = new StopSignals();
  try {
    return await runWith(settings, stops, emitter, narrator, onLimit);
  } finally {
    stops.close();
  }
}

/** The run once its plan is checked and the stop signals are listened to. */
async function runWith(settings: Plan, stops: StopSignals, emitter: Emitter, narrator: Narrator, onLimit: (message: string) => void): Promise<number> {
  // The host first (its checks say whether there is anything to do here), then the memory.
  const host = settings.host === "vmware" ? await openVmware(settings.driver.name, settings) : undefined;
  const source = openSource(settings.memory, onLimit);
  let lock: HeldLock | undefined;
  let pressure: MemoryPressure | undefined;
  // A terminal gone (SIGHUP) must not turn a message into an uncaught error before the unload.
  const ignore = () => {};
  process.stderr.on("error", ignore);
  try {
    // One owner: before the trace, the stats file and START, so that a second run touches none of them.
    lock = takeLock(settings.lockFile);
    // The trace is written in place: read while the run goes on, and there after a SIGKILL.
    const trace = settings.trace === undefined ? undefined : new TraceSink(new LineWriter(settings.trace, { inPlace: true }));
    let loaded = false;
    const started = performance.now();
    const session = settings.driver.onMachine(source, {
      ...(host && { host }),
      ...(settings.target !== undefined && { target: settings.target }),
      ...(settings.scenario && { scenario: settings.scenario.scenario }),
      shrinker: settings.shrinker,
      // The kernel's jiffies (HZ = 1000): the shrinker's delay of SHRINK_DELAY seconds is real time here.
      jiffies: () => Math.floor(performance.now() - started),
      guestFree: memFreePages,
      ...(trace && { onRecord: (record) => trace.record(record) }),
      // The driver's pr_err messages once it is loaded; a failed load is reported in one line.
      onError: (message) => loaded && narrator.line(message),
    });
    pressure = settings.shrinker ? MemoryPressure.open(settings.pressure) : undefined;
    const { scenario } = settings;
    return await runLoop({
      session,
      stops,
      intervalMs: settings.intervalMs,
      ...(scenario?.scenario.unload && { lastCycle: scenario.scenario.cycles }),
      ...(settings.statsFile !== undefined && { statsFile: settings.statsFile }),
      ...(trace && { trace }),
      emitter,
      narrator,
      onLoaded: (now) => (loaded = now),
      machine: { mlockedPages: () => source.mlockedPages, vmLckKiB, vmPinKiB, release: () => source.close() },
      start: (oomScoreAdj) => ({
        t: "start",
        driver: settings.driver.name,
        host: settings.host,
        pid: process.pid,
        intervalMs: settings.intervalMs,
        totalPages: source.totalPages(),
        target: settings.target ?? null,
        scenario: scenario?.file ?? null,
        statsFile: settings.statsFile ?? null,
        trace: settings.trace ?? null,
        lockFile: settings.lockFile,
        oomScoreAdj,
        memory: source.memory,
        shrinker: settings.driver.shrinker ? (settings.shrinker ? settings.pressure : false) : null,
      }),
      ...(!settings.json && { intro: intro(settings, source.totalPages(), source.memory) }),
      ...(pressure && { pressure }),
      setOomScoreAdj,
    });
  } finally {
    pressure?.close();
    source.close();
    lock?.release();
    process.stderr.off("error", ignore);
  }
}
