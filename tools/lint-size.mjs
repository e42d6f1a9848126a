// The file-size guard of `npm run lint`: no source file of a package
// (packages/*/src/**/*.ts) is over BOUND lines, but the outliers listed in
// tools/file-sizes.json, each at most at its listed count. Tests (*.test.ts)
// are not counted: they grow with their cases, and a long table of cases is
// still one thing; the bound is on the modules, where one file should do one
// job. The list only shrinks: a listed file that grew, that shrank (its count is
// lowered, so it cannot grow back), that is now within the bound or that is
// gone fails too, with what to change.
//
//   node tools/lint-size.mjs [--root DIR]
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { rootOf } from "./lint-root.mjs";

const BOUND = 400;
const LIST = "tools/file-sizes.json";

const root = rootOf(process.argv.slice(2), fileURLToPath(new URL("..", import.meta.url)), "lint-size");

/** Lines as `wc -l` counts them, plus a last line without its line break. */
function linesOf(file) {
  const text = readFileSync(file, "utf8");
  return text === "" ? 0 : text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

function* sourcesUnder(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourcesUnder(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) yield path;
  }
}

let listed;
try {
  listed = existsSync(join(root, LIST)) ? JSON.parse(readFileSync(join(root, LIST), "utf8")).files : {};
} catch (error) {
  console.error(`lint-size: ${LIST}: ${error.message}`);
  process.exit(2);
}
if (typeof listed !== "object" || listed === null || Object.values(listed).some((n) => !Number.isInteger(n))) {
  console.error(`lint-size: ${LIST}: "files" must map each path to its count of lines`);
  process.exit(2);
}

const problems = [];
const seen = new Set();
const packages = existsSync(join(root, "packages")) ? readdirSync(join(root, "packages")) : [];
for (const dir of packages) {
  const src = join(root, "packages", dir, "src");
  if (!existsSync(src)) continue;
  for (const file of sourcesUnder(src)) {
    const path = relative(root, file).split("\\").join("/");
    const lines = linesOf(file);
    const allowed = listed[path];
    if (allowed !== undefined) seen.add(path);
    if (allowed === undefined) {
      if (lines > BOUND) problems.push(`${path}: ${lines} lines, over the bound of ${BOUND}: split it`);
    } else if (lines <= BOUND) {
      problems.push(`${path}: ${lines} lines, within the bound of ${BOUND} now: remove it from ${LIST}`);
    } else if (lines > allowed) {
      problems.push(`${path}: ${lines} lines, grown from the ${allowed} of ${LIST}: split it rather than let it grow`);
    } else if (lines < allowed) {
      problems.push(`${path}: ${lines} lines, down from the ${allowed} of ${LIST}: lower its count there to ${lines}`);
    }
  }
}
for (const path of Object.keys(listed)) {
  if (!seen.has(path)) problems.push(`${path}: listed in ${LIST}, but there is no such source: remove it from the list`);
}

for (const problem of problems) console.error(`lint-size: ${problem}`);
if (problems.length === 0) console.log(`lint-size: no source over ${BOUND} lines but the ${seen.size} listed in ${LIST}, none grown`);
process.exitCode = problems.length === 0 ? 0 : 1;
