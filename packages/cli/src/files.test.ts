import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { EXIT } from "./errors.js";
import { BIN, FIXTURES, STACK, vmballoon } from "./cli-runner.js";
import { OutputFile, stagingFor, writeAtomically } from "./files.js";

const scratch = mkdtempSync(join(tmpdir(), "vmballoon-files-test-"));
afterAll(() => {
  // The small tmpfs (below) first, or the scratch folder could not be removed.
  if (canMount) spawnSync("umount", [SMALL_TMPFS]);
  rmSync(scratch, { recursive: true, force: true });
});
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
    expect(leftovers()).toStrictEqual([]);
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
    expect(stagingFor(device)).toStrictEqual({ final: device, temporary: undefined, descriptor: undefined });
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

  it.each([["stats", "--file", sample], ["simulate"], ["detect", "--json"], ["--help"]])(
    "stdout on a full disk (vmballoon %s …): exit 1, one line, no stack trace",
    (...args) => {
      const fd = openSync(full!, "w");
      try {
        const run = spawnSync(process.execPath, [BIN, ...args], { stdio: ["ignore", fd, "pipe"], encoding: "utf8", timeout: 60_000 });
        expect(run.stderr).toBe("vmballoon: cannot write to stdout: no space left on device\n");
        expect(run.stderr).not.toMatch(STACK);
        expect(run.status).toBe(EXIT.FAILURE);
      } finally {
        closeSync(fd);
      }
    },
  );
});

