import { formatTraceRecord, type AnyTraceRecord } from "@vmballoon/core/sim";
import type { LineWriter } from "../trace-writer.js";

/**
 * The trace of `run --trace`: every command as it returns, in simulate's
 * format, flushed once a cycle. A command's record never throws into the
 * engine (the command has been sent): a write error is kept, and thrown by
 * {@link flush}.
 */
export class TraceSink {
  /** The first write error, boxed: whatever was thrown, even `undefined`, is kept. */
  private failure: { readonly error: unknown } | undefined;
  private closed = false;
  constructor(private readonly writer: Pick<LineWriter, "write" | "flush" | "close" | "abandon">) {}

  record(record: AnyTraceRecord): void {
    if (this.failure !== undefined) return;
    try {
      this.writer.write(formatTraceRecord(record));
    } catch (error) {
      this.failure = { error };
    }
  }

  flush(): void {
    if (this.failure === undefined) {
      try {
        this.writer.flush();
      } catch (error) {
        this.failure = { error };
      }
    }
    if (this.failure !== undefined) throw this.failure.error;
  }

  /** At the end: flushed and closed; throws a write error. */
  close(): void {
    this.flush();
    this.closed = true;
    this.writer.close();
  }

  /** After an error: what can still be written is, and the file is closed as it is, without a word. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.flush();
    } catch {
      // The first failure is the one reported.
    }
    try {
      this.writer.abandon();
    } catch {
      // Likewise.
    }
  }
}
