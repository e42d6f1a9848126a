import { StatsParseError, quoteFound } from "./errors.js";
import { bind, compile, failed, scan, type HexZero, type Scanned, type ScannedValue, type Template } from "./printf.js";

/** A template for one line: the driver's format string with its label bound, without the newline. */
export interface LineTemplate extends Template {
  /** The format as an error message shows it, such as `"timer:              %8u"`. */
  readonly shown: string;
}

/** Compiles one line of a driver's output from its format string and label(s). */
export function lineTemplate(format: string, ...labels: string[]): LineTemplate {
  const bound = bind(format, ...labels);
  if (!bound.endsWith("\n") || bound.indexOf("\n") !== bound.length - 1) {
    throw new Error(`lineTemplate: ${JSON.stringify(format)} is not one line ending in \\n`);
  }
  const template = compile(bound.slice(0, -1));
  return { ...template, shown: JSON.stringify(template.source.replace(/%%/g, "%")) };
}

function rangeOf(conversion: string): string {
  const bits = /l/.test(conversion) ? 64n : 32n;
  if (conversion.endsWith("d")) return `${-(1n << (bits - 1n))} to ${(1n << (bits - 1n)) - 1n}`;
  return `0 to ${(1n << bits) - 1n}`;
}

export interface ReadOptions {
  /** How a zero `%#x` was printed on an earlier line: this line must print it the same way. */
  readonly hexZero?: HexZero | undefined;
  /** A further check of the values read; false makes the line not fit. */
  readonly accept?: (values: readonly ScannedValue[]) => boolean;
}

/** Reads a text line by line, against templates, and throws a {@link StatsParseError} at the first line that does not fit. */
export class LineReader {
  private readonly lines: readonly string[];
  private index = 0;

  constructor(text: string) {
    if (text === "") throw new StatsParseError(1, "a vmmemctl text", "an empty file");
    const lines = text.split("\n");
    const last = lines.pop()!;
    if (last !== "") {
      // The last line has no newline: fine for the line's own check, but not byte for byte.
      throw new StatsParseError(lines.length + 1, "a newline at the end of the line", `${quoteFound(last)} and the end of the file`);
    }
    this.lines = lines;
  }

  /** The 1-based number of the next line. */
  get lineNumber(): number {
    return this.index + 1;
  }

  /** The next line, not consumed; undefined at the end. */
  peek(): string | undefined {
    return this.lines[this.index];
  }

  /** What the next line holds, for a message. */
  private found(): string {
    const line = this.peek();
    if (line === undefined) return "the end of the file";
    if (line.endsWith("\r")) return `${quoteFound(line.slice(0, -1))} with a Windows line ending (\\r\\n)`;
    return quoteFound(line);
  }

  /** Reads the next line with a template, or throws naming the line. */
  read(template: LineTemplate, what: string, options: ReadOptions = {}): Scanned {
    const line = this.peek();
    let result = line === undefined ? ({ kind: "shape" } as const) : scan(template, line, options.hexZero === undefined ? {} : { hexZero: options.hexZero });
    if (!failed(result) && options.accept && !options.accept(result.values)) result = { kind: "shape" };
    if (failed(result)) {
      const expected = result.kind === "range" ? `${what} that fits ${result.conversion} (${rangeOf(result.conversion)})` : `${what}: ${template.shown}`;
      throw new StatsParseError(this.lineNumber, expected, this.found());
    }
    this.index++;
    return result;
  }

  /** Throws unless every line was read. */
  end(layout: string): void {
    if (this.index < this.lines.length) {
      throw new StatsParseError(this.lineNumber, `the end of the file (the ${layout} layout ends after line ${this.index})`, this.found());
    }
  }
}
