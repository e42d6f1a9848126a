// Prerequisites, all from Debian's archive, installed idempotently:
//   - qemu-system-x86, cpio (and binutils for `strip`, when missing): apt-get install
//   - the kernel that linux-image-amd64 names, and busybox-static: `apt-get
//     download` of that ONE package each, unpacked into .vm/cache/ (no system
//     install: the kernel needs no modules here, and busybox-static conflicts
//     with the `busybox` package that some machines have).
// A warm run does no apt work beyond two local dpkg/apt-cache queries.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { StepError, have, run } from "./sh.mjs";

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };

function installed(pkg) {
  const r = run("dpkg-query", ["-W", "-f=${Status}", pkg], { allowFail: true });
  return r.ok && r.stdout.trim() === "install ok installed";
}

let updated = false;
/** `apt-get update`, once per run; sources that cannot be reached are not an error here. */
export function aptUpdate(log) {
  if (updated) return;
  updated = true;
  run("apt-get", ["update"], { env: APT_ENV, allowFail: true, log });
}

/** Runs an apt step; on failure, `apt-get update` once and tries again. */
function withUpdate(step, log) {
  const first = step();
  if (first.ok || updated) return first;
  aptUpdate(log);
  return step();
}

/** The exact kernel package that the linux-image-amd64 metapackage depends on. */
function kernelPackage(log) {
  const query = () => {
    const r = run("apt-cache", ["depends", "linux-image-amd64"], { allowFail: true, log });
    const m = /Depends:\s+(linux-image-[0-9][^\s]*-amd64)\b/.exec(r.stdout);
    return { ok: r.ok && !!m, name: m?.[1] };
  };
  const r = withUpdate(query, log);
  if (!r.ok) throw new StepError("apt-cache depends linux-image-amd64 names no linux-image-*-amd64 package");
  return r.name;
}

function fetchKernel(cacheDir, log) {
  const kpkg = kernelPackage(log);
  const kdir = join(cacheDir, "kernel", kpkg);
  const kernel = join(kdir, "vmlinuz");
  if (existsSync(kernel)) return { ok: true, kernel, kpkg, downloaded: false };
  const fetched = downloadAndExtractTo(kpkg, "./boot/vmlinuz-*", cacheDir, log);
  if (!fetched.ok) return fetched;
  const boot = join(fetched.tmp, "boot");
  const image = readdirSync(boot).find((f) => f.startsWith("vmlinuz-"));
  if (!image) return { ok: false, why: `${kpkg} holds no /boot/vmlinuz-*` };
  mkdirSync(kdir, { recursive: true });
  renameSync(join(boot, image), kernel);
  rmSync(fetched.tmp, { recursive: true, force: true });
  rmSync(fetched.deb, { force: true });
  return { ok: true, kernel, kpkg, downloaded: true };
}

/**
 * @returns {{ qemu: string, kernel: string, kernelPackage: string, busybox: string, actions: string[] } | { skip: string }}
 */
export function ensurePrereqs({ cacheDir, log }) {
  mkdirSync(cacheDir, { recursive: true });
  const actions = [];
  let t = performance.now();
  /** Records an action with the seconds since the previous one. */
  const did = (what) => {
    const now = performance.now();
    actions.push(`${what} (${((now - t) / 1000).toFixed(1)} s)`);
    t = now;
  };

  // 1. Packages installed on the system.
  const wanted = ["qemu-system-x86", "cpio", ...(have("strip") ? [] : ["binutils"])];
  const missing = wanted.filter((p) => !installed(p));
  if (missing.length > 0) {
    const r = withUpdate(() => run("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env: APT_ENV, allowFail: true, log }), log);
    did(`apt-get install ${missing.join(" ")}`);
    if (!r.ok && !installed("qemu-system-x86")) return { skip: `QEMU could not be installed (apt-get install qemu-system-x86 failed; see ${log})` };
    if (!r.ok) throw new StepError(`apt-get install ${missing.join(" ")} failed (see ${log})`);
  }
  if (!have("qemu-system-x86_64")) return { skip: "qemu-system-x86_64 is not on PATH after installing qemu-system-x86" };
  t = performance.now();

  // 2. The kernel: the ONE package linux-image-amd64 names, cached by its name.
  //    Stale package lists may name a kernel the archive no longer has: then
  //    `apt-get update` and resolve the name again.
  let kernelStep = fetchKernel(cacheDir, log);
  if (!kernelStep.ok && !updated) {
    aptUpdate(log);
    kernelStep = fetchKernel(cacheDir, log);
  }
  if (!kernelStep.ok) throw new StepError(kernelStep.why);
  const { kernel, kpkg } = kernelStep;
  if (kernelStep.downloaded) did(`apt-get download ${kpkg}, vmlinuz extracted`);
  t = performance.now();

  // 3. busybox-static, cached.
  const busybox = join(cacheDir, "busybox", "busybox");
  if (!existsSync(busybox)) {
    let fetched = downloadAndExtractTo("busybox-static", "./bin/busybox", cacheDir, log);
    if (!fetched.ok && !updated) {
      aptUpdate(log);
      fetched = downloadAndExtractTo("busybox-static", "./bin/busybox", cacheDir, log);
    }
    if (!fetched.ok) throw new StepError(fetched.why);
    const { deb, tmp } = fetched;
    mkdirSync(join(cacheDir, "busybox"), { recursive: true });
    renameSync(join(tmp, "bin", "busybox"), busybox);
    rmSync(tmp, { recursive: true, force: true });
    rmSync(deb, { force: true });
    did("apt-get download busybox-static");
  }

  return { qemu: "qemu-system-x86_64", kernel, kernelPackage: kpkg, busybox, actions };
}

/** `apt-get download PKG` (that exact name) and extract the members matching `pattern`. */
export function downloadAndExtractTo(pkg, pattern, cacheDir, log) {
  const dl = join(cacheDir, "dl");
  rmSync(dl, { recursive: true, force: true });
  mkdirSync(dl, { recursive: true });
  const r = run("apt-get", ["download", pkg], { cwd: dl, env: APT_ENV, allowFail: true, log });
  if (!r.ok) return { ok: false, why: `apt-get download ${pkg} failed (see ${log})` };
  const deb = readdirSync(dl).find((f) => f.endsWith(".deb"));
  if (!deb) return { ok: false, why: `apt-get download ${pkg} left no .deb` };
  const tmp = mkdtempSync(join(cacheDir, "x-"));
  // Only the members needed: the kernel package also holds ~400 MB of modules.
  run("sh", ["-c", 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "$3"', "sh", join(dl, deb), tmp, pattern], { log });
  return { ok: true, deb: join(dl, deb), tmp };
}
