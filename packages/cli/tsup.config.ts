import { defineConfig } from "tsup";

// The CLI entry stays small: each command is its own chunk, loaded when that
// command runs, so `vmballoon --help` does not load koffi or the engine.
export default defineConfig({
  entry: ["src/cli.ts"],
  format: ["esm"],
  target: "node20",
  dts: false,
  clean: true,
  splitting: true,
});
