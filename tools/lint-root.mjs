// The one option of the lint scripts of tools/: `--root DIR`, the tree to check.
import { resolve } from "node:path";

/** The tree a lint script checks: `--root DIR`, or `fallback`; anything else ends the script with status 2. */
export function rootOf(args, fallback, name) {
  if (args.length === 0) return fallback;
  if (args.length === 2 && args[0] === "--root" && args[1] !== "") return resolve(args[1]);
  console.error(`${name}: usage: node tools/${name}.mjs [--root DIR]`);
  process.exit(2);
}
