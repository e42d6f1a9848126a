// One fresh process of bench/modern.mjs's TypeScript side: it imports only
// what the run needs (the modern runner and scenario checks, not the whole of
// @vmballoon/core/sim nor node:child_process), since loading modules is part
// of the whole process that is timed. Prints one JSON line.
//   node bench/modern-child.mjs churn CAPABILITIES
//   node bench/modern-child.mjs memory CAPABILITIES PAGES
import { runModernScenario } from "../dist/sim/modern-runner.js";
import { validateModernScenario } from "../dist/sim/modern-scenario.js";
import { churnScenario, fullInflateScenario } from "./scenarios.mjs";

/** The seed's churning scenario for today's driver: the host offers `capabilities`; statistics on. */
export function modernChurn(capabilities) {
  const { guest, ...rest } = churnScenario();
  return { ...rest, capabilities, guest: { ...guest, huge: true } };
}

/** Hypervisor commands sent: every one is counted (statistics on from the load). */
function commandsOf(stats) {
  return Object.values(stats.ops).reduce((sum, [count]) => sum + count, 0);
}

/** Frames the engine allocated for the balloon or freed from it (a 2 MB page is 512). */
function framesOf(stats) {
  const frames = ([small, huge]) => small + huge * 512;
  return frames(stats.pages.alloc) + frames(stats.pages.free);
}

if (process.argv[2] === "churn") {
  const scenario = validateModernScenario(modernChurn(Number(process.argv[3])));
  const begin = process.hrtime.bigint();
  const result = runModernScenario(scenario);
  const ns = Number(process.hrtime.bigint() - begin);
  process.stdout.write(
    JSON.stringify({
      calls: commandsOf(result.snapshot.stats),
      frames: framesOf(result.snapshot.stats),
      ns,
      size: result.snapshot.size,
      free: result.exit.guestFree,
    }),
  );
}

if (process.argv[2] === "memory") {
  const pages = Number(process.argv[4]);
  const scenario = { ...fullInflateScenario(pages), capabilities: Number(process.argv[3]) };
  scenario.guest = { ...scenario.guest, huge: true };
  const result = runModernScenario(validateModernScenario(scenario));
  // maxRSS is in KiB.
  process.stdout.write(JSON.stringify({ size: result.snapshot.size, huge: result.snapshot.hugePages, peak: process.resourceUsage().maxRSS * 1024 }));
}
