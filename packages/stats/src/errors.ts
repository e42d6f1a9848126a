/**
 * A `vmmemctl` text that is not what a driver prints. `line` is 1-based;
 * the message names the line, what was expected there and what was found.
 */
export class StatsParseError extends Error {
  override readonly name = "StatsParseError";
  readonly code = "E_STATS_PARSE";

  constructor(
    /** The 1-based line number where the text stops being a vmmemctl text. */
    readonly line: number,
    /** What a driver prints on that line. */
    readonly expected: string,
    /** What the line holds (possibly shortened), or a description such as "the end of the file". */
    readonly found: string,
    options?: ErrorOptions,
  ) {
    super(`line ${line}: expected ${expected}, found ${found}`, options);
  }
}

const SHOWN = 60;

/** A line as an error message shows it: quoted, and shortened when long. */
export function quoteFound(line: string): string {
  const shown = line.length > SHOWN ? `${line.slice(0, SHOWN)}…` : line;
  return JSON.stringify(shown);
}
