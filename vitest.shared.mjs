// The vitest configuration every package uses (packages/*/vitest.config.ts
// re-exports it; the root vitest.config.mjs runs them all as projects for
// `npm run coverage`). See docs/DESIGN.md, "How the suite keeps itself honest".
import { join } from "node:path";
import { defineConfig } from "vitest/config";
import { fingerprint } from "./tools/caps.mjs";
import SkipReporter, { REPO } from "./tools/skip-reporter.mjs";

// A result cached by turbo is keyed on VMBALLOON_CAPS (turbo.json); a run
// whose key is not this machine's capabilities would store a lie under it.
const declared = process.env.VMBALLOON_CAPS;
if (declared !== undefined || process.env.TURBO_HASH !== undefined) {
  const actual = fingerprint();
  if (declared !== actual) {
    throw new Error(
      declared === undefined
        ? "VMBALLOON_CAPS is not set: run the tests with `npm test` (node tools/caps.mjs -- turbo run test), which keys turbo's cache on this machine's capabilities"
        : `VMBALLOON_CAPS=${declared} but this machine's capabilities are ${actual} (node tools/caps.mjs --json): run the tests again with \`npm test\``,
    );
  }
}

/** The test options of every package (a project of the root configuration takes these, not its reporters). */
export const test = {
  testTimeout: 20_000,
  // A test that makes no assertion fails (as if it called expect.hasAssertions()).
  expect: { requireAssertions: true },
  setupFiles: [join(REPO, "tools/vitest-setup.mjs")],
};

/** Vitest's own report, then every skip with its reason (and, under CI=true, unlisted skips fail the run). */
export const reporters = ["default", new SkipReporter()];

export default defineConfig({ test: { ...test, reporters } });
