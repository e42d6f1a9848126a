/*
 * The frame promise, tried from outside the process: a child process holds a
 * balloon of 1 GiB (the real page source behind the reference monitor), another
 * fragments memory (touches 2 GiB, then MADV_DONTNEED every other page), and
 * the kernel is made to compact memory; then, for a migration that does not
 * depend on where the free memory happens to lie, the memory block holding
 * most of the balloon is taken offline and back online (which migrates every
 * movable page out of it). Then every frame the monitor holds as LOCKed is
 * compared with the frames the child really has locked, read from its
 * /proc/PID/smaps and /proc/PID/pagemap by this process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { balloonFramesOf, lockedFramesOf } from "./locked-frames.js";
import { native, SYS_MEMFD_SECRET } from "./native.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const root = typeof process.geteuid === "function" && process.geteuid() === 0;
const secretMemory = linuxX64 && native().libc.syscall1(SYS_MEMFD_SECRET, 0) >= 0;
/** Whether io_uring is allowed here (kernel.io_uring_disabled, 6.6+, is 0 or absent). */
const ringAllowed =
  linuxX64 && (!existsSync("/proc/sys/kernel/io_uring_disabled") || readFileSync("/proc/sys/kernel/io_uring_disabled", "utf8").trim() === "0");
/** Memory blocks that can be taken offline (memory hotplug), for a migration on demand. */
const hotplug = root && existsSync("/sys/devices/system/memory/block_size_bytes");
const PACKAGE = fileURLToPath(new URL("..", import.meta.url));
const DIST = fileURLToPath(new URL("../dist/", import.meta.url));
const BALLOON_PAGES = 262_144; // 1 GiB

/** The child that holds the balloon: says `ready`, then answers `dump` (the monitor's LOCKed frames, to a file) and `check`. */
const BALLOON_CHILD = `
import { createInterface } from "node:readline";
import { writeFileSync } from "node:fs";
import { LinuxPageSource } from ${JSON.stringify(join(DIST, "index.js"))};
import { Balloon } from "@vmballoon/core";
import { SimMonitor } from "@vmballoon/core/sim";
import { native } from ${JSON.stringify(join(DIST, "native.js"))};
const [memory, target, dumpFile] = process.argv.slice(1);
const source = LinuxPageSource.open({ memory: memory || undefined, onLimit: (message) => process.stderr.write(message + "\\n") });
const monitor = new SimMonitor({ firstPfn: 0, frames: source.frameLimit(), totalPages: source.totalPages() });
const balloon = new Balloon(monitor, source);
if (!balloon.init()) throw new Error("init");
monitor.target = Number(target);
while (balloon.snapshot().size < Number(target)) { balloon.work(); source.releaseIdle(); }
const say = (record) => process.stdout.write(JSON.stringify(record) + "\\n");
say({ t: "ready", size: balloon.snapshot().size, memory: source.memory });
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "dump") {
    const frames = [];
    for (let frame = 0, limit = source.frameLimit(); frame < limit; frame++) if (monitor.isLocked(frame)) frames.push(frame);
    writeFileSync(dumpFile, new Uint32Array(frames));
    say({ t: "dumped", count: frames.length, size: balloon.snapshot().size });
  } else if (line === "fork") {
    // A fork of this process; then this process writes every page of its chunks (copy-on-write would move any page the child shares).
    const { koffi, libc } = native();
    const lib = koffi.load("libc.so.6");
    const fork = lib.func("int fork()");
    const pid = fork();
    if (pid === 0) {
      lib.func("int usleep(unsigned int)")(500000);
      lib.func("void _exit(int)")(0);
    }
    const zero = (await import("node:fs")).openSync("/dev/zero", "r");
    let written = 0;
    for (const chunk of source.table.chunks) {
      if (chunk === undefined) continue;
      for (let slot = 0; slot < chunk.bump; slot++) if (chunk.state[slot] === 1 && libc.read(zero, chunk.address + slot * 4096, 4096) === 4096) written++;
    }
    lib.func("int waitpid(int, void *, int)")(pid, null, 0);
    say({ t: "forked", child: pid, written });
  } else if (line === "check") {
    const check = balloon.checkFrames();
    source.releaseIdle();
    say({ t: "checked", ...check, scans: source.frameScans });
  }
}
`;

