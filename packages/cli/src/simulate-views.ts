/**
 * How `vmballoon simulate` shows each driver's run: its `--json` summary, its
 * terminal report and its warnings. The run itself is the same for both (a
 * session of `@vmballoon/core/sim`); what differs is what each driver has to
 * say, so each has a view, picked by name in one table.
 */
import { CAPABILITY_NAMES, FRAMES_PER_2M_PAGE, PAGE_SIZE } from "@vmballoon/protocol";
import type { BalloonSnapshot, ModernBalloonSnapshot, ModernBalloonStats } from "@vmballoon/core";
import type { AnyScenario, DriverName, ModernScenario, SessionRun } from "@vmballoon/core/sim";
import { chartWidth, renderChart } from "./chart.js";
import type { CycleObserver } from "./cycle-observer.js";
import { colorsFor, mebibytes, styler } from "./output.js";

/** What `simulate` shows of a driver's run. */
export interface SimulateView {
  /** The `--json` summary. */
  summary(name: string, scenario: AnyScenario, run: SessionRun, observer: CycleObserver): object;
  /** The terminal's report: a short summary and the chart. */
  report(name: string, scenario: AnyScenario, run: SessionRun, observer: CycleObserver): string;
  /** A line for stderr when the run went wrong in a way the user must see. */
  warning(run: SessionRun): string | undefined;
}

/** The part both drivers' `--json` summaries share, in their key order. */
function summaryOf(driver: DriverName, name: string, scenario: AnyScenario, run: SessionRun, observer: CycleObserver, extra: object) {
  return {
    driver,
    scenario: name,
    cycles: run.cycles,
    ...extra,
    guest: scenario.guest,
    final: { ...run.snapshot, guestFree: run.guestFree },
    peak: { size: observer.peak, cycle: observer.peakCycle },
  };
}

/** The first line of the terminal report. */
function heading(title: string, name: string, scenario: AnyScenario): string {
  return `${title} — ${name}: ${scenario.cycles} cycles, guest of ${scenario.guest.totalPages} pages (${mebibytes(scenario.guest.totalPages)})`;
}

/** The report's lines and the chart under them. */
function withChart(lines: readonly string[], observer: CycleObserver, paint: ReturnType<typeof styler>): string {
  return `${lines.join("\n")}\n\n${renderChart(observer, { width: chartWidth(process.stdout.columns), style: paint })}\n`;
}

const seed: SimulateView = {
  summary(name, scenario, run, observer) {
    const { exit } = run;
    return {
      ...summaryOf("seed", name, scenario, run, observer, { loaded: run.loaded, pageSize: PAGE_SIZE }),
      unload: exit === undefined ? null : { size: exit.size, guestFree: exit.guestFree },
      debugfs: run.debugfs ?? null,
    };
  },
  report(name, scenario, run, observer) {
    const paint = styler(colorsFor(process.stdout));
    const snapshot = run.snapshot as BalloonSnapshot;
    const s = snapshot.stats;
    const lines = [heading(paint("bold", "vmballoon simulate"), name, scenario)];
    if (!run.loaded) {
      lines.push(`  ${paint("red", "the load failed")}: START ${s.startFail ? "failed" : "succeeded"}, GUEST_ID ${s.guestTypeFail ? "failed" : "succeeded"}`);
      return `${lines.join("\n")}\n`;
    }
    const failures = (total: number, failed: number) => `${total}${failed ? paint("yellow", ` (${failed} failed)`) : ""}`;
    lines.push(
      `  balloon   ${snapshot.size} pages (${mebibytes(snapshot.size)}), target ${snapshot.target}; peak ${observer.peak} pages at cycle ${observer.peakCycle}`,
      `  rates     sleeping allocations ${snapshot.rateAlloc}/s, releases ${snapshot.rateFree}/s${snapshot.slowCycles ? `, ${snapshot.slowCycles} slow cycles left` : ""}`,
      `  commands  LOCK ${failures(s.lock, s.lockFail)}, UNLOCK ${failures(s.unlock, s.unlockFail)}, GET_TARGET ${failures(s.target, s.targetFail)}, START ${failures(s.start, s.startFail)}`,
      `  pressure  NOSLEEP allocations ${failures(s.alloc, s.allocFail)}, CANSLEEP ${failures(s.sleepAlloc, s.sleepAllocFail)}, refused pages ${s.refusedAlloc}`,
    );
    if (run.exit) {
      lines.push(`  unload    START, then ${snapshot.size} pages freed without UNLOCK; the guest has ${run.exit.guestFree} free pages`);
    }
    return withChart(lines, observer, paint);
  },
  warning: (run) => (run.loaded ? undefined : "the balloon did not load: START or GUEST_ID failed (see the trace)"),
};

