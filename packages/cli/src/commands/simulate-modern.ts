/**
 * `vmballoon simulate --driver modern`: today's Linux driver against the
 * reference guest and monitor of SIMULATION-MODERN.md. Loaded only when asked for.
 */
import { CAPABILITY_NAMES, FRAMES_PER_2M_PAGE, PAGE_SIZE } from "@vmballoon/protocol";
import {
  builtinModernScenario,
  formatTraceRecord,
  parseModernScenario,
  runModernScenario,
  type ModernRunResult,
  type ModernScenario,
} from "@vmballoon/core/sim";
import type { ModernBalloonStats } from "@vmballoon/core";
import { renderChart } from "../chart.js";
import { colorsFor, mebibytes, styler } from "../output.js";
import { loadScenario } from "../scenario-file.js";
import type { SimulationKit } from "./simulate.js";

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

export const modernKit: SimulationKit<ModernScenario, ModernRunResult> = {
  builtin: builtinModernScenario,
  load: (file) => loadScenario(file, parseModernScenario),
  run(scenario, commands, onRecord, observer) {
    const huge: number[] = [];
    observer.huge = huge;
    return runModernScenario(scenario, {
      commands,
      onRecord: (record) => onRecord(formatTraceRecord(record)),
      onCycle: (cycle, snapshot) => {
        observer.observe(cycle, snapshot.size, snapshot.target);
        huge.push(snapshot.hugePages * FRAMES_PER_2M_PAGE);
      },
    });
  },
  debugfs: (result) => result.debugfs,
  warning: (result) =>
    result.exit?.hang
      ? `the unload did not finish: START(0) took 2 MB pages away and ${result.exit.size} frames stay ballooned (today's driver spins for ever there)`
      : undefined,
  summary(name, scenario, result, observer) {
    const { snapshot } = result;
    return {
      driver: "modern",
      scenario: name,
      cycles: result.cycles,
      pageSize: PAGE_SIZE,
      hugePageFrames: FRAMES_PER_2M_PAGE,
      capabilitiesOffered: scenario.capabilities,
      guest: scenario.guest,
      final: { ...snapshot, guestFree: result.guestFree },
      peak: { size: observer.peak, cycle: observer.peakCycle },
      unload: result.exit ?? null,
      debugfs: result.debugfs,
    };
  },
  report(name, scenario, result, observer) {
    const paint = styler(colorsFor(process.stdout));
    const { snapshot } = result;
    const s = snapshot.stats!;
    const failures = ([total, failed]: readonly [number, number]) => `${total}${failed ? paint("yellow", ` (${failed} failed)`) : ""}`;
    const hugeFrames = snapshot.hugePages * FRAMES_PER_2M_PAGE;
    const { batchedCommands, singleCommands } = batching(s);
    const lines = [
      `${paint("bold", "vmballoon simulate --driver modern")} — ${name}: ${scenario.cycles} cycles, guest of ${scenario.guest.totalPages} pages (${mebibytes(scenario.guest.totalPages)})`,
      `  host      offers ${capabilityList(scenario.capabilities)}; granted ${capabilityList(snapshot.capabilities)}; pages up to ${snapshot.maxPageSize}${snapshot.batching ? `, ${snapshot.batchMaxPages} a command` : ", one a command"}`,
      `  balloon   ${snapshot.size} frames (${mebibytes(snapshot.size)}): ${snapshot.hugePages} 2 MB pages and ${snapshot.size - hugeFrames} 4 KB pages; target ${snapshot.target}; peak ${observer.peak} at cycle ${observer.peakCycle}`,
      `  commands  batched ${batchedCommands} (LOCK ${failures(s.ops.batchLock)}, UNLOCK ${failures(s.ops.batchUnlock)}, 2M LOCK ${failures(s.ops["2m-lock"])}, 2M UNLOCK ${failures(s.ops["2m-unlock"])}), single LOCK/UNLOCK ${singleCommands}, GET_TARGET ${failures(s.ops.target)}, START ${failures(s.ops.start)}`,
      `  pages     allocated 4 KB ${failures([s.pages.alloc[0], s.pages.allocFail[0]])}, 2 MB ${failures([s.pages.alloc[1], s.pages.allocFail[1]])}; refused by the host 4 KB ${s.pages.errAlloc[0]}, 2 MB ${s.pages.errAlloc[1]}`,
      `  events    resets ${s.reset}, shrinks ${s.shrink} (${s.shrinkFree} frames freed), doorbells ${s.doorbell}`,
    ];
    if (result.exit) {
      lines.push(
        result.exit.hang
          ? `  unload    ${paint("red", "did not finish")}: START(0) took 2 MB pages away; ${result.exit.size} frames stay ballooned`
          : `  unload    DOORBELL_SET, START(0), then ${snapshot.size} frames freed without UNLOCK; the guest has ${result.exit.guestFree} free pages`,
      );
    }
    const width = Math.max(20, Math.min(72, (process.stdout.columns || 80) - 12));
    return `${lines.join("\n")}\n\n${renderChart(observer, { width, style: paint })}\n`;
  },
};