/** The child that fragments memory: touches 2 GiB, gives back every other page, says `fragmented`, and holds the rest until stdin ends. */
const FRAGMENTER_CHILD = `
import { openSync } from "node:fs";
import { native } from ${JSON.stringify(join(DIST, "native.js"))};
const { libc } = native();
const size = 2 * 2 ** 30;
const address = libc.mmap(0, size, 3, 0x22, -1, 0);
if (address === -1) throw new Error("mmap");
const zero = openSync("/dev/zero", "r");
for (let offset = 0; offset < size; offset += 2 ** 28) if (libc.read(zero, address + offset, 2 ** 28) !== 2 ** 28) throw new Error("touch");
for (let offset = 0; offset < size; offset += 8192) libc.madvise(address + offset, 4096, 4);
process.stdout.write("fragmented\\n");
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
`;

/** A child process whose stdout lines are read as they come. */
class Child {
  readonly process: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private buffered = "";
  private waiters: (() => void)[] = [];
  stderr = "";

  constructor(script: string, args: string[]) {
    this.process = spawn(process.execPath, ["--input-type=module", "-e", script, ...args], { cwd: PACKAGE });
    this.process.stdout.setEncoding("utf8").on("data", (text: string) => {
      this.buffered += text;
      let newline: number;
      while ((newline = this.buffered.indexOf("\n")) !== -1) {
        this.lines.push(this.buffered.slice(0, newline));
        this.buffered = this.buffered.slice(newline + 1);
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.process.stderr.setEncoding("utf8").on("data", (text: string) => (this.stderr += text));
    this.process.on("close", () => {
      for (const wake of this.waiters.splice(0)) wake();
    });
    children.push(this);
  }

  /** The next line, waited for (an event, not a time); throws if the child ends first. */
  async line(): Promise<string> {
    while (this.lines.length === 0) {
      if (this.process.exitCode !== null || this.process.signalCode !== null) throw new Error(`the child ended; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.lines.shift()!;
  }

  async ask(command: string): Promise<Record<string, number>> {
    this.process.stdin.write(`${command}\n`);
    return JSON.parse(await this.line());
  }
}

const children: Child[] = [];
const folder = mkdtempSync(join(tmpdir(), "vmballoon-compaction-"));
const sysctlsToRestore = new Map<string, string>();

function setSysctl(name: string, value: string): void {
  const path = `/proc/sys/${name.includes("/") ? name : `vm/${name}`}`;
  if (!sysctlsToRestore.has(path)) sysctlsToRestore.set(path, readFileSync(path, "utf8").trim());
  writeFileSync(path, value);
}

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) {
      const closed = new Promise((resolve) => child.process.on("close", resolve));
      child.process.kill("SIGKILL");
      await closed;
    }
  }
  for (const [path, value] of sysctlsToRestore) writeFileSync(path, value);
  sysctlsToRestore.clear();
  // A block left offline by a failed test goes back online.
  for (const block of blocksOnline) {
    const state = `${MEMORY_BLOCKS}/memory${block}/state`;
    if (readFileSync(state, "utf8").trim() === "offline") writeFileSync(state, "online");
  }
  blocksOnline.clear();
});

/** How many frames the monitor holds as LOCKed that the child does not have locked: frames the host was told wrongly. */
async function mismatches(balloon: Child, dumpFile: string): Promise<{ locked: number; size: number; stale: number }> {
  const dumped = await balloon.ask("dump");
  const held = balloonFramesOf(balloon.process.pid!);
  const bytes = readFileSync(dumpFile);
  const locked = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  expect(locked.length).toBe(dumped.count);
  let stale = 0;
  for (const frame of locked) if (!held.has(frame)) stale++;
  rmSync(dumpFile, { force: true });
  return { locked: locked.length, size: dumped.size!, stale };
}

const MEMORY_BLOCKS = "/sys/devices/system/memory";
const blockPages = existsSync(`${MEMORY_BLOCKS}/block_size_bytes`) ? Number.parseInt(readFileSync(`${MEMORY_BLOCKS}/block_size_bytes`, "utf8"), 16) / 4096 : 0;
const blocksOnline = new Set<number>();

/**
 * Takes the memory blocks holding most of the child's locked frames offline,
 * each back online at once: the kernel migrates every movable page out of a
 * block it offlines, and refuses (EBUSY) when one cannot move. Returns what
 * happened to each block tried (at most `tries`, until one goes offline).
 */
function offlineAndOnline(pid: number, tries: number): string[] {
  const count = new Map<number, number>();
  for (const frame of lockedFramesOf(pid)) count.set(Math.floor(frame / blockPages), (count.get(Math.floor(frame / blockPages)) ?? 0) + 1);
  const outcomes: string[] = [];
  for (const [block] of [...count].sort((a, b) => b[1] - a[1]).slice(0, tries)) {
    const state = `${MEMORY_BLOCKS}/memory${block}/state`;
    try {
      blocksOnline.add(block);
      writeFileSync(state, "offline");
    } catch (error) {
      outcomes.push((error as NodeJS.ErrnoException).code ?? "error");
      continue;
    }
    writeFileSync(state, "online");
    blocksOnline.delete(block);
    outcomes.push("offlined");
    break;
  }
  return outcomes;
}

/** The kernel's count of migrated pages (pgmigrate_success). */
function migrated(): number {
  return Number(/^pgmigrate_success (\d+)$/m.exec(readFileSync("/proc/vmstat", "utf8"))?.[1] ?? 0);
}

async function fragmentAndCompact(rounds: number): Promise<void> {
  const fragmenter = new Child(FRAGMENTER_CHILD, []);
  expect(await fragmenter.line()).toBe("fragmented");
  for (let round = 0; round < rounds; round++) writeFileSync("/proc/sys/vm/compact_memory", "1");
}

describe.skipIf(!linuxX64 || !root)("the frame promise under fragmentation and compaction, from outside the process (needs root: pagemap, sysctls)", () => {
  it.skipIf(!ringAllowed)(
    "pinned memory (the default): after compaction x5 beside a fragmenter and a fork with writes in the parent, every frame the host holds is one of the child's ballooned pages, and the frame check finds none moved (needs io_uring)",
    async () => {
      setSysctl("compact_unevictable_allowed", "1");
      const dump = join(folder, "pinned.frames");
      const balloon = new Child(BALLOON_CHILD, ["", String(BALLOON_PAGES), dump]);
      expect(JSON.parse(await balloon.line())).toStrictEqual({ t: "ready", size: BALLOON_PAGES, memory: "pinned" });
      expect(await mismatches(balloon, dump)).toStrictEqual({ locked: BALLOON_PAGES, size: BALLOON_PAGES, stale: 0 });
      const migratedBefore = migrated();
      await fragmentAndCompact(5);
      // Compaction did move pages meanwhile (the fragmenter's), just none of the balloon's.
      expect(migrated()).toBeGreaterThan(migratedBefore);
      expect(await mismatches(balloon, dump)).toStrictEqual({ locked: BALLOON_PAGES, size: BALLOON_PAGES, stale: 0 });
      expect(await balloon.ask("fork")).toMatchObject({ t: "forked", written: BALLOON_PAGES });
      expect(await mismatches(balloon, dump)).toStrictEqual({ locked: BALLOON_PAGES, size: BALLOON_PAGES, stale: 0 });
      expect(await balloon.ask("check")).toMatchObject({ t: "checked", checked: BALLOON_PAGES, moved: 0, repaired: 0, released: 0 });
      // Pinned, not locked: the frames are none of the child's locked pages.
      expect(lockedFramesOf(balloon.process.pid!).size).toBeLessThan(BALLOON_PAGES);
      expect(balloon.stderr).toBe("");
    },
    600_000,
  );

  it.skipIf(!secretMemory || !existsSync("/proc/sys/kernel/io_uring_disabled"))(
    "with kernel.io_uring_disabled=2 the default falls back to secret memory, says so once, and after compaction x5 every frame is still in place (needs memfd_secret)",
    async () => {
      setSysctl("kernel/io_uring_disabled", "2");
      setSysctl("compact_unevictable_allowed", "1");
      const dump = join(folder, "fallback.frames");
      const balloon = new Child(BALLOON_CHILD, ["", String(BALLOON_PAGES), dump]);
      expect(JSON.parse(await balloon.line())).toStrictEqual({ t: "ready", size: BALLOON_PAGES, memory: "secret" });
      expect(balloon.stderr.trim().split("\n")).toHaveLength(1);
      expect(balloon.stderr).toMatch(
        /^io_uring cannot pin memory \(EPERM: Operation not permitted, io_uring_setup: kernel\.io_uring_disabled .*\): pages come from memfd_secret instead/,
      );
      await fragmentAndCompact(5);
      expect(await mismatches(balloon, dump)).toStrictEqual({ locked: BALLOON_PAGES, size: BALLOON_PAGES, stale: 0 });
      expect(await balloon.ask("check")).toMatchObject({ t: "checked", checked: BALLOON_PAGES, moved: 0, repaired: 0, released: 0 });
    },
    600_000,
  );

  it.skipIf(!secretMemory)(
    "secret memory: after compaction every frame the monitor holds LOCKed is still one of the child's locked pages (needs memfd_secret)",
    async () => {
      // The default sysctls of this machine: locked pages may be compacted.
      setSysctl("compact_unevictable_allowed", "1");
      const dump = join(folder, "secret.frames");
      const balloon = new Child(BALLOON_CHILD, ["secret", String(BALLOON_PAGES), dump]);
      expect(JSON.parse(await balloon.line())).toStrictEqual({ t: "ready", size: BALLOON_PAGES, memory: "secret" });
      await fragmentAndCompact(5);
      expect(await mismatches(balloon, dump)).toStrictEqual({ locked: BALLOON_PAGES, size: BALLOON_PAGES, stale: 0 });
      // Offlining the blocks that hold the balloon: the kernel cannot move secret memory, so it refuses.
      if (hotplug) expect(offlineAndOnline(balloon.process.pid!, 3)).toStrictEqual(["EBUSY", "EBUSY", "EBUSY"]);
      expect(await mismatches(balloon, dump)).toStrictEqual({ locked: BALLOON_PAGES, size: BALLOON_PAGES, stale: 0 });
      expect(await balloon.ask("check")).toMatchObject({ t: "checked", checked: BALLOON_PAGES, moved: 0, repaired: 0, released: 0 });
    },
    600_000,
  );

  it.skipIf(!hotplug)(
    "mlock: compaction and an offlined memory block move ballooned pages behind the host, and the next frame check finds and repairs every one (needs memory hotplug)",
    async () => {
      setSysctl("compact_unevictable_allowed", "1");
      // No proactive compaction meanwhile: the only moves are the ones this test asks for.
      setSysctl("compaction_proactiveness", "0");
      const dump = join(folder, "mlock.frames");
      const balloon = new Child(BALLOON_CHILD, ["mlock", String(BALLOON_PAGES), dump]);
      expect(JSON.parse(await balloon.line())).toStrictEqual({ t: "ready", size: BALLOON_PAGES, memory: "mlock" });
      expect(await mismatches(balloon, dump)).toStrictEqual({ locked: BALLOON_PAGES, size: BALLOON_PAGES, stale: 0 });

      await fragmentAndCompact(5);
      expect(offlineAndOnline(balloon.process.pid!, 16).at(-1)).toBe("offlined");
      const before = await mismatches(balloon, dump);
      // Compaction did move pages: the host holds frames that are no longer the balloon's.
      expect(before.stale).toBeGreaterThan(0);

      const check = await balloon.ask("check");
      expect(check.moved).toBeGreaterThanOrEqual(before.stale);
      expect(check.repaired! + check.released!).toBe(check.moved);
      const after = await mismatches(balloon, dump);
      expect(after).toStrictEqual({ locked: BALLOON_PAGES - check.released!, size: BALLOON_PAGES - check.released!, stale: 0 });
    },
    600_000,
  );
});
