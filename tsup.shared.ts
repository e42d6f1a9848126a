import type { Options } from "tsup";

/**
 * The build every library package shares: ESM for Node 20, one output file
 * per source file (not bundled), and `.d.ts` files.
 *
 * Not bundled on purpose: esbuild's bundler turns top-level `const` into
 * `var`, and V8 folds a module's `const` bindings into optimized code but not
 * its `var`s. The engine's per-page paths lean on that (measured: a quarter
 * fewer instructions a page operation).
 */
export function libraryBuild(): Options {
  return {
    // Tests, benchmarks and test helpers (*.test.ts, *.bench.ts, test-*.ts) are
    // not part of a package; nor are ambient declarations (*.d.ts), which
    // describe an untyped dev dependency for the tests.
    entry: ["src/**/*.ts", "!src/**/*.test.ts", "!src/**/*.bench.ts", "!src/**/test-*.ts", "!src/**/*.d.ts"],
    bundle: false,
    format: ["esm"],
    target: "node20",
    // The packages' tsconfigs are composite for `tsc -b`; the .d.ts build is not.
    dts: { compilerOptions: { composite: false } },
    clean: true,
    // Source maps only for `npm run coverage`, which maps the CLI's child processes back to src/.
    sourcemap: process.env.VMBALLOON_SOURCEMAPS === "1",
  };
}
