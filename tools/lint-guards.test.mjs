// The lint guards bite (node --test; `npm run test:tools`): tools/lint-imports.mjs
// and tools/lint-size.mjs run on small trees laid out like the repository,
// one with each fault, and on a clean one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const tools = fileURLToPath(new URL(".", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "vmballoon-lint-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

let trees = 0;
/** A tree of files (path → text) in a new folder. */
function tree(files) {
  const root = join(scratch, `tree-${++trees}`);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function lint(script, root) {
  const run = spawnSync(process.execPath, [join(tools, script), "--root", root], { encoding: "utf8", timeout: 60_000 });
  return { status: run.status, out: run.stdout + run.stderr };
}

/** A layered tree with no fault: each package imports only what it may. */
const CLEAN = {
  "packages/protocol/src/index.ts": "export const PAGE_SIZE = 4096;\n",
  "packages/core/src/balloon.ts":
    'import { PAGE_SIZE } from "@vmballoon/protocol";\nimport { stack } from "./page-stack.js";\nexport const b = PAGE_SIZE + stack;\n',
  "packages/core/src/page-stack.ts": "export const stack = 1;\n",
  "packages/core/src/modern-balloon.ts": 'import { stack } from "./page-stack.js";\nexport const m = stack;\n',
  "packages/core/src/sim/runner.ts": 'import { b } from "../balloon.js";\nexport const r = b;\n',
  "packages/host/src/index.ts": 'import { m } from "@vmballoon/core";\nexport const h = m;\n',
  "packages/cli/src/output.ts": "export const out = 1;\n",
  "packages/cli/src/commands/stats.ts": 'import { out } from "../output.js";\nimport { h } from "@vmballoon/host";\nexport const stats = out + h;\n',
  "packages/cli/src/commands/exporter.ts": 'import { out } from "../output.js";\nexport const exporter = out;\n',
};

describe("lint-imports", () => {
  test("passes on a clean tree", () => {
    const { status, out } = lint("lint-imports.mjs", tree(CLEAN));
    assert.equal(status, 0, out);
    assert.match(out, /no cycle, no import against the layers/);
  });

  test("fails on a cycle, naming its modules", () => {
    const { status, out } = lint(
      "lint-imports.mjs",
      tree({
        ...CLEAN,
        "packages/core/src/sim/trace.ts": 'import { r } from "./runner.js";\nexport const t = r;\n',
        "packages/core/src/sim/runner.ts": 'import { b } from "../balloon.js";\nimport type { t } from "./trace.js";\nexport const r: typeof t = b;\n',
      }),
    );
    assert.equal(status, 1, out);
    assert.match(out, /no-circular: packages\/core\/src\/sim\/(runner|trace)\.ts/);
    assert.doesNotMatch(out, /protocol-imports|seed-engine|command-imports/);
  });

  const forbidden = [
    ["protocol-imports-nothing-of-ours", "packages/protocol/src/index.ts", 'import { b } from "@vmballoon/core";\nexport const PAGE_SIZE = b;\n'],
    ["seed-engine-knows-nothing-of-modern", "packages/core/src/sim/runner.ts", 'import { m } from "../modern-balloon.js";\nexport const r = m;\n'],
    ["core-imports-no-upper-layer", "packages/core/src/page-stack.ts", 'import { x } from "@vmballoon/hv-x86";\nexport const stack = x;\n'],
    ["core-imports-no-upper-layer", "packages/core/src/page-stack.ts", 'import { x } from "vmballoon";\nexport const stack = x;\n'],
    ["host-imports-no-hv-x86-nor-cli", "packages/host/src/index.ts", 'import { x } from "@vmballoon/hv-x86";\nexport const h = x;\n'],
    ["command-imports-no-command", "packages/cli/src/commands/exporter.ts", 'import { stats } from "./stats.js";\nexport const exporter = stats;\n'],
  ];
  for (const [rule, file, text] of forbidden) {
    test(`fails on ${rule}: ${file} importing ${/from "([^"]+)"/.exec(text)[1]}`, () => {
      const { status, out } = lint("lint-imports.mjs", tree({ ...CLEAN, [file]: text }));
      assert.equal(status, 1, out);
      assert.match(out, new RegExp(`error ${rule}: ${file.replace(/[./]/g, "\\$&")} →`));
      assert.doesNotMatch(out, /no-circular/);
    });
  }

  test("a workspace package is matched resolved too (its built dist, through node_modules)", () => {
    const root = tree({
      ...CLEAN,
      "packages/hv-x86/package.json": '{ "name": "@vmballoon/hv-x86", "type": "module", "exports": { ".": "./dist/index.js" } }\n',
      "packages/hv-x86/dist/index.js": "export const x = 1;\n",
      "node_modules/@vmballoon/hv-x86/package.json": '{ "name": "@vmballoon/hv-x86", "type": "module", "exports": { ".": "./dist/index.js" } }\n',
      "node_modules/@vmballoon/hv-x86/dist/index.js": "export const x = 1;\n",
      "packages/core/src/page-stack.ts": 'import { x } from "@vmballoon/hv-x86";\nexport const stack = x;\n',
    });
    const { status, out } = lint("lint-imports.mjs", root);
    assert.equal(status, 1, out);
    assert.match(out, /core-imports-no-upper-layer: packages\/core\/src\/page-stack\.ts → (node_modules\/@vmballoon|packages)\/hv-x86\/dist\/index\.js/);
  });

  test("a tree without packages/*/src is bad input (exit 2), as is a wrong flag", () => {
    assert.equal(lint("lint-imports.mjs", tree({ "README.md": "nothing\n" })).status, 2);
    const run = spawnSync(process.execPath, [join(tools, "lint-imports.mjs"), "--frobnicate"], { encoding: "utf8" });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /^lint-imports: usage: /);
  });
});

