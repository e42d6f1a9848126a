import type { Options } from "tsup";

/** The build every library package shares: ESM for Node 20 with bundled `.d.ts`. */
export function libraryBuild(entry: Options["entry"]): Options {
  return {
    entry,
    format: ["esm"],
    target: "node20",
    // The packages' tsconfigs are composite for `tsc -b`; the .d.ts bundler is not.
    dts: { compilerOptions: { composite: false } },
    clean: true,
    treeshake: true,
  };
}
