/** What `run` reads and sets of this machine and this process: /proc's figures, the lock, the OOM score. */
import { readFileSync, writeFileSync } from "node:fs";
import { isHeld, parseMeminfo, tryLock, type HeldLock } from "@vmballoon/hv-x86";
import { CliError, EXIT, describeFileError } from "../errors.js";
import { OOM_SCORE_ADJ } from "./plan.js";

/** A `Field:  N kB` line of a /proc file, in KiB (NaN when absent). */
function procKiB(file: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(file, "utf8"));
  return match ? Number(match[1]) : Number.NaN;
}

/** This process's locked memory (VmLck), KiB. */
export const vmLckKiB = () => procKiB("/proc/self/status", "VmLck");

/** This process's pinned memory (VmPin), KiB. */
export const vmPinKiB = () => procKiB("/proc/self/status", "VmPin");

/** The guest's free pages for the trace's `guestFree`: here the guest is this machine, so its MemFree (the page source's own reading of /proc/meminfo). */
export const memFreePages = () => parseMeminfo(readFileSync("/proc/meminfo", "latin1")).freePages;

/**
 * `--lock-file`: taken before START, held until the process ends. Another
 * run holding it is exit status 75, one line with its pid.
 */
export function takeLock(file: string): HeldLock {
  let lock;
  try {
    lock = tryLock(file);
  } catch (error) {
    throw describeFileError(error, "take the lock", file);
  }
  if (isHeld(lock)) return lock;
  const owner = lock.ownerPid === undefined ? "another vmballoon run" : `another vmballoon run (pid ${lock.ownerPid})`;
  throw new CliError(`${owner} owns the balloon: ${file} is locked; one run at a time`, EXIT.TEMPFAIL);
}

/** Writes {@link OOM_SCORE_ADJ}; the reason it could not, if it could not. */
export function setOomScoreAdj(): string | undefined {
  try {
    writeFileSync("/proc/self/oom_score_adj", `${OOM_SCORE_ADJ}\n`);
    return undefined;
  } catch (error) {
    return (describeFileError(error, "write", "/proc/self/oom_score_adj") as Error).message;
  }
}
