import { closeSync, fstatSync, lstatSync, openSync, readSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeSync, type Stats } from "node:fs";
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
 * A file being written whole or not at all: the one write path of the CLI
 * (`--trace`, `stats --output`, `run --stats-file`). {@link open} picks where
 * to write (see {@link stagingFor}); {@link write} writes all of a text,
 * waiting out a full non-blocking pipe; {@link commit} moves a temporary file
 * into place; {@link abandon} removes it and leaves the old file as it was.
 * Every error of the system is thrown as one line that says what was being
 * written (`doing`), to which file, and why (see {@link describeFileError}).
 */
export class OutputFile {
  /** The descriptor was closed, by {@link commit} or {@link abandon}. */
  private closed = false;
  /** The reader went away (EPIPE): nothing more is written. */
  private gone = false;

  private constructor(
    /** The name given, for messages. */
    private readonly name: string,
    private readonly doing: string,
    private readonly fd: number,
    private readonly staging: Staging | undefined,
  ) {}

  /**
   * Opens `file` for writing whole: a temporary file beside it, or the file
   * itself when it is a device, a FIFO, or what stdout or stderr is open on.
   * With `inPlace`, a file is written under its own name from the start (a
   * log read while it grows, such as `run --trace`): not whole, but there up
   * to its last write whatever happens to the writer. Nothing is created when
   * this throws.
   */
  static open(file: string, doing: string, options: { readonly inPlace?: boolean } = {}): OutputFile {
    try {
      const { temporary, ...where } = stagingFor(file);
      const staging: Staging = { ...where, temporary: options.inPlace ? undefined : temporary };
      const fd = staging.descriptor ?? (staging.temporary === undefined ? openSync(staging.final, "w") : createExclusive(staging.temporary));
      return new OutputFile(file, doing, fd, staging);
    } catch (error) {
      throw describeFileError(error, doing, file);
    }
  }

  /** This process's stdout, written synchronously: never closed, nothing to rename. */
  static stdout(doing: string): OutputFile {
    return new OutputFile("stdout", doing, 1, undefined);
  }

  /** The descriptor was opened here (it is not stdout or stderr), so it is closed here. */
  private get ownsFd(): boolean {
    return this.fd !== 1 && this.fd !== 2;
  }

  /**
   * Writes all of `text`. False when the reader of a pipe went away (EPIPE,
   * as in `| head`): the output stops quietly and later writes are dropped.
   */
  write(text: string): boolean {
    if (this.gone) return false;
    let buffer = Buffer.from(text, "utf8");
    while (buffer.length > 0) {
      try {
        buffer = buffer.subarray(writeSync(this.fd, buffer));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") {
          pause(2);
          continue;
        }
        if (code === "EPIPE") {
          this.gone = true;
          return false;
        }
        throw describeFileError(error, this.doing, this.name);
      }
    }
    return true;
  }

  /** Closes the file and renames a temporary one over the target; on an error, abandons it. */
  commit(): void {
    if (!this.ownsFd || this.closed) return;
    try {
      this.closed = true;
      closeSync(this.fd);
      const { final, temporary } = this.staging!;
      if (temporary !== undefined) renameSync(temporary, final);
    } catch (error) {
      this.abandon();
      throw describeFileError(error, this.doing, this.name);
    }
  }

  /** Gives up: the temporary file is removed, the old file, if any, stays as it was. Never throws. */
  abandon(): void {
    if (!this.ownsFd) return;
    if (!this.closed) {
      this.closed = true;
      try {
        closeSync(this.fd);
      } catch {
        // Already failing: the descriptor is gone either way.
      }
    }
    const temporary = this.staging?.temporary;
    if (temporary !== undefined) rmSync(temporary, { force: true });
  }
}

/**
 * Creates a temporary file that is no one else's: `wx` never follows a link
 * planted at its name. A file of that name left by a process of the same id
 * that was killed is removed first.
 */
function createExclusive(temporary: string): number {
  try {
    return openSync(temporary, "wx");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    rmSync(temporary, { force: true });
    return openSync(temporary, "wx");
  }
}

/**
 * Writes a file whole or not at all through {@link OutputFile}, so that a
 * reader (node_exporter's textfile collector, a `watch cat`) never sees half
 * of it. Errors become one line that says what was being written (`doing`)
 * and why.
 */
export function writeAtomically(file: string, text: string, doing: string): void {
  const output = OutputFile.open(file, doing);
  try {
    output.write(text);
  } catch (error) {
    output.abandon();
    throw error;
  }
  output.commit();
}
