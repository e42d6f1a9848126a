/*
 * One owner for the balloon: `flock(LOCK_EX | LOCK_NB)` on a lock file. The
 * kernel drops the lock when the process dies, however it dies (SIGKILL, the
 * OOM killer), so a crashed owner never blocks the next one; the file stays
 * (unlinking a lock file races with the next locker) and holds the owner's
 * pid for the message of whoever finds it taken.
 */
import { closeSync, constants, ftruncateSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { constants as os } from "node:os";
import { readText } from "./detect.js";
import { lastError, native } from "./native.js";

const LOCK_EX = 2;
const LOCK_NB = 4;
const { EWOULDBLOCK } = os.errno;

let flock: ((fd: number, operation: number) => number) | undefined;

function flockFunction(): (fd: number, operation: number) => number {
  flock ??= native().koffi.load("libc.so.6").func("int flock(int fd, int operation)") as (fd: number, operation: number) => number;
  return flock;
}

/** A lock this process holds until {@link HeldLock.release} or its death. */
export interface HeldLock {
  readonly path: string;
  /** Drops the lock (closes the file; its contents stay). */
  release(): void;
}

/** Someone else holds the lock: their pid, when the file or /proc/locks says it. */
export interface LockTaken {
  readonly path: string;
  readonly ownerPid: number | undefined;
}

/**
 * Takes `path`'s exclusive lock without waiting, and writes this process's
 * pid into it. Returns the lock, or who holds it. Errors of opening the file
 * (Node's, with `code`) and of `flock` other than EWOULDBLOCK
 * ({@link SystemCallError}) are thrown.
 */
export function tryLock(path: string): HeldLock | LockTaken {
  const lockFd = flockFunction();
  // O_CLOEXEC is libuv's default: a child process never inherits the lock.
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  if (lockFd(fd, LOCK_EX | LOCK_NB) !== 0) {
    const error = lastError("flock");
    closeSync(fd);
    if (-error.errno !== EWOULDBLOCK) throw error;
    return { path, ownerPid: ownerOf(path) };
  }
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  let held = true;
  return {
    path,
    release() {
      if (held) closeSync(fd);
      held = false;
    },
  };
}

/** Whether {@link tryLock} got the lock. */
export function isHeld(lock: HeldLock | LockTaken): lock is HeldLock {
  return "release" in lock;
}

/**
 * The pid in a taken lock's file. The owner writes it just after its `flock`:
 * an empty file is an owner between the two, waited for a little; past that,
 * the kernel's /proc/locks names the holder of the file's inode.
 */
function ownerOf(path: string): number | undefined {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let tries = 0; tries < 200; tries++) {
    const text = readText(path);
    if (text === undefined) return undefined;
    const match = /^(\d+)\n$/.exec(text);
    if (match) return Number(match[1]);
    Atomics.wait(sleeper, 0, 0, 5);
  }
  return lockHolder(path);
}

/** The pid /proc/locks gives for the FLOCK on `path`'s inode (`1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`). */
function lockHolder(path: string): number | undefined {
  try {
    const inode = statSync(path).ino;
    for (const line of readFileSync("/proc/locks", "utf8").split("\n")) {
      const fields = line.trim().split(/\s+/);
      if (fields[1] === "FLOCK" && Number(fields[5]?.split(":")[2]) === inode && Number(fields[4]) > 0) return Number(fields[4]);
    }
  } catch {
    // No /proc/locks: the pid stays unknown.
  }
  return undefined;
}
