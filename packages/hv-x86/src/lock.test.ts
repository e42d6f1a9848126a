import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { isHeld, tryLock, type HeldLock, type LockTaken } from "./lock.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
/** util-linux's flock(1): a locker that writes no pid, for the /proc/locks answer. */
const FLOCK_COMMAND = "flock (util-linux)";
const hasFlockCommand = spawnSync("flock", ["--version"]).status === 0;
const folder = mkdtempSync(join(tmpdir(), "vmballoon-lock-"));
const DIST = fileURLToPath(new URL("../dist/index.js", import.meta.url));

/** A child process that runs `script` and prints a line when it holds the lock. */
function holder(command: string, args: string[]) {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (text: string) => text.includes("locked") && resolve());
    child.on("close", () => reject(new Error("the holder ended before it held the lock")));
  });
  const exited = new Promise<string | null>((resolve) => child.on("close", (_status, signal) => resolve(signal)));
  return { child, locked, exited };
}

describe.skipIf(!linuxX64)("tryLock: one owner, by flock (Linux x64)", () => {
  it("holds the lock and writes its pid; a second open file is refused and told the pid; a release frees it", () => {
    const file = join(folder, "same-process");
    const first = tryLock(file);
    expect(isHeld(first)).toBe(true);
    expect(readFileSync(file, "utf8")).toBe(`${process.pid}\n`);
    // flock locks an open file, not a process: a second open of the file conflicts, even here.
    const second = tryLock(file);
    expect(second).toStrictEqual({ path: file, ownerPid: process.pid });
    (first as HeldLock).release();
    const third = tryLock(file);
    expect(isHeld(third)).toBe(true);
    (third as HeldLock).release();
  });

  it("the lock dies with its owner: after a SIGKILL the next tryLock gets it", async () => {
    const file = join(folder, "killed");
    const script = `import { tryLock, isHeld } from ${JSON.stringify(DIST)}; if (isHeld(tryLock(${JSON.stringify(file)}))) console.log("locked"); setInterval(() => {}, 1 << 30);`;
    const owner = holder(process.execPath, ["--input-type=module", "-e", script]);
    await owner.locked;
    expect(tryLock(file)).toStrictEqual({ path: file, ownerPid: owner.child.pid });
    owner.child.kill("SIGKILL");
    expect(await owner.exited).toBe("SIGKILL");
    const next = tryLock(file);
    expect(isHeld(next)).toBe(true);
    expect(readFileSync(file, "utf8")).toBe(`${process.pid}\n`);
    (next as HeldLock).release();
  });

  it.skipIf(!hasFlockCommand)(`a holder that writes no pid is named by /proc/locks (needs ${FLOCK_COMMAND})`, async () => {
    const file = join(folder, "no-pid");
    const owner = holder("flock", ["-o", file, "-c", "echo locked; exec cat"]);
    await owner.locked;
    const taken = tryLock(file) as LockTaken;
    expect(taken).toStrictEqual({ path: file, ownerPid: owner.child.pid });
    owner.child.stdin.end();
    await owner.exited;
  });

  it("a lock file that cannot be opened throws Node's error", () => {
    expect(() => tryLock(join(folder, "missing", "lock"))).toThrow(expect.objectContaining({ code: "ENOENT" }));
  });
});
