import { closeSync, fstatSync, lstatSync, openSync, readSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from "node:fs";
import { dirname, resolve } from "node:path";
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
/** A trace: the built-in scenario's is 28 MiB; a gzipped one is held to the same limit once unpacked. */
export const TRACE: InputKind = { what: "a trace", limit: 256 * MiB };

/** How messages name an input: `-` is stdin. */
export function inputName(file: string): string {
  return file === "-" ? "stdin" : file;
}

/**
 * Reads a file, or stdin (`-`), as UTF-8, up to the kind's limit: a device or a
 * pipe that never ends (`/dev/urandom`, `yes |`) is an error that says so
 * (exit status 2), not a process that reads until memory runs out. Errors of
 * the file system are thrown as they are.
 */
export function readBounded(file: string, kind: InputKind, doing: string): string {
  return readBoundedBytes(file, kind, doing).toString("utf8");
}

/** {@link readBounded}, as bytes. */
export function readBoundedBytes(file: string, kind: InputKind, doing: string): Buffer {
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
        throw new CliError(`cannot ${doing} ${inputName(file)}: more than ${kind.limit / MiB} MiB, too much for ${kind.what}`, EXIT.USAGE);
      }
      chunks.push(Buffer.from(buffer.subarray(0, count)));
    }
    return Buffer.concat(chunks, total);
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps, synchronously: for waiting out EAGAIN on a non-blocking descriptor. */
export function pause(milliseconds: number): void {
  Atomics.wait(SLEEPER, 0, 0, milliseconds);
}

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
      pause(10);
    }
  }
}

/** {@link readBounded} for a file the user named: its errors become one line that says what was being read and why. */
export function readInput(file: string, kind: InputKind, doing: string): string {
  return readInputBytes(file, kind, doing).toString("utf8");
}

/** {@link readInput}, as bytes. */
export function readInputBytes(file: string, kind: InputKind, doing: string): Buffer {
  try {
    return readBoundedBytes(file, kind, doing);
  } catch (error) {
    throw describeFileError(error, doing, inputName(file));
  }
}

/** How to write a file so that it appears whole: see {@link stagingFor}. */
export interface Staging {
  /** The file itself, a symbolic link followed. */
  readonly final: string;
  /** The file to write first and rename over `final`; none to write `final` in place. */
  readonly temporary: string | undefined;
  /** `final` is this process's stdout (1) or stderr (2): write through that descriptor. */
  readonly descriptor: 1 | 2 | undefined;
}

/**
 * Where to write `file` so that it appears whole: a temporary file beside the
 * real file (a symbolic link is followed, and kept), to be renamed over it.
 * A device, a FIFO or a socket (a named pipe, `/dev/null`) is written in
 * place instead, since renaming over it would replace it with a file; and the
 * file or pipe that is stdout or stderr (`--trace /dev/stdout > f`) through
 * that descriptor, since a second one would write over what the first wrote.
 */
export function stagingFor(file: string): Staging {
  let final = file;
  try {
    // The C library's realpath: Node's own makes up a path for /dev/stdout on a pipe.
    final = realpathSync.native(file);
  } catch {
    // Not there yet: the file is created by the rename; a dangling link's
    // target is, and the link stays.
    if (lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink()) final = resolve(dirname(file), readlinkSync(file));
  }
  const existing = statSync(final, { throwIfNoEntry: false });
  const descriptor = existing && standardDescriptorOf(existing);
  if (existing !== undefined && (descriptor !== undefined || !existing.isFile())) return { final, temporary: undefined, descriptor };
  return { final, temporary: `${final}.${process.pid}.tmp`, descriptor: undefined };
}

/** 1 or 2 when the file is what this process's stdout or stderr is open on. */
function standardDescriptorOf(file: Stats): 1 | 2 | undefined {
  for (const fd of [1, 2] as const) {
    try {
      const open = fstatSync(fd);
      if (open.dev === file.dev && open.ino === file.ino) return fd;
    } catch {
      // Closed: not this one.
    }
  }
  return undefined;
}

/**
 * Writes a file whole or not at all (see {@link stagingFor}), so that a
 * reader (node_exporter's textfile collector, a `watch cat`) never sees half
 * of it. Errors become one line that says what was being written (`doing`)
 * and why.
 */
export function writeAtomically(file: string, text: string, doing: string): void {
  const { final, temporary, descriptor } = stagingFor(file);
  try {
    if (temporary === undefined) {
      writeFileSync(descriptor ?? final, text);
      return;
    }
    writeFileSync(temporary, text);
    renameSync(temporary, final);
  } catch (error) {
    if (temporary !== undefined) rmSync(temporary, { force: true });
    throw describeFileError(error, doing, file);
  }
}
