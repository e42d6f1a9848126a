import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// `npm run test:browser`: the report in a real browser (Debian's chromium,
// headless). Not part of `npm test`: it installs chromium when it is missing.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["src/**/*.browser.ts"],
    testTimeout: 180_000,
    hookTimeout: 900_000,
  },
});
