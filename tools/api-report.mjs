#!/usr/bin/env node
// The public surface of a package, checked in so that a change of it shows in
// review: packages/NAME/etc/*.api.md.
//
//   node ../../tools/api-report.mjs          (in a package) writes its report(s)
//   node ../../tools/api-report.mjs --check  fails if the report is not the build's
//
// A library: one report per entry point of its "exports" (api-extractor, from
// the built .d.ts files). The CLI has no types: its surface is its command
// line, so its report is `vmballoon --help` and each command's help, run from
// the build.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { Extractor, ExtractorConfig } from "@microsoft/api-extractor";

const check = process.argv.includes("--check");
const folder = process.cwd();
const manifest = JSON.parse(readFileSync(join(folder, "package.json"), "utf8"));
const reports = join(folder, "etc");
const say = (line) => process.stdout.write(`${line}\n`);
let failed = false;

/** Writes or compares one report made by this script (not by api-extractor). */
function settle(file, text) {
  const now = existsSync(file) ? readFileSync(file, "utf8") : undefined;
  if (now === text) return;
  if (check) {
    say(`api: ${relative(folder, file)} is not the surface of this build: run \`npm run api\` and commit the change`);
    failed = true;
  } else {
    mkdirSync(reports, { recursive: true });
    writeFileSync(file, text);
    say(`api: ${relative(folder, file)} updated`);
  }
}

function cliReport() {
  const bin = join(folder, Object.values(manifest.bin)[0]);
  const help = (args) => {
    const run = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1", COLUMNS: "100" } });
    if (run.status !== 0) throw new Error(`${manifest.name} ${args.join(" ")} exited ${run.status}: ${run.stderr}`);
    return run.stdout.replace(new RegExp(`${manifest.name}/${manifest.version.replace(/\./g, "\\.")}`, "g"), `${manifest.name}/VERSION`);
  };
  const commands = [...help(["--help"]).matchAll(/^ {2}([a-z][\w-]*)(?: |$)/gm)].map((m) => m[1]);
  let text = `## CLI report for "${manifest.name}"\n\n> Do not edit: \`npm run api\` writes it from \`${manifest.name} --help\` and each command's help.\n\n`;
  for (const args of [["--help"], ...commands.map((command) => [command, "--help"])]) {
    text += `### ${manifest.name} ${args.join(" ")}\n\n\`\`\`text\n${help(args).trimEnd()}\n\`\`\`\n\n`;
  }
  settle(join(reports, `${manifest.name}.cli.md`), text.trimEnd() + "\n");
}

function libraryReports() {
  mkdirSync(reports, { recursive: true });
  const unscoped = manifest.name.replace(/^@[^/]+\//, "");
  for (const [entry, target] of Object.entries(manifest.exports)) {
    if (typeof target !== "object" || !target.types) continue;
    const name = entry === "." ? unscoped : `${unscoped}-${entry.replace(/^\.\//, "").replace(/\//g, "-")}`;
    const config = ExtractorConfig.prepare({
      configObject: {
        projectFolder: folder,
        mainEntryPointFilePath: join(folder, target.types),
        compiler: {
          overrideTsconfig: {
            compilerOptions: { lib: ["ES2023"], types: ["node"], module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true },
            files: [join(folder, target.types)],
          },
        },
        apiReport: { enabled: true, reportFileName: name, reportFolder: reports, reportTempFolder: join(folder, "node_modules", ".cache", "api-report") },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        messages: {
          // Release tags (@public, @beta) are not used in this project: everything exported is public.
          // Undocumented members show in the report as they are; the review reads them there.
          extractorMessageReporting: {
            "ae-missing-release-tag": { logLevel: "none" },
            "ae-undocumented": { logLevel: "none" },
            "ae-unresolved-link": { logLevel: "none" },
            // Other findings (a type used but not exported: ae-forgotten-export) are written into the
            // report itself, where the review sees them, rather than failing the check.
            default: { logLevel: "warning", addToApiReportFile: true },
          },
          tsdocMessageReporting: { default: { logLevel: "none" } },
        },
      },
      configObjectFullPath: undefined,
      packageJsonFullPath: join(folder, "package.json"),
    });
    const result = Extractor.invoke(config, { localBuild: !check, showVerboseMessages: false });
    if (!result.succeeded || (check && result.apiReportChanged)) {
      say(
        `api: ${manifest.name}${entry === "." ? "" : entry.slice(1)}: ${check && result.apiReportChanged ? `etc/${name}.api.md is not the surface of this build: run \`npm run api\` and commit the change` : `${result.errorCount} errors, ${result.warningCount} warnings`}`,
      );
      failed = true;
    }
  }
}

if (manifest.bin && !manifest.types) cliReport();
else libraryReports();
process.exitCode = failed ? 1 : 0;
