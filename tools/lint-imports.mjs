// The import guards of `npm run lint`: dependency-cruiser with the rules of
// .dependency-cruiser.mjs (no cycle; no import against the layers of
// docs/DESIGN.md) over every package's sources. Exit 0 when it finds nothing,
// 1 with one line a violation when it does.
//
//   node tools/lint-imports.mjs [--root DIR]
//
// --root: the tree to check (the repository by default; the tests give a small
// tree laid out like it). The rules are always the repository's.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { rootOf } from "./lint-root.mjs";

const repo = fileURLToPath(new URL("..", import.meta.url));
const root = rootOf(process.argv.slice(2), repo, "lint-imports");

const sources = existsSync(join(root, "packages"))
  ? readdirSync(join(root, "packages"))
      .map((dir) => `packages/${dir}/src`)
      .filter((dir) => existsSync(join(root, dir)))
  : [];
if (sources.length === 0) {
  console.error(`lint-imports: no packages/*/src under ${root}`);
  process.exit(2);
}

const cruiser = join(repo, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
const run = spawnSync(process.execPath, [cruiser, "--config", join(repo, ".dependency-cruiser.mjs"), "--output-type", "err", "--no-progress", ...sources], {
  cwd: root,
  encoding: "utf8",
  stdio: ["ignore", "pipe", "pipe"],
});
process.stdout.write(run.stdout);
process.stderr.write(run.stderr);
if (run.status === 0) console.log(`lint-imports: no cycle, no import against the layers (${sources.join(", ")})`);
process.exitCode = run.status === 0 ? 0 : 1;
