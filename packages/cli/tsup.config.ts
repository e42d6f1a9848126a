import { readFileSync } from "node:fs";
import { defineConfig } from "tsup";

const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as { version: string };

// The CLI entry stays small: each command is its own chunk, loaded when that
// command runs, so `vmballoon --help` loads neither the engine nor koffi.
export default defineConfig({
  entry: ["src/cli.ts"],
  format: ["esm"],
  target: "node20",
  dts: false,
  clean: true,
  splitting: true,
  // Source maps only for `npm run coverage` (tools/coverage.mjs).
  sourcemap: process.env.VMBALLOON_SOURCEMAPS === "1",
  define: { __VERSION__: JSON.stringify(version) },
});
