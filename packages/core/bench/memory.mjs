// Peak memory of a full inflate of a 16 Mi-page (64 GiB) simulated guest:
// engine, guest and monitor together, in bytes per ballooned page of peak RSS
// above a tiny run (issue 2: goal 16; the seed's C needs about 32). Each run
// is its own process, so each peak is its own. Prints figures; asserts nothing.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const self = fileURLToPath(import.meta.url);

if (process.argv[2] === "child") {
  const { runScenario, validateScenario } = await import("../dist/sim/index.js");
  const { fullInflateScenario } = await import("./scenarios.mjs");
  const pages = Number(process.argv[3]);
  const result = runScenario(validateScenario(fullInflateScenario(pages)));
  // maxRSS is in KiB.
  process.stdout.write(JSON.stringify({ size: result.snapshot.size, peak: process.resourceUsage().maxRSS * 1024 }));
} else {
  const measure = (pages) => JSON.parse(execFileSync(process.execPath, [self, "child", String(pages)], { encoding: "utf8" }));
  const tiny = measure(16);
  const full = measure(16 << 20);
  const perPage = (full.peak - tiny.peak) / full.size;
  const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  console.log("memory, full inflate of a 16 Mi-page (64 GiB) simulated guest");
  console.log(`  ballooned pages      ${full.size.toLocaleString("en-US")}`);
  console.log(`  peak RSS             ${mib(full.peak)} (tiny run: ${mib(tiny.peak)})`);
  console.log(`  per ballooned page   ${perPage.toFixed(2)} bytes above the tiny run (goal: at most 16; the seed's C: about 32)`);
}
