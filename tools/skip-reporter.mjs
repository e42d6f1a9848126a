// A vitest reporter shared by every package (vitest.shared.mjs): it prints
// every skipped or todo test once, with its reason, and under CI=true fails
// the run for any that test-skips.json does not list. A test's id is its file
// from the repository's root, then its full name: "packages/x/src/a.test.ts >
// describe > test". The reason printed is, first found: the note of
// `ctx.skip(note)`, the reason in test-skips.json, the last "(needs ...)",
// "(only ...)", "(when ...)" of the test's full name.
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { capabilities, missing } from "./caps.mjs";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
/** test-skips.json at the root (VMBALLOON_TEST_SKIPS names another, for the reporter's own test). */
export const ALLOWLIST = process.env.VMBALLOON_TEST_SKIPS ?? join(REPO, "test-skips.json");

/** test-skips.json: `{ "skips": { "<id or pattern with *>": "<reason>" } }`. */
export function loadAllowlist(file = ALLOWLIST) {
  const { skips } = JSON.parse(readFileSync(file, "utf8"));
  return Object.entries(skips).map(([pattern, reason]) => {
    if (typeof reason !== "string" || reason.trim() === "") throw new Error(`${relative(REPO, file)}: "${pattern}" has no reason`);
    const source = pattern
      .split("*")
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    return { pattern, reason, file: pattern.split(" > ")[0], test: new RegExp(`^${source}$`) };
  });
}

const ci = () => process.env.CI === "true" || process.env.CI === "1";

/** The last parenthesised requirement in a name: "... (needs root)" → "needs root". */
const REQUIREMENT = /\(((?:needs?|requires?|only|when|without|unless|not)\b[^()]*)\)/gi;
function reasonInName(name) {
  return [...name.matchAll(REQUIREMENT)].at(-1)?.[1];
}

export default class SkipReporter {
  onInit(vitest) {
    this.vitest = vitest;
  }

  onTestRunEnd(testModules, _errors, reason) {
    if (reason === "interrupted") return;
    const allow = loadAllowlist();
    const filtered = Boolean(this.vitest?.config.testNamePattern);
    const seen = new Set();
    const files = new Set();
    const skipped = [];
    for (const module of testModules) {
      const file = relative(REPO, module.moduleId);
      files.add(file);
      for (const test of module.children.allTests()) {
        const id = `${file} > ${test.fullName}`;
        const listed = allow.find((entry) => entry.test.test(id));
        if (listed) seen.add(listed);
        const result = test.result();
        if (result.state !== "skipped") continue;
        const mode = test.options.mode === "todo" ? "todo" : "skipped";
        const why = result.note ?? listed?.reason ?? reasonInName(test.fullName) ?? "no reason given: say why in its name or in test-skips.json";
        skipped.push({ id, mode, why, listed: Boolean(listed) });
      }
    }
    const out = (line) => process.stdout.write(`${line}\n`);
    if (skipped.length > 0 && filtered) {
      out(`\n${skipped.length} tests not run (filtered by name)`);
    } else if (skipped.length > 0) {
      out(`\n${skipped.length} skipped, each with its reason:`);
      for (const s of skipped) out(`  ${s.mode === "todo" ? "todo" : "skip"}  ${s.id}\n        why: ${s.why}${s.listed ? " [test-skips.json]" : ""}`);
      const lacks = missing(capabilities());
      if (lacks.length > 0) out(`  this machine has no: ${lacks.join(", ")}`);
    }
    if (!ci() || filtered) return;
    const unlisted = skipped.filter((s) => !s.listed);
    const stale = allow.filter((entry) => files.has(entry.file) && !seen.has(entry));
    if (unlisted.length > 0) {
      out(`\nCI: ${unlisted.length} skipped or todo tests are not listed in test-skips.json; a skip in CI is a failure:`);
      for (const s of unlisted) out(`  ${s.id}\n    (${s.why})`);
      process.exitCode = 1;
    }
    if (stale.length > 0) {
      out(`\nCI: test-skips.json lists tests that do not exist (renamed or removed?):`);
      for (const entry of stale) out(`  ${entry.pattern}`);
      process.exitCode = 1;
    }
  }
}
