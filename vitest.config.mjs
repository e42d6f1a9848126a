// The root configuration: every package's tests as one run, for `npm run
// coverage` (tools/coverage.mjs), which merges in what the CLI's child
// processes ran. `npm test` runs each package on its own, through turbo.
import { defineConfig } from "vitest/config";
import { reporters } from "./vitest.shared.mjs";

export default defineConfig({
  test: {
    projects: ["packages/*"],
    reporters,
    coverage: {
      provider: "v8",
      include: ["packages/*/src/**/*.ts"],
      // Tests and what only they use (cli-runner, test-fixtures) are not the product.
      exclude: ["**/*.test.ts", "**/*.browser.ts", "**/*.bench.ts", "**/*.d.ts", "**/test-*.ts", "packages/cli/src/cli-runner.ts"],
      reporter: [["json", { file: "coverage-final.json" }]],
      reportsDirectory: "coverage/in-process",
    },
  },
});