/** The names of the capability bits in a mask: "BASIC_CMDS, BATCHED_CMDS". */
function capabilityList(mask: number): string {
  const names = Object.entries(CAPABILITY_NAMES)
    .filter(([bit]) => (mask & Number(bit)) !== 0)
    .map(([, name]) => name);
  return names.length === 0 ? "none" : names.join(", ");
}

/** Batched commands (up to 512 pages each) and single LOCK/UNLOCKs (one page each). */
function batching(stats: ModernBalloonStats) {
  const { batchLock, batchUnlock, lock, unlock } = stats.ops;
  const commands = batchLock[0] + batchUnlock[0] + stats.ops["2m-lock"][0] + stats.ops["2m-unlock"][0];
  return { batchedCommands: commands, singleCommands: lock[0] + unlock[0] };
}

const modern: SimulateView = {
  summary(name, scenario, run, observer) {
    const offered = (scenario as ModernScenario).capabilities;
    return {
      ...summaryOf("modern", name, scenario, run, observer, { pageSize: PAGE_SIZE, hugePageFrames: FRAMES_PER_2M_PAGE, capabilitiesOffered: offered }),
      unload: run.exit ?? null,
      debugfs: run.debugfs,
    };
  },
  report(name, scenario, run, observer) {
    const paint = styler(colorsFor(process.stdout));
    const snapshot = run.snapshot as ModernBalloonSnapshot;
    const s = snapshot.stats!;
    const failures = ([total, failed]: readonly [number, number]) => `${total}${failed ? paint("yellow", ` (${failed} failed)`) : ""}`;
    const hugeFrames = snapshot.hugePages * FRAMES_PER_2M_PAGE;
    const { batchedCommands, singleCommands } = batching(s);
    const lines = [
      heading(paint("bold", "vmballoon simulate --driver modern"), name, scenario),
      `  host      offers ${capabilityList((scenario as ModernScenario).capabilities)}; granted ${capabilityList(snapshot.capabilities)}; pages up to ${snapshot.maxPageSize}${snapshot.batching ? `, ${snapshot.batchMaxPages} a command` : ", one a command"}`,
      `  balloon   ${snapshot.size} frames (${mebibytes(snapshot.size)}): ${snapshot.hugePages} 2 MB pages and ${snapshot.size - hugeFrames} 4 KB pages; target ${snapshot.target}; peak ${observer.peak} at cycle ${observer.peakCycle}`,
      `  commands  batched ${batchedCommands} (LOCK ${failures(s.ops.batchLock)}, UNLOCK ${failures(s.ops.batchUnlock)}, 2M LOCK ${failures(s.ops["2m-lock"])}, 2M UNLOCK ${failures(s.ops["2m-unlock"])}), single LOCK/UNLOCK ${singleCommands}, GET_TARGET ${failures(s.ops.target)}, START ${failures(s.ops.start)}`,
      `  pages     allocated 4 KB ${failures([s.pages.alloc[0], s.pages.allocFail[0]])}, 2 MB ${failures([s.pages.alloc[1], s.pages.allocFail[1]])}; refused by the host 4 KB ${s.pages.errAlloc[0]}, 2 MB ${s.pages.errAlloc[1]}`,
      `  events    resets ${s.reset}, shrinks ${s.shrink} (${s.shrinkFree} frames freed), doorbells ${s.doorbell}`,
    ];
    if (run.exit) {
      lines.push(
        run.exit.hang
          ? `  unload    ${paint("red", "did not finish")}: START(0) took 2 MB pages away; ${run.exit.size} frames stay ballooned`
          : `  unload    DOORBELL_SET, START(0), then ${snapshot.size} frames freed without UNLOCK; the guest has ${run.exit.guestFree} free pages`,
      );
    }
    return withChart(lines, observer, paint);
  },
  warning: (run) =>
    run.exit?.hang
      ? `the unload did not finish: START(0) took 2 MB pages away and ${run.exit.size} frames stay ballooned (today's driver spins for ever there)`
      : undefined,
};

const VIEWS: Readonly<Record<DriverName, SimulateView>> = { seed, modern };

/** How `simulate` shows a run of that driver. */
export function simulateView(driver: DriverName): SimulateView {
  return VIEWS[driver];
}