describe("lint-size", () => {
  const lines = (n) => Array.from({ length: n }, (_, i) => `export const v${i} = ${i};\n`).join("");
  const sizes = (files) => JSON.stringify({ why: "test", files });

  test("passes with every source within the bound or at its listed count; tests are not counted", () => {
    const { status, out } = lint(
      "lint-size.mjs",
      tree({
        "packages/core/src/small.ts": lines(400),
        "packages/core/src/big.ts": lines(450),
        "packages/core/src/big.test.ts": lines(900),
        "tools/file-sizes.json": sizes({ "packages/core/src/big.ts": 450 }),
      }),
    );
    assert.equal(status, 0, out);
    assert.match(out, /but the 1 listed/);
  });

  const faults = [
    ["an unlisted file over the bound", { "packages/cli/src/x.ts": lines(401) }, {}, /packages\/cli\/src\/x\.ts: 401 lines, over the bound of 400: split it/],
    ["a listed file that grew", { "packages/core/src/big.ts": lines(451) }, { "packages/core/src/big.ts": 450 }, /big\.ts: 451 lines, grown from the 450/],
    [
      "a listed file that shrank",
      { "packages/core/src/big.ts": lines(420) },
      { "packages/core/src/big.ts": 450 },
      /big\.ts: 420 lines, down from the 450 .*lower its count there to 420/,
    ],
    [
      "a listed file now within the bound",
      { "packages/core/src/big.ts": lines(390) },
      { "packages/core/src/big.ts": 450 },
      /big\.ts: 390 lines, within the bound of 400 now: remove it from tools\/file-sizes\.json/,
    ],
    [
      "a listed file that is gone",
      { "packages/core/src/small.ts": lines(3) },
      { "packages/core/src/gone.ts": 450 },
      /gone\.ts: listed in tools\/file-sizes\.json, but there is no such source/,
    ],
  ];
  for (const [what, files, listed, message] of faults) {
    test(`fails on ${what}`, () => {
      const { status, out } = lint("lint-size.mjs", tree({ ...files, "tools/file-sizes.json": sizes(listed) }));
      assert.equal(status, 1, out);
      assert.match(out, message);
    });
  }

  test("a malformed list is bad input (exit 2), in one line", () => {
    const { status, out } = lint("lint-size.mjs", tree({ "packages/core/src/a.ts": lines(1), "tools/file-sizes.json": "{ nope" }));
    assert.equal(status, 2);
    assert.match(out, /^lint-size: tools\/file-sizes\.json: /);
    assert.equal(out.trim().split("\n").length, 1);
  });
});