describe.skipIf(!canMakeDevices)("run --json with stdout on a full disk (needs mknod: root with CAP_MKNOD)", () => {
  it("goes on ballooning, says so in one line, and exits 1 after unloading on SIGTERM", async () => {
    const fd = openSync(makeDevice("full-for-run", 7), "w");
    try {
      const lock = join(scratch, "run.lock");
      const child = spawn(process.execPath, [BIN, "run", "--host", "simulated", "--target", "100", "--interval", "20ms", "--json", "--lock-file", lock], {
        stdio: ["ignore", fd, "pipe"],
      });
      // Never left running: killed when the test ends, however it ends.
      onTestFinished(() => void child.kill("SIGKILL"));
      const status = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
      // The event: the line about stdout, written when the first record failed; the run goes on after it.
      let stderr = "";
      await new Promise<void>((resolve) => {
        child.stderr!.on("data", (chunk) => {
          stderr += chunk;
          if (stderr.endsWith("\n")) resolve();
        });
        void status.then(() => resolve());
      });
      expect(child.exitCode).toBe(null);
      child.kill("SIGTERM");
      expect(await status).toBe(EXIT.FAILURE);
      expect(stderr).toBe("vmballoon: cannot write to stdout: no space left on device\n");
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
    expect(JSON.parse(lines[0]!)).toStrictEqual({ t: "cmd", cycle: 0, cmd: "START", arg: 2, status: 0, result: 0 });
    const exit = lines.findIndex((line) => line.startsWith('{"t":"exit"'));
    expect(exit).toBeGreaterThan(0);
    // After the trace's last record, the debugfs text that the trace itself records.
    const debugfs = lines.map((line) => (line.startsWith('{"t":"debugfs"') ? JSON.parse(line).text : undefined)).find(Boolean);
    expect(debugfs).toMatch(/^target: +25600 pages\n/);
    expect(lines.slice(exit + 1).join("\n")).toBe(debugfs);
  });
});

/** What a call threw: its message and exit status (a CliError's), or a failure of the test when it did not throw. */
function thrown(call: () => unknown): { message: string; exitStatus: unknown } {
  try {
    call();
  } catch (error) {
    return { message: (error as Error).message, exitStatus: (error as { exitStatus?: unknown }).exitStatus };
  }
  throw new Error("expected a throw");
}

describe("the write path: one helper (OutputFile) for --trace, stats --output and run --stats-file", () => {
  const text = readFileSync(sample, "utf8");

  it.each([
    ["a part of the path is a file (ENOTDIR)", (dir: string) => join(dir, "a-file", "x.prom"), "a part of the path is not a directory", EXIT.USAGE],
    ["the target is a directory (EISDIR)", (dir: string) => dir, "is a directory", EXIT.USAGE],
    ["the folder is missing (ENOENT)", (dir: string) => join(dir, "missing", "x.prom"), "no such file or directory", EXIT.USAGE],
  ])("%s: one line, the documented status, nothing created", (_what, target, why, status) => {
    const dir = mkdtempSync(join(scratch, "case-"));
    writeFileSync(join(dir, "a-file"), "");
    const file = target(dir);
    expect(thrown(() => writeAtomically(file, "x\n", "write"))).toStrictEqual({ message: `cannot write ${file}: ${why}`, exitStatus: status });
    expect(readdirSync(dir)).toStrictEqual(["a-file"]);
    for (const [args, doing] of [
      [["stats", "--file", sample, "--output", file], "write"],
      [["simulate", "--trace", file], "write the trace to"],
    ] as const) {
      const run = vmballoon(args);
      expect(run.stderr).toBe(`vmballoon: cannot ${doing} ${file}: ${why}\n`);
      expect(run.stdout).toBe("");
      expect(run.status).toBe(status);
    }
    expect(readdirSync(dir)).toStrictEqual(["a-file"]);
  });

  it("stats --output /etc/hostname/x (the issue's case): one line, exit 2", () => {
    const run = vmballoon(["stats", "--file", sample, "--output", "/etc/hostname/x"]);
    expect(run.stderr).toBe("vmballoon: cannot write /etc/hostname/x: a part of the path is not a directory\n");
    expect(run.status).toBe(EXIT.USAGE);
  });

  // As root, a folder's mode does not stop a write: the CLI runs as nobody
  // there; as anyone else, as that user, against a folder they cannot write.
  it("a folder that is not writable (EACCES): exit 77, one line, the old file untouched", () => {
    const dir = mkdtempSync(join(scratch, "locked-"));
    const file = join(dir, "vmballoon.prom");
    writeFileSync(file, "old\n");
    chmodSync(dir, 0o555);
    chmodSync(scratch, 0o755);
    const asUser = process.getuid?.() === 0 ? { uid: 65534 } : {};
    try {
      for (const [args, doing] of [
        [["stats", "--file", "-", "--output", file], "write"],
        [["simulate", "--trace", file], "write the trace to"],
      ] as const) {
        const run = vmballoon(args, { input: text, ...asUser });
        expect(run.stderr).toBe(`vmballoon: cannot ${doing} ${file}: permission denied\n`);
        expect(run.status).toBe(EXIT.NO_PERMISSION);
      }
      expect(readFileSync(file, "utf8")).toBe("old\n");
      expect(readdirSync(dir)).toStrictEqual(["vmballoon.prom"]);
    } finally {
      chmodSync(dir, 0o755);
      chmodSync(scratch, 0o700);
    }
  });

  it("a FIFO is written in place, to its reader, and stays a FIFO", async () => {
    const fifo = join(scratch, "fifo");
    const made = spawnSync("mkfifo", [fifo], { encoding: "utf8" });
    expect(made.stderr).toBe("");
    const reader = spawn("cat", [fifo], { stdio: ["ignore", "pipe", "pipe"] });
    // Never left running: killed when the test ends, however it ends.
    onTestFinished(() => void reader.kill("SIGKILL"));
    let read = "";
    reader.stdout.on("data", (chunk) => (read += chunk));
    const readerDone = new Promise<number | null>((resolve) => reader.on("close", (code) => resolve(code)));
    const writer = spawn(process.execPath, [BIN, "stats", "--file", sample, "--format", "debugfs", "--output", fifo], { stdio: ["ignore", "pipe", "pipe"] });
    // Never left running: killed when the test ends, however it ends.
    onTestFinished(() => void writer.kill("SIGKILL"));
    let stderr = "";
    writer.stderr.on("data", (chunk) => (stderr += chunk));
    const status = await new Promise<number | null>((resolve) => writer.on("close", (code) => resolve(code)));
    expect(await readerDone).toBe(0);
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect(read).toBe(text);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(leftovers()).toStrictEqual([]);
  });

  it("stats --output on the file stdout is open on writes through stdout, and the link stays a link", () => {
    const stdoutLink = join(scratch, "stdout-for-stats");
    symlinkSync("/proc/self/fd/1", stdoutLink);
    const out = join(scratch, "stats-stdout.txt");
    writeFileSync(out, "");
    const fd = openSync(out, "a");
    try {
      const run = spawnSync(process.execPath, [BIN, "stats", "--file", sample, "--format", "debugfs", "--output", stdoutLink], {
        stdio: ["ignore", fd, "pipe"],
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(out, "utf8")).toBe(text);
    expect(lstatSync(stdoutLink).isSymbolicLink()).toBe(true);
  });

  it("abandon() removes the temporary file and leaves the old one; a stale temporary file of the same name is replaced, not followed", () => {
    const file = join(scratch, "abandoned.prom");
    writeFileSync(file, "old\n");
    // A link planted where the temporary file goes must not be written through.
    const planted = join(scratch, "planted-target");
    symlinkSync(planted, `${file}.${process.pid}.tmp`);
    const output = OutputFile.open(file, "write");
    expect(output.write("half")).toBe(true);
    expect(lstatSync(`${file}.${process.pid}.tmp`).isFile()).toBe(true);
    output.abandon();
    expect(readFileSync(file, "utf8")).toBe("old\n");
    expect(existsSync(planted)).toBe(false);
    expect(leftovers()).toStrictEqual([]);
  });
});

// A full file system, for real: a tmpfs of 16 KiB mounted in the scratch
// folder for these tests and unmounted after them.
const SMALL_TMPFS = join(scratch, "small-tmpfs");
const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  mkdirSync(SMALL_TMPFS);
  return spawnSync("mount", ["-t", "tmpfs", "-o", "size=16k,mode=0755", "tmpfs", SMALL_TMPFS]).status === 0;
})();

describe.skipIf(!canMount)("a full file system (ENOSPC, a 16 KiB tmpfs; needs root to mount)", () => {
  it.each([
    [["stats", "--file", sample, "--format", "prometheus", "--output", "FILE"], "write"],
    [["simulate", "--trace", "FILE"], "write the trace to"],
  ])("vmballoon %j: exit 1, one line, the old file whole and no temporary file left", (args, doing) => {
    const file = join(SMALL_TMPFS, "target");
    // Every page of the 16 KiB taken by the old file: it stays, and the new one cannot be written beside it.
    writeFileSync(file, "o".repeat(13 * 1024));
    const run = vmballoon(args.map((arg) => (arg === "FILE" ? file : arg)));
    expect(run.stderr).toBe(`vmballoon: cannot ${doing} ${file}: no space left on device\n`);
    expect(run.status).toBe(EXIT.FAILURE);
    expect(readFileSync(file, "utf8")).toBe("o".repeat(13 * 1024));
    expect(readdirSync(SMALL_TMPFS)).toStrictEqual(["target"]);
  });
});
