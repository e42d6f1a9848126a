import { defineConfig } from "vitest/config";
import { reporters, test } from "../../vitest.shared.mjs";

// Some of this package's tests change kernel-wide settings for a while (kernel.io_uring_disabled,
// vm.nr_hugepages, compaction's sysctls), and others open page sources that those settings change:
// the files run one at a time, and under `npm run coverage` before every other package (group 0),
// so that no other test's page source meets them. `npm test` runs the CLI's tests after this
// package's for the same reason (turbo.json, vmballoon#test).
export default defineConfig({ test: { ...test, reporters, fileParallelism: false, sequence: { groupOrder: 0 } } });
