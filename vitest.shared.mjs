// The vitest configuration every package uses (packages/*/vitest.config.ts
// re-exports it; the root vitest.config.mjs runs them all as projects for
// `npm run coverage`). See docs/DESIGN.md, "How the suite keeps itself honest".
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { defineConfig } from "vitest/config";
import { fingerprint } from "./tools/caps.mjs";
import SkipReporter, { REPO } from "./tools/skip-reporter.mjs";

// A result cached by turbo is keyed on this machine's capabilities: the root
// task `caps` writes them to .caps.json, which the test tasks hash
// (turbo.json). Under turbo, a key that is not this machine's would store a
// lie under it: refuse to run.
if (process.env.TURBO_HASH !== undefined) {
  const actual = fingerprint();
  let keyed;
  try {
    keyed = JSON.parse(readFileSync(process.env.VMBALLOON_CAPS_FILE ?? join(REPO, ".caps.json"), "utf8")).fingerprint;
  } catch {
    keyed = "missing";
  }
  if (keyed !== actual) {
    throw new Error(
      `.caps.json says ${keyed}, this machine is ${actual} (node tools/caps.mjs --json): run the tests through \`npm test\` (turbo runs the caps task first)`,
    );
  }
}

/** The test options of every package (a project of the root configuration takes these, not its reporters). */
export const test = {
  // Under `npm run coverage` every package runs at once, instrumented: slower.
  testTimeout: process.env.VMBALLOON_CHILD_COVERAGE ? 60_000 : 20_000,
  // A test that makes no assertion fails (as if it called expect.hasAssertions()).
  expect: { requireAssertions: true },
  setupFiles: [join(REPO, "tools/vitest-setup.mjs")],
  // Under `npm run coverage`, after hv-x86's tests (group 0), which change kernel-wide settings for a while.
  sequence: { groupOrder: 1 },
};

/** Vitest's own report, then every skip with its reason (and, under CI=true, unlisted skips fail the run). */
export const reporters = ["default", new SkipReporter()];

export default defineConfig({ test: { ...test, reporters } });
