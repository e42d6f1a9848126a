import { isTerminal, mebibytes } from "../output.js";

/** Where `run`'s `--json` records go. */
export interface RecordSink {
  emit(record: object): void;
}

/** Where `run`'s messages go. */
export interface MessageSink {
  line(text: string): void;
  /** The run's last word: not said with --json, whose exit record says it. */
  summary(text: string): void;
  cycle(cycle: number, size: number, target: number): void;
}

/**
 * JSON Lines on stdout with `--json`. Stops writing when stdout fails: the
 * reader went away (EPIPE), or a full disk, which the program's handler of
 * stdout's errors reports (one line, exit status 1). The balloon goes on.
 */
export class Emitter implements RecordSink {
  private closed = false;
  constructor(private readonly enabled: boolean) {
    if (enabled) process.stdout.on("error", () => (this.closed = true));
  }
  emit(record: object): void {
    if (this.enabled && !this.closed) process.stdout.write(`${JSON.stringify(record)}\n`);
  }
}

/** Messages on stderr: a status line on a terminal, notable changes only elsewhere. */
export class Narrator implements MessageSink {
  private readonly terminal = isTerminal(process.stderr);
  private lastTarget = -1;
  private atTarget = false;
  private statusShown = false;

  constructor(private readonly quiet: boolean) {}

  line(text: string): void {
    if (this.statusShown) process.stderr.write("\r\u001b[K");
    this.statusShown = false;
    process.stderr.write(`vmballoon: ${text}\n`);
  }

  summary(text: string): void {
    if (!this.quiet) this.line(text);
  }

  cycle(cycle: number, size: number, target: number): void {
    if (this.terminal && !this.quiet) {
      process.stderr.write(`\r\u001b[Kcycle ${cycle}: balloon ${size} pages (${mebibytes(size)}), target ${target}`);
      this.statusShown = true;
      return;
    }
    if (this.quiet) return;
    if (target !== this.lastTarget) {
      this.lastTarget = target;
      this.atTarget = size === target;
      this.line(`cycle ${cycle}: target ${target} pages (${mebibytes(target)}); balloon ${size} pages${this.atTarget ? ", at its target" : ""}`);
    } else if (!this.atTarget && size === target) {
      this.atTarget = true;
      this.line(`cycle ${cycle}: balloon at its target, ${size} pages (${mebibytes(size)})`);
    }
  }
}
