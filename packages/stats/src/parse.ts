import { StatsParseError, quoteFound } from "./errors.js";
import { LineReader } from "./lines.js";
import { formatModern, parseModernLines, type ModernRecord } from "./modern.js";
import { formatSeed, parseSeedLines, type SeedRecord } from "./seed.js";

/** A `vmmemctl` text's numbers, in either layout; `layout` says which. */
export type VmmemctlRecord = SeedRecord | ModernRecord;

/** The layouts this package reads and writes. */
export type Layout = VmmemctlRecord["layout"];

/**
 * Reads a `vmmemctl` text in either layout: the seed's (vmw_balloon
 * 1.2.1.3-k, and FreeBSD's `vm.vmmemctl`) or today's Linux drivers'. The
 * record it returns formats back to the same bytes: `format(parse(t)) === t`.
 *
 * @throws StatsParseError (code `E_STATS_PARSE`) at the first line that is
 *   not what a driver prints, naming the line and what was expected there.
 */
export function parse(text: string): VmmemctlRecord {
  const reader = new LineReader(text);
  const first = reader.peek() ?? "";
  if (first.startsWith("target:")) return parseSeedLines(reader);
  if (/^balloon capabilities +:/.test(first)) return parseModernLines(reader);
  if (first.startsWith("balloon capabilities:")) {
    throw new StatsParseError(
      1,
      "the seed's layout or today's Linux layout",
      `${quoteFound(first)}, the layout of the Linux 4.x drivers (2015 to 2018), which is not read here`,
    );
  }
  throw new StatsParseError(
    1,
    `"target:" (the seed's layout) or "balloon capabilities" (today's Linux layout)`,
    first.endsWith("\r") ? `${quoteFound(first.slice(0, -1))} with a Windows line ending (\\r\\n)` : quoteFound(first),
  );
}

/**
 * The exact text a driver prints for a record, in the record's layout.
 *
 * @throws RangeError when a value does not fit its counter (see
 *   {@link formatSeed} and {@link formatModern}).
 */
export function format(record: VmmemctlRecord): string {
  switch (record.layout) {
    case "seed":
      return formatSeed(record);
    case "modern":
      return formatModern(record);
    default:
      throw new TypeError(`unknown layout ${JSON.stringify((record as { layout?: unknown }).layout)}: "seed" or "modern"`);
  }
}
