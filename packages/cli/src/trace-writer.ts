import { OutputFile } from "./files.js";

const FLUSH_AT = 1 << 20;
const DOING = "write the trace to";

/**
 * Lines written synchronously, in 1 MiB batches, to stdout (`-`) or to a
 * file, through the CLI's one write path ({@link OutputFile}): a file is
 * written beside its final name and renamed into place by {@link close}, so a
 * failed run never leaves half a trace where a whole one was; with `inPlace`
 * (`vmballoon run`, whose trace is read while it runs and must outlive a
 * SIGKILL) it is written under its own name from the start.
 */
export class LineWriter {
  private pending: string[] = [];
  private pendingLength = 0;
  private readonly output: OutputFile;

  constructor(target: string, options: { readonly inPlace?: boolean } = {}) {
    this.output = target === "-" ? OutputFile.stdout(DOING) : OutputFile.open(target, DOING, options);
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
    // A reader that went away (EPIPE) drops the rest quietly.
    this.output.write(text);
  }

  /** Flushes, and moves a file into place. */
  close(): void {
    this.flush();
    this.output.commit();
  }

  /** Gives up: a file's partial copy is removed; the old file, if any, stays. */
  abandon(): void {
    this.output.abandon();
  }
}
