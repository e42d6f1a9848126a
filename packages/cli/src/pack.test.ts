import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES } from "./cli-runner.js";

/**
 * The packages as a user gets them: each packed with `npm pack`, the six
 * tarballs installed into an empty folder outside the workspace, and the
 * program run there with npx. Their other dependencies (cac, koffi and its
 * binary for this platform, Plot, linkedom and theirs) come at the versions
 * of the workspace's lockfile, from npm's cache, with a registry that does
 * not exist: `npm test` needs no network once dependencies are installed.
 */

const PACKAGES = fileURLToPath(new URL("../../", import.meta.url));
const NAMES = ["protocol", "core", "stats", "host", "hv-x86", "cli"] as const;
const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

/** The environment without what `npm run`/turbo set for the workspace, so that npm acts as in a fresh shell. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("npm_") && key !== "INIT_CWD" && key !== "NO_COLOR" && key !== "FORCE_COLOR") env[key] = value;
  }
  // npx runs only what is installed here (never a download), quietly; npm
  // never asks a registry (offline, and the registry a closed local port).
  return {
    ...env,
    npm_config_yes: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    npm_config_update_notifier: "false",
    npm_config_offline: "true",
    npm_config_registry: "http://127.0.0.1:9/",
  };
}

interface Packed {
  readonly name: string;
  readonly filename: string;
  readonly files: readonly string[];
}

let scratch: string;
let app: string;
const packed: Packed[] = [];

interface LockEntry {
  readonly version?: string;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly link?: boolean;
  readonly [key: string]: unknown;
}

/** The registry npm installed the workspace from (its tarballs are in npm's cache under their URLs). */
const REGISTRY = execFileSync("npm", ["config", "get", "registry"], { cwd: tmpdir(), encoding: "utf8" }).trim().replace(/\/?$/, "/");

/** Where the registry serves a package's tarball (the lockfile leaves it out for the default registry). */
function registryTarball(path: string, entry: LockEntry): string {
  const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
  return `${REGISTRY}${name}/-/${name.split("/").pop()}-${entry.version}.tgz`;
}

/**
 * The lockfile of an app that depends on the six tarballs: our packages from
 * the tarballs, every other package exactly as the workspace's lockfile has
 * it (version, integrity; two versions of one package stay two, nested where
 * the workspace nests them). `npm ci` then takes each from npm's cache by its
 * integrity, with no registry: the packages a user would get, no network.
 */
