import { spawn, spawnSync } from "node:child_process";
import { closeSync, lstatSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT } from "./errors.js";
import { BIN, FIXTURES, STACK, vmballoon } from "./cli-runner.js";
import { stagingFor, writeAtomically } from "./files.js";

const scratch = mkdtempSync(join(tmpdir(), "vmballoon-files-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const sample = join(FIXTURES, "debugfs", "seed-typical.txt");
const leftovers = () => readdirSync(scratch).filter((name) => name.endsWith(".tmp"));

// Devices and /dev/stdout, for real but never the system's own: a mistake
// here would rename a file over them. Device nodes (mknod) need root and
// CAP_MKNOD; where they cannot be made, the tests that need one are skipped.
function makeDevice(name: string, minor: number): string {
  const path = join(scratch, name);
  const made = spawnSync("mknod", ["-m", "666", path, "c", "1", String(minor)], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`mknod ${path}: ${made.stderr}`);
  return path;
}
const canMakeDevices = (() => {
  try {
    closeSync(openSync(makeDevice("probe-null", 3), "w"));
    return true;
  } catch {
    return false;
  }
})();

describe("writeAtomically", () => {
  it("renames a whole new file over the old one, through a symbolic link that stays a link", () => {
    const real = join(scratch, "real.prom");
    const link = join(scratch, "link.prom");
    writeFileSync(real, "old\n");
    symlinkSync("real.prom", link);
    const before = statSync(real).ino;
    writeAtomically(link, "new\n", "write");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, "utf8")).toBe("new\n");
    expect(statSync(real).ino).not.toBe(before);
    expect(leftovers()).toEqual([]);
  });

  it("creates the target of a dangling link, and keeps the link", () => {
    const link = join(scratch, "dangling.prom");
    symlinkSync("made-by-the-write.prom", link);
    writeAtomically(link, "made\n", "write");
    expect(readlinkSync(link)).toBe("made-by-the-write.prom");
    expect(readFileSync(join(scratch, "made-by-the-write.prom"), "utf8")).toBe("made\n");
  });

  it.skipIf(!canMakeDevices)("writes a device in place: a /dev/null node stays a device (needs mknod: root with CAP_MKNOD)", () => {
    const device = makeDevice("null", 3);
    expect(stagingFor(device)).toEqual({ final: device, temporary: undefined, descriptor: undefined });
    writeAtomically(device, "gone\n", "write");
    expect(statSync(device).isCharacterDevice()).toBe(true);
  });
});

describe.skipIf(!canMakeDevices)("a full disk: a /dev/full node, char 1:7 (needs mknod: root with CAP_MKNOD)", () => {
  const full = canMakeDevices ? makeDevice("full", 7) : undefined;

  it.each([
    [["stats", "--file", sample, "--output", "FULL"], "vmballoon: cannot write FULL: no space left on device\n"],
    [["simulate", "--trace", "FULL"], "vmballoon: cannot write the trace to FULL: no space left on device\n"],
  ])("vmballoon %j: exit 1, one line, and the device is still a device", (args, message) => {
    const run = vmballoon(args.map((arg) => (arg === "FULL" ? full! : arg)));
    expect(run.stderr).toBe(message.replace("FULL", full!));
    expect(run.status).toBe(EXIT.FAILURE);
    expect(statSync(full!).isCharacterDevice()).toBe(true);
  });

  it.each([["stats", "--file", sample], ["simulate"], ["detect", "--json"], ["--help"]])("stdout on a full disk (vmballoon %s …): exit 1, one line, no stack trace", (...args) => {
    const fd = openSync(full!, "w");
    try {
      const run = spawnSync(process.execPath, [BIN, ...args], { stdio: ["ignore", fd, "pipe"], encoding: "utf8", timeout: 60_000 });
      expect(run.stderr).toBe("vmballoon: cannot write to stdout: no space left on device\n");
      expect(run.stderr).not.toMatch(STACK);
      expect(run.status).toBe(EXIT.FAILURE);
    } finally {
      closeSync(fd);
    }
  });
});

describe.skipIf(!canMakeDevices)("run --json with stdout on a full disk (needs mknod: root with CAP_MKNOD)", () => {
  it("goes on ballooning, says so in one line, and exits 1 after unloading on SIGTERM", async () => {
    const fd = openSync(makeDevice("full-for-run", 7), "w");
    try {
      const child = spawn(process.execPath, [BIN, "run", "--host", "simulated", "--target", "100", "--interval", "100ms", "--json"], { stdio: ["ignore", fd, "pipe"] });
      let stderr = "";
      child.stderr!.on("data", (chunk) => (stderr += chunk));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      child.kill("SIGTERM");
      const status = await new Promise((resolve) => child.on("exit", (code) => resolve(code)));
      expect(stderr).toBe("vmballoon: cannot write to stdout: no space left on device\n");
      expect(status).toBe(EXIT.FAILURE);
    } finally {
      closeSync(fd);
    }
  });
});

describe("--trace /dev/stdout", () => {
  it("into a file: the trace, then the debugfs text, neither written over the other", () => {
    // What /dev/stdout is on Linux, made in the scratch folder.
    const stdoutLink = join(scratch, "stdout");
    symlinkSync("/proc/self/fd/1", stdoutLink);
    const out = join(scratch, "stdout.txt");
    const fd = openSync(out, "w");
    try {
      const run = spawnSync(process.execPath, [BIN, "simulate", "--trace", stdoutLink], { stdio: ["ignore", fd, "pipe"], encoding: "utf8", timeout: 60_000 });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
    } finally {
      closeSync(fd);
    }
    const lines = readFileSync(out, "utf8").split("\n"); 
    expect(JSON.parse(lines[0]!)).toEqual({ t: "cmd", cycle: 0, cmd: "START", arg: 2, status: 0, result: 0 });
    const exit = lines.findIndex((line) => line.startsWith('{"t":"exit"'));
    expect(exit).toBeGreaterThan(0);
    // After the trace's last record, the debugfs text that the trace itself records.
    const debugfs = lines.map((line) => (line.startsWith('{"t":"debugfs"') ? JSON.parse(line).text : undefined)).find(Boolean);
    expect(debugfs).toMatch(/^target: +25600 pages\n/);
    expect(lines.slice(exit + 1).join("\n")).toBe(debugfs);
  });
});
