// Builds the guest's initramfs as two concatenated newc cpio archives (the
// kernel unpacks them in turn):
//   base.cpio  busybox (static) with its applet links, this machine's own node
//              (stripped) and the shared libraries ldd names for it — cached
//              under .vm/cache/, rebuilt only when node or busybox changes;
//   app.cpio   /init, and /app: the packed project installed with its
//              production dependencies (koffi's prebuilt native module
//              included) plus vm/checks.mjs and vm/guest/ — rebuilt
//              on every run.
// Uncompressed on purpose: under TCG the kernel copies it far faster than it
// would decompress it.
import { createHash } from "node:crypto";
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { StepError, run, timed } from "./sh.mjs";

const BASE_FORMAT = 1; // bump when the base's layout changes

/** The shared libraries (and the ELF interpreter) `ldd` resolves for `file`; "not found" ones are skipped. */
function sharedLibraries(file) {
  const r = run("ldd", [file], { allowFail: true });
  if (!r.ok) return []; // static, or not an ELF for this machine
  const libs = [];
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

/** Copies `path` (dereferenced) to the same path under `root`. */
function copyAbsolute(root, path) {
  const dest = join(root, path);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(realpathSync(path), dest);
}

/** newc cpio of everything under `root` (owned by root, sorted), written to `out`. */
function cpio(root, out) {
  run("sh", ["-c", 'cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > "$2"', "sh", root, out]);
}

function buildBase({ busybox, cacheDir }) {
  const node = realpathSync(process.execPath);
  const st = statSync(node);
  const bb = statSync(busybox);
  const key = createHash("sha256")
    .update(JSON.stringify({ BASE_FORMAT, node, size: st.size, mtime: st.mtimeMs, bb: [bb.size, bb.mtimeMs] }))
    .digest("hex")
    .slice(0, 16);
  const out = join(cacheDir, `base-${key}.cpio`);
  const meta = join(cacheDir, `base-${key}.json`);
  if (existsSync(out) && existsSync(meta)) return { out, ...JSON.parse(readFileSync(meta, "utf8")), cached: true };

  for (const f of readdirSync(cacheDir)) if (/^base-.*\.(cpio|json)$/.test(f)) rmSync(join(cacheDir, f));
  const root = join(cacheDir, "base-root");
  rmSync(root, { recursive: true, force: true });
  for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "root", "etc", "app"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  copyFileSync(busybox, join(root, "bin/busybox"));
  run("chmod", ["0755", join(root, "bin/busybox")]);
  const applets = run(busybox, ["--list"]).stdout.split("\n").filter(Boolean);
  for (const a of applets) if (a !== "busybox") symlinkSync("busybox", join(root, "bin", a));
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\n");

  run("strip", ["--strip-all", "-o", join(root, "usr/bin/node"), node]);
  const libs = sharedLibraries(node);
  for (const lib of libs) copyAbsolute(root, lib);

  cpio(root, out);
  rmSync(root, { recursive: true, force: true });
  const info = { node, nodeBytes: st.size, libs };
  writeFileSync(meta, JSON.stringify(info));
  return { out, ...info, cached: false };
}

/** `npm pack` every workspace package, install the tarballs with production deps only. */
function stageProject({ repo, vmDir, log }) {
  const pack = join(vmDir, "pack");
  const stage = join(vmDir, "stage");
  rmSync(pack, { recursive: true, force: true });
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(pack, { recursive: true });
  mkdirSync(stage, { recursive: true });

  // Fresh dist/ for every package (turbo's cache keeps this quick).
  run("npm", ["run", "build", "--silent", "--", "--output-logs=errors-only"], { cwd: repo, log });
  const packed = JSON.parse(run("npm", ["pack", "--workspaces", "--json", "--pack-destination", pack], { cwd: repo, log }).stdout);
  const dependencies = Object.fromEntries(packed.map((p) => [p.name, `file:../pack/${p.filename}`]));
  writeFileSync(join(stage, "package.json"), JSON.stringify({ name: "vmtest-stage", private: true, dependencies }, null, 2));
  run("npm", ["install", "--prefix", stage, "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=warn"], {
    cwd: stage,
    log,
  });
  if (!existsSync(join(stage, "node_modules/vmballoon/bin/vmballoon.js"))) throw new StepError("the staged project has no vmballoon CLI");
  return { stage, packages: packed.map((p) => `${p.name}@${p.version}`) };
}

function buildApp({ repo, vmDir, stage, baseLibs }) {
  const root = join(vmDir, "build", "app-root");
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, "app/vm"), { recursive: true });
  copyFileSync(join(repo, "vm/guest/init"), join(root, "init"));
  run("chmod", ["0755", join(root, "init")]);
  cpSync(join(stage, "node_modules"), join(root, "app/node_modules"), { recursive: true, verbatimSymlinks: true });
  for (const part of ["checks.mjs", "guest"]) cpSync(join(repo, "vm", part), join(root, "app/vm", part), { recursive: true });

  // Native addons (koffi's) may need libraries that node itself does not.
  const have = new Set(baseLibs);
  const addons = run("find", [join(root, "app/node_modules"), "-name", "*.node", "-type", "f"])
    .stdout.split("\n")
    .filter(Boolean);
  const extra = [];
  for (const addon of addons) {
    for (const lib of sharedLibraries(addon)) {
      if (!have.has(lib)) (have.add(lib), extra.push(lib), copyAbsolute(root, lib));
    }
  }
  const out = join(vmDir, "build", "app.cpio");
  cpio(root, out);
  return { out, addons: addons.map((a) => relative(join(root, "app"), a)), extraLibs: extra };
}

export async function buildInitramfs({ repo, vmDir, cacheDir, busybox, log }) {
  mkdirSync(join(vmDir, "build"), { recursive: true });
  const [base, baseS] = await timed(() => buildBase({ busybox, cacheDir }));
  const [staged, stageS] = await timed(() => stageProject({ repo, vmDir, log }));
  const [app, appS] = await timed(() => buildApp({ repo, vmDir, stage: staged.stage, baseLibs: base.libs }));
  const initrd = join(vmDir, "build", "initrd.cpio");
  run("sh", ["-c", 'cat "$1" "$2" > "$3"', "sh", base.out, app.out, initrd]);
  return {
    initrd,
    stage: staged.stage,
    packages: staged.packages,
    addons: app.addons,
    extraLibs: app.extraLibs,
    baseCached: base.cached,
    bytes: { initrd: statSync(initrd).size, base: statSync(base.out).size, app: statSync(app.out).size },
    seconds: { base: baseS, project: stageS, app: appS },
  };
}