function appLockfile(tarballOf: (name: string) => string): object {
  const root = JSON.parse(readFileSync(join(PACKAGES, "..", "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  const workspaces = new Map(NAMES.map((name) => [`packages/${name}`, (root.packages[`packages/${name}`] as { name: string }).name]));
  const packages: Record<string, LockEntry> = {};
  /** Where the app keeps what the workspace keeps at `path`. */
  const appPath = (path: string): string => {
    for (const [folder, name] of workspaces) {
      if (path === folder) return `node_modules/${name}`;
      if (path.startsWith(`${folder}/`)) return `node_modules/${name}/${path.slice(folder.length + 1)}`;
    }
    return path;
  };
  const visit = (path: string) => {
    const entry = root.packages[path]!;
    const name = workspaces.get(path);
    packages[appPath(path)] =
      name === undefined ? { ...entry, resolved: entry.resolved ?? registryTarball(path, entry) } : { ...entry, resolved: tarballOf(name) };
    const wanted = [...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {})];
    for (const dependency of wanted) {
      // Node's resolution over the lockfile's paths: the nearest node_modules up from the dependent.
      let at: string | undefined;
      for (let dir = path; at === undefined; dir = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/node_modules/")) : "") {
        const candidate = `${dir === "" ? "" : `${dir}/`}node_modules/${dependency}`;
        if (root.packages[candidate] !== undefined) at = candidate;
        else if (dir === "" || !dir.includes("/node_modules/")) {
          at = root.packages[`node_modules/${dependency}`] !== undefined ? `node_modules/${dependency}` : "";
        }
      }
      if (at === "") {
        if (entry.dependencies?.[dependency] !== undefined) throw new Error(`${path} depends on ${dependency}, which the lockfile does not have`);
        continue;
      }
      const target = root.packages[at]!.link ? (root.packages[at]!.resolved as string) : at;
      if (packages[appPath(target)] === undefined) visit(target);
    }
  };
  for (const name of NAMES) visit(`packages/${name}`);
  const dependencies = Object.fromEntries([...workspaces.values()].map((name) => [name, tarballOf(name)]));
  return { name: "vmballoon-pack-test", lockfileVersion: 3, requires: true, packages: { "": { name: "vmballoon-pack-test", dependencies }, ...packages } };
}

function run(command: string, args: readonly string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, env: cleanEnv(), encoding: "utf8", timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "vmballoon-pack-test-"));
  const tarballs = join(scratch, "tarballs");
  mkdirSync(tarballs);
  for (const name of NAMES) {
    const out = execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", tarballs], {
      cwd: join(PACKAGES, name),
      env: cleanEnv(),
      encoding: "utf8",
    });
    const [info] = JSON.parse(out) as { name: string; filename: string; files: { path: string }[] }[];
    packed.push({ name: info!.name, filename: join(tarballs, info!.filename), files: info!.files.map((file) => file.path) });
  }
  app = join(scratch, "app");
  mkdirSync(app);
  const tarballOf = (name: string) => `file:${packed.find((p) => p.name === name)!.filename}`;
  const lock = appLockfile(tarballOf) as { packages: { "": { dependencies: Record<string, string> } } };
  writeFileSync(
    join(app, "package.json"),
    `${JSON.stringify({ name: "vmballoon-pack-test", private: true, dependencies: lock.packages[""].dependencies }, null, 2)}\n`,
  );
  writeFileSync(join(app, "package-lock.json"), `${JSON.stringify(lock, null, 2)}\n`);
  const install = run("npm", ["ci", "--offline", "--no-audit", "--no-fund"], app);
  if (install.status !== 0) throw new Error(`npm ci of the tarballs failed:\n${install.stderr}`);
}, 300_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("the packed packages", () => {
  it("are six tarballs with their built code and types, and no sources or tests", () => {
    expect(packed.map((p) => p.name)).toEqual([
      "@vmballoon/protocol",
      "@vmballoon/core",
      "@vmballoon/stats",
      "@vmballoon/host",
      "@vmballoon/hv-x86",
      "vmballoon",
    ]);
    for (const p of packed) {
      expect(p.files).toContain("package.json");
      expect(p.files.some((file) => file.startsWith("dist/") && file.endsWith(".js"))).toBe(true);
      if (p.name !== "vmballoon") expect(p.files).toContain("dist/index.d.ts");
      expect(p.files.filter((file) => file.startsWith("src/") || /\.test\./.test(file))).toEqual([]);
    }
  });

  it("vmballoon carries the exporter's systemd unit, which its README tells how to install", () => {
    expect(packed.find((p) => p.name === "vmballoon")!.files).toContain("contrib/vmballoon-exporter.service");
  });

  it("each carry a README", () => {
    for (const p of packed) expect([p.name, p.files.includes("README.md")]).toEqual([p.name, true]);
  });

  it("ship no benchmarks, tests, test helpers or builds of ambient declarations", () => {
    for (const p of packed) expect(p.files.filter((file) => /bench|test|\.d\.d\.ts$/.test(file))).toEqual([]);
  });
});

describe("installed from the tarballs into an empty folder", () => {
  it("npx vmballoon --version prints the version", () => {
    const result = run("npx", ["vmballoon", "--version"], app);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`vmballoon/${version}`);
  });

  it("npx vmballoon simulate runs the built-in scenario and prints the debugfs text", () => {
    const result = run("npx", ["vmballoon", "simulate"], app);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^target: +\d+ pages\ncurrent: +\d+ pages\n/);
  });

  it("npx vmballoon stats reads a vmmemctl file", () => {
    const file = join(FIXTURES, "debugfs", "modern-busy.txt");
    const result = run("npx", ["vmballoon", "stats", "--file", file, "--format", "debugfs"], app);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(readFileSync(file, "utf8"));
  });

  it("import '@vmballoon/protocol' works from an ES module", () => {
    const result = run(
      process.execPath,
      ["--input-type=module", "-e", "import { HV_PORT, COMMANDS } from '@vmballoon/protocol'; console.log(HV_PORT, COMMANDS.LOCK)"],
      app,
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("22128 2\n");
  });

  it.skipIf(process.platform !== "linux" || process.arch !== "x64")(
    "import '@vmballoon/hv-x86' loads koffi's binary, installed offline, and reads CPUID (needs Linux on x86-64)",
    () => {
      const script = "import { cpuid, nativeAvailable } from '@vmballoon/hv-x86'; console.log(nativeAvailable(), cpuid(0).eax > 0)";
      const result = run(process.execPath, ["--input-type=module", "-e", script], app);
      expect(result.stderr).toBe("");
      expect(result.stdout).toBe("true true\n");
    },
  );

  it("import '@vmballoon/stats' parses and formats", () => {
    const file = join(FIXTURES, "debugfs", "seed-signed.txt");
    const script = `import { readFileSync } from 'node:fs'; import { parse, format } from '@vmballoon/stats';
      const text = readFileSync(${JSON.stringify(file)}, 'utf8'); const r = parse(text); console.log(r.layout, r.target, format(r) === text)`;
    const result = run(process.execPath, ["--input-type=module", "-e", script], app);
    expect(result.stdout).toBe("seed 2147483648 true\n");
  });
});
