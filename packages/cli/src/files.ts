import { closeSync, openSync, readSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { CliError, EXIT, describeFileError } from "./errors.js";

const MiB = 2 ** 20;

/** What a file should hold, and the most bytes read of it. */
export interface InputKind {
  readonly what: string;
  readonly limit: number;
}

/** A vmmemctl text: the kernel's is under 4 KiB. */
export const VMMEMCTL: InputKind = { what: "a vmmemctl text", limit: 1 * MiB };
/** A scenario: a million events fit several times over. */
export const SCENARIO: InputKind = { what: "a scenario", limit: 64 * MiB };

/**
 * Reads a file, or stdin (`-`), as UTF-8, up to the kind's limit: a device or a
 * pipe that never ends (`/dev/urandom`, `yes |`) is an error that says so
 * (exit status 2), not a process that reads until memory runs out. Errors of
 * the file system are thrown as they are.
 */
export function readBounded(file: string, kind: InputKind, doing: string): string {
  const fd = file === "-" ? 0 : openSync(file, "r");
  try {
    const chunks: Buffer[] = [];
    const buffer = Buffer.allocUnsafe(64 * 1024);
    let total = 0;
    for (;;) {
      const count = readWaiting(fd, buffer);
      if (count === 0) break;
      total += count;
      if (total > kind.limit) {
        const name = file === "-" ? "stdin" : file;
        throw new CliError(`cannot ${doing} ${name}: more than ${kind.limit / MiB} MiB, too much for ${kind.what}`, EXIT.USAGE);
      }
      chunks.push(Buffer.from(buffer.subarray(0, count)));
    }
    return Buffer.concat(chunks, total).toString("utf8");
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * `readSync`, waiting out EAGAIN: a stdin that another program left
 * non-blocking has no data yet, which is not an error (Node's own
 * `readFileSync(0)` throws there).
 */
function readWaiting(fd: number, buffer: Buffer): number {
  for (;;) {
    try {
      return readSync(fd, buffer, 0, buffer.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
      Atomics.wait(PAUSE, 0, 0, 10);
    }
  }
}

/** {@link readBounded} for a file the user named: its errors become one line that says what was being read and why. */
export function readInput(file: string, kind: InputKind, doing: string): string {
  try {
    return readBounded(file, kind, doing);
  } catch (error) {
    throw describeFileError(error, doing, file === "-" ? "stdin" : file);
  }
}

/**
 * Writes a file whole or not at all: the text goes to a temporary file beside
 * it, which is then renamed over it, so that a reader (node_exporter's
 * textfile collector, a `watch cat`) never sees half of it. Errors become one
 * line that says what was being written (`doing`) and why.
 */
export function writeAtomically(file: string, text: string, doing: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw describeFileError(error, doing, file);
  }
}
