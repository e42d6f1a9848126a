import { defineConfig } from "vitest/config";

// `npm run test:prometheus`: the suite that runs a real Prometheus server (see prometheus.test.ts).
export default defineConfig({
  test: {
    include: ["e2e/prometheus/**/*.test.ts"],
    root: new URL("../..", import.meta.url).pathname,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
