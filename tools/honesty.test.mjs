// The suite's own honesty, tested (node --test tools/; `npm test` runs it as the root task
// test:tools): tools/fixtures/honesty/lies.test.ts holds every way a test can pass without
// testing, run here through the shared vitest configuration.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { capabilities, fingerprint, missing } from "./caps.mjs";

const repo = fileURLToPath(new URL("..", import.meta.url));
const project = join(repo, "tools", "fixtures", "honesty");

function vitest(env) {
  const { TURBO_HASH: _, ...inherited } = process.env;
  const run = spawnSync(process.execPath, [join(repo, "node_modules", "vitest", "vitest.mjs"), "run", "--root", project], {
    cwd: project,
    encoding: "utf8",
    env: { ...inherited, NO_COLOR: "1", CI: "", VMBALLOON_TEST_SKIPS: join(project, "test-skips.json"), ...env },
    timeout: 120_000,
  });
  return { status: run.status, out: run.stdout + run.stderr };
}

const file = "tools/fixtures/honesty/lies.test.ts";

test("every skip and todo is printed once, with its reason", () => {
  const { out } = vitest({ HONESTY_EARLY_RETURN: "no" });
  const expected = [
    [`${file} > a plain skip`, "no reason given"],
    [`${file} > a skipIf whose name says why (needs a frobnicator)`, "needs a frobnicator"],
    [`${file} > a describe.skipIf (only on Tuesdays) > inside it`, "only on Tuesdays"],
    [`${file} > a ctx.skip with a note`, "no frobnicator on this machine"],
    [`${file} > a todo`, "no reason given"],
    [`${file} > listed in the allowlist (needs the moon)`, "the moon is not in CI"],
  ];
  assert.match(out, /6 skipped, each with its reason:/);
  for (const [id, why] of expected) {
    const at = out.indexOf(`  ${id}\n`);
    assert.notEqual(at, -1, `${id} is not reported`);
    assert.equal(out.indexOf(`  ${id}\n`, at + 1), -1, `${id} is reported twice`);
    assert.match(out.slice(at, out.indexOf("\n", out.indexOf("\n", at) + 1)), new RegExp(`why: ${why}`));
  }
});

test("a test with no assertion fails, and so does one that returns before its assertion", () => {
  const { status, out } = vitest({});
  assert.equal(status, 1);
  assert.match(out, /FAIL .*no assertion at all/);
  assert.match(out, /FAIL .*an early return before its assertion/);
  assert.match(out, /expected any number of assertion, but got none/);
});

test("outside CI, skips are reported but do not fail the run", () => {
  const { status, out } = vitest({ HONESTY_EARLY_RETURN: "no" });
  assert.doesNotMatch(out, /^CI:/m);
  // the only failure is the test with no assertion
  assert.match(out, /Tests {2}1 failed \| 1 passed \| 6 skipped|Tests {2}1 failed \| 1 passed \| 5 skipped \| 1 todo/);
  assert.equal(status, 1);
});

test("under CI=true, each unlisted skip or todo fails the run; the listed one does not", () => {
  const { status, out } = vitest({ CI: "true", HONESTY_EARLY_RETURN: "no" });
  assert.equal(status, 1);
  const ci = out.slice(out.indexOf("CI: "));
  assert.match(ci, /^CI: 5 skipped or todo tests are not listed in test-skips\.json/);
  assert.doesNotMatch(ci, /needs the moon/);
  assert.match(ci, /a ctx\.skip with a note/);
  assert.match(ci, /a describe\.skipIf \(only on Tuesdays\) > inside it/);
});

test("the capability fingerprint changes with what the machine has", () => {
  const caps = capabilities();
  assert.equal(fingerprint(caps), fingerprint({ ...caps }));
  assert.notEqual(fingerprint(caps), fingerprint({ ...caps, root: !caps.root }));
  assert.notEqual(fingerprint(caps), fingerprint({ ...caps, tools: { ...caps.tools, promtool: !caps.tools.promtool } }));
  assert.notEqual(fingerprint(caps), fingerprint({ ...caps, ci: !caps.ci }));
  assert.deepEqual(missing({ ...caps, root: false, tools: { ...caps.tools, promtool: false } }).slice(0, 1), ["root"]);
  assert.ok(missing({ ...caps, tools: { ...caps.tools, promtool: false } }).includes("promtool"));
});

test("under turbo, vitest refuses to run when .caps.json is not this machine's", () => {
  const { status, out } = vitest({ TURBO_HASH: "0000000000000000", VMBALLOON_CAPS_FILE: join(project, "no-such-caps.json") });
  assert.equal(status, 1);
  assert.match(out, /\.caps\.json says .*, this machine is [0-9a-f]{16}/);
});

test("every workspace package runs the shared configuration, and checks its API report in lint", () => {
  const { workspaces } = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
  assert.ok(workspaces.length >= 5);
  for (const folder of workspaces) {
    const config = ["vitest.config.ts", "vitest.config.mjs"].map((name) => join(repo, folder, name)).find((file) => existsSync(file));
    assert.ok(config, `${folder} has no vitest.config.ts (it must re-export ../../vitest.shared.mjs)`);
    assert.match(readFileSync(config, "utf8"), /vitest\.shared\.mjs/, `${folder}'s vitest config does not use vitest.shared.mjs`);
    const { scripts } = JSON.parse(readFileSync(join(repo, folder, "package.json"), "utf8"));
    assert.match(scripts.test ?? "", /^vitest run\b/, `${folder}: "test" must be vitest run`);
    assert.match(scripts.lint ?? "", /tools\/api-report\.mjs --check/, `${folder}: "lint" must check the API report`);
  }
});
