import { closeSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { describeFileError } from "./errors.js";
import { pause, stagingFor } from "./files.js";

const FLUSH_AT = 1 << 20;

/** Writes all of `text` to `fd`, waiting out a full non-blocking pipe. */
function writeAll(fd: number, text: string): void {
  let buffer = Buffer.from(text, "utf8");
  while (buffer.length > 0) {
    try {
      const written = writeSync(fd, buffer);
      buffer = buffer.subarray(written);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
      pause(2);
    }
  }
}

/**
 * Lines written synchronously, in 1 MiB batches, to stdout (`-`) or to a
 * file. A file is written beside its final name and renamed into place by
 * {@link close}, so a failed run never leaves half a trace where a whole one was;
 * with `inPlace` (`vmballoon run`, whose trace is read while it runs and must
 * outlive a SIGKILL) it is written under its own name from the start.
 */
export class LineWriter {
  private pending: string[] = [];
  private pendingLength = 0;
  private readonly fd: number;
  /** The file the trace ends up in, and the one it is written to first (none for a device or a FIFO). */
  private readonly final: string | undefined;
  private readonly temporary: string | undefined;
  /** The descriptor of a file is closed (by {@link close}). */
  private closed = false;
  /** The reader went away (EPIPE): further lines are dropped. */
  closedByReader = false;

  constructor(
    private readonly target: string,
    options: { readonly inPlace?: boolean } = {},
  ) {
    if (target === "-") {
      this.fd = 1;
      return;
    }
    try {
      const { final, descriptor, ...staging } = stagingFor(target);
      const temporary = options.inPlace ? undefined : staging.temporary;
      this.final = final;
      this.temporary = temporary;
      this.fd = descriptor ?? openSync(temporary ?? final, "w");
    } catch (error) {
      throw describeFileError(error, "write the trace to", target);
    }
  }

  /** The descriptor was opened here (it is not stdout or stderr), so it is closed here. */
  private get ownsFd(): boolean {
    return this.fd !== 1 && this.fd !== 2;
  }

  write(line: string): void {
    this.pending.push(line);
    this.pendingLength += line.length + 1;
    if (this.pendingLength >= FLUSH_AT) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const text = `${this.pending.join("\n")}\n`;
    this.pending = [];
    this.pendingLength = 0;
    if (this.closedByReader) return;
    try {
      writeAll(this.fd, text);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EPIPE") {
        this.closedByReader = true;
        return;
      }
      throw describeFileError(error, "write the trace to", this.target);
    }
  }

  /** Flushes, and moves a file into place. */
  close(): void {
    this.flush();
    if (!this.ownsFd) return;
    this.closed = true;
    closeSync(this.fd);
    if (this.temporary === undefined) return;
    try {
      renameSync(this.temporary, this.final!);
    } catch (error) {
      throw describeFileError(error, "write the trace to", this.target);
    }
  }

  /** Gives up: a file's partial copy is removed; the old file, if any, stays. */
  abandon(): void {
    if (!this.ownsFd) return;
    try {
      if (!this.closed) closeSync(this.fd);
    } finally {
      if (this.temporary !== undefined) rmSync(this.temporary, { force: true });
    }
  }
}
