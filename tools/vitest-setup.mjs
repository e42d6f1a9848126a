// Set up in every test file of every package (vitest.shared.mjs).
//
// `npm run coverage` (tools/coverage.mjs) sets VMBALLOON_CHILD_COVERAGE to a
// folder: every process a test starts (the built CLI, the probe child) then
// writes its V8 coverage there, which is merged into the one report.
if (process.env.VMBALLOON_CHILD_COVERAGE) process.env.NODE_V8_COVERAGE = process.env.VMBALLOON_CHILD_COVERAGE;

// Every test file's fast-check runs from one printed seed (FC_SEED, or the
// fixed one): a property test written later is seeded without asking.
import { seedFastCheck } from "../test-support/fast-check-seed.mjs";
seedFastCheck();
