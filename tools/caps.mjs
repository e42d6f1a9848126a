#!/usr/bin/env node
// The capability fingerprint of this machine: what the test suite can and
// cannot do here (root or not, the capabilities the process holds, which
// tools exist, whether device nodes can be made, memfd_secret, the kernel's
// balloon driver, VMware or not, CI). Tests skip on these, so a test result
// is only true for machines with the same fingerprint: turbo's root task
// `caps` writes it to .caps.json before any test task runs, and the test
// tasks hash that file (turbo.json: a "jit" input, hashed once `caps` is done).
//
//   node tools/caps.mjs               the fingerprint (a short hash)
//   node tools/caps.mjs --json        what it is made of
//   node tools/caps.mjs --write FILE  both, into FILE (turbo's `caps` task)
//   node tools/caps.mjs -- CMD...     runs CMD with VMBALLOON_CAPS set
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { delimiter, join, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The tools some test (or `npm run test:vm`) needs; named in the fingerprint and in the skip report. */
export const TOOLS = ["promtool", "prometheus", "chromium", "qemu-system-x86_64", "python3", "script", "mknod"];

const pathDirs = () => (process.env.PATH ?? "").split(delimiter).filter((dir) => dir && !dir.split(sep).includes("node_modules"));

function onPath(tool) {
  for (const dir of pathDirs()) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      if (statSync(join(dir, tool)).isFile()) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/**
 * Every executable name on PATH (outside node_modules, which the lockfile
 * already keys), hashed: a tool installed later that some future test skips
 * on changes the fingerprint too, without a line here.
 */
function pathHash() {
  const names = new Set();
  for (const dir of pathDirs()) {
    try {
      for (const name of readdirSync(dir)) names.add(name);
    } catch {
      // a PATH entry that does not exist
    }
  }
  return createHash("sha256")
    .update([...names].sort().join("\n"))
    .digest("hex")
    .slice(0, 16);
}

function canMknod() {
  if (process.platform !== "linux") return false;
  const dir = mkdtempSync(join(tmpdir(), "vmballoon-caps-"));
  try {
    return spawnSync("mknod", ["-m", "666", join(dir, "null"), "c", "1", "3"], { stdio: "ignore" }).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** memfd_secret(2) (x86-64 syscall 447): needs CONFIG_SECRETMEM and, before Linux 6.5, secretmem.enable=1. */
function hasMemfdSecret() {
  if (process.platform !== "linux" || process.arch !== "x64") return false;
  try {
    const koffi = createRequire(import.meta.url)("koffi");
    const libc = koffi.load("libc.so.6");
    const syscall = libc.func("long syscall(long number, ...)");
    const close = libc.func("int close(int fd)");
    const fd = Number(syscall(447, "unsigned int", 0));
    if (fd < 0) return false;
    close(fd);
    return true;
  } catch {
    return false;
  }
}

/** CapEff of this process (all ones for root in most containers; less where capabilities were dropped). */
function effectiveCapabilities() {
  try {
    return /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "none";
  } catch {
    return "none";
  }
}

function dmiVendor() {
  try {
    return readFileSync("/sys/class/dmi/id/sys_vendor", "utf8").trim();
  } catch {
    return "unknown";
  }
}

/** What the fingerprint is made of. */
export function capabilities() {
  return {
    platform: `${process.platform}-${process.arch}`,
    node: process.versions.node.split(".")[0],
    root: typeof process.geteuid === "function" && process.geteuid() === 0,
    capEff: effectiveCapabilities(),
    ci: process.env.CI === "true" || process.env.CI === "1",
    tools: Object.fromEntries(TOOLS.map((tool) => [tool, onPath(tool)])),
    mknod: canMknod(),
    memfdSecret: hasMemfdSecret(),
    vmmemctl: existsSync("/sys/kernel/debug/vmmemctl"),
    vendor: dmiVendor(),
    path: pathHash(),
  };
}

export function fingerprint(caps = capabilities()) {
  return createHash("sha256").update(JSON.stringify(caps)).digest("hex").slice(0, 16);
}

/** One line for people: what this machine lacks, for the skip report. */
export function missing(caps = capabilities()) {
  const lacks = [];
  if (!caps.root) lacks.push("root");
  for (const [tool, present] of Object.entries(caps.tools)) if (!present) lacks.push(tool);
  if (!caps.mknod) lacks.push("mknod permission");
  if (!caps.memfdSecret) lacks.push("memfd_secret");
  return lacks;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const caps = capabilities();
  if (args[0] === "--write" && args[1]) {
    writeFileSync(args[1], `${JSON.stringify({ fingerprint: fingerprint(caps), ...caps }, null, 2)}\n`);
  } else if (args[0] === "--json") {
    process.stdout.write(`${JSON.stringify({ fingerprint: fingerprint(caps), ...caps }, null, 2)}\n`);
  } else if (args[0] === "--") {
    if (args.length < 2) {
      process.stderr.write("caps: nothing to run after --\n");
      process.exit(2);
    }
    const child = spawnSync(args[1], args.slice(2), { stdio: "inherit", env: { ...process.env, VMBALLOON_CAPS: fingerprint(caps) } });
    if (child.error) {
      process.stderr.write(`caps: ${args[1]}: ${child.error.message}\n`);
      process.exit(1);
    }
    process.exit(child.status ?? 1);
  } else {
    process.stdout.write(`${fingerprint(caps)}\n`);
  }
}
