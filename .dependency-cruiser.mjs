// The import guards of `npm run lint` (tools/lint-imports.mjs runs them): no import
// cycle, and no import against the layers of docs/DESIGN.md.
//
// Why dependency-cruiser and not eslint-plugin-import-x's no-cycle and
// no-restricted-paths, measured on this repository (Node 20, 2 cores): they
// install about the same (dependency-cruiser 17: 7.8 MB in 43 packages on its
// own, 28 new to this lock; import-x with the TypeScript resolver it needs:
// 8.7 MB in 19 packages beside ESLint); dependency-cruiser checks the six
// packages' sources in 2.1 s, import-x's no-cycle alone took 3.7 s; and, what
// decides it, import-x with its defaults found neither of main's two cycles
// (one goes through an `import type`, the other through a dynamic
// `import()`), where dependency-cruiser reports both. Its rules also name both
// ends of an edge by path, one rule per layer, and it prints a cycle whole.
// dependency-cruiser 17, not 18: 18 wants Node 22, the project runs on 20.
//
// Paths are relative to the repository root. An import of a workspace package
// is matched both resolved (packages/core/dist/...) and unresolved
// (@vmballoon/core, when that package is not built), so the rules hold before a build.

/** What a path looks like when it is the package in `dir` (npm name `name`): its folder, or its name. */
const pkg = (dir, name = `@vmballoon/${dir}`) => `^(?:packages/${dir}/|(?:node_modules/)?${name.replace("/", "\\/")}(?:/|$))`;
const CORE = pkg("core");
const HV_X86 = pkg("hv-x86");
const HOST = pkg("host");
const CLI = pkg("cli", "vmballoon");
const OURS = "^(?:packages/|(?:node_modules/)?(?:@vmballoon\\/|vmballoon(?:/|$)))";

/** The seed's engine and its reference simulation: they know nothing of today's driver. */
const SEED_ENGINE = "^packages/core/src/(?:balloon|sim/(?:guest|monitor|scenario|runner|trace))\\.ts$";

/** @type {import("dependency-cruiser").IConfiguration} */
export default {
  forbidden: [
    {
      name: "no-circular",
      comment: "No module reaches itself again through its imports (types included): a house without circles.",
      severity: "error",
      from: { path: "^packages/[^/]+/src/" },
      to: { circular: true },
    },
    {
      name: "protocol-imports-nothing-of-ours",
      comment: "@vmballoon/protocol is the bottom layer: constants and codes, no dependency.",
      severity: "error",
      from: { path: "^packages/protocol/src/" },
      to: { path: OURS, pathNot: pkg("protocol") },
    },
    {
      name: "seed-engine-knows-nothing-of-modern",
      comment: "The seed's engine and simulation import nothing of today's driver (modern-*.ts, sim/modern-*.ts).",
      severity: "error",
      from: { path: SEED_ENGINE },
      to: { path: "^packages/core/src/(?:sim/)?modern-" },
    },
    {
      name: "core-imports-no-upper-layer",
      comment: "core knows neither koffi (hv-x86), nor the host, nor the terminal (the CLI).",
      severity: "error",
      from: { path: "^packages/core/src/" },
      to: { path: [HV_X86, HOST, CLI] },
    },
    {
      name: "stats-imports-only-protocol",
      comment: "@vmballoon/stats depends on nothing but protocol, so that core may use it without a cycle.",
      severity: "error",
      from: { path: "^packages/stats/src/" },
      to: { path: [CORE, HV_X86, HOST, CLI] },
    },
    {
      name: "host-imports-no-hv-x86-nor-cli",
      comment: "@vmballoon/host drives simulated VMs through core; the native layer and the terminal stay out.",
      severity: "error",
      from: { path: "^packages/host/src/" },
      to: { path: [HV_X86, CLI] },
    },
    {
      name: "hv-x86-imports-no-host-nor-cli",
      comment: "hv-x86 implements core's ports; it knows nothing of the host or the CLI above it.",
      severity: "error",
      from: { path: "^packages/hv-x86/src/" },
      to: { path: [HOST, CLI] },
    },
    {
      name: "command-imports-no-command",
      comment: "A command (packages/cli/src/commands/X.ts) imports no other command: what two share lives in a module outside commands/.",
      severity: "error",
      from: { path: "^packages/cli/src/commands/([^/]+)\\.ts$" },
      to: { path: "^packages/cli/src/commands/[^/]+\\.ts$", pathNot: "^packages/cli/src/commands/$1\\.ts$" },
    },
  ],
  options: {
    // Only the sources are cruised (tools/lint-imports.mjs names packages/*/src); a
    // workspace package's build is where an import of it lands, a leaf.
    doNotFollow: { path: ["node_modules", "^packages/[^/]+/dist/"] },
    // `import type` is an edge too: a cycle through types is still a circle in the design.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types"],
    },
    reporterOptions: { text: { highlightFocused: false } },
  },
};
