/**
 * The subset of C's `printf` that the drivers' `vmballoon_debug_show` uses,
 * both ways: render a line from values, and read the values back from a line
 * rendered that way. Private to this package.
 *
 * Conversions: `%[-][#][width][l|ll](d|u|x|s)`. Integers are handled as C
 * does: the argument is converted to the conversion's type (32 bits without a
 * length modifier, 64 with `l` or `ll`, as on x86-64 Linux), so an unsigned
 * value of 2^31 or more printed with `%d` comes out negative. Widths are
 * minimum widths: a longer value widens its field.
 */

/** One conversion of a format string. */
interface Conversion {
  readonly left: boolean;
  readonly alternate: boolean;
  readonly width: number;
  readonly bits: 32 | 64;
  readonly type: "d" | "u" | "x" | "s";
  /** The conversion as written, such as `%8u`. */
  readonly source: string;
}

type Piece = string | Conversion;

/**
 * How `%#x` prints zero. C (and glibc) prints `0`, without `0x`; the Linux
 * kernel's `vsnprintf` prints `0x0`.
 */
export type HexZero = "0" | "0x0";

export interface PrintfOptions {
  readonly hexZero: HexZero;
}

/** A compiled format: its pieces, and a regular expression that matches what it prints. */
export interface Template {
  readonly source: string;
  readonly pieces: readonly Piece[];
  readonly conversions: readonly Conversion[];
  readonly pattern: RegExp;
}

const CONVERSION = /%(-?)(#?)(\d*)(l{0,2})([duxs%])/g;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function patternOf(conversion: Conversion): string {
  // Fields are right-justified unless `-`; padding is spaces.
  const pad = conversion.left ? "" : " *";
  const trail = conversion.left ? " *" : "";
  switch (conversion.type) {
    case "d":
      return `(${pad}-?\\d+${trail})`;
    case "u":
      return `(${pad}\\d+${trail})`;
    case "x":
      return conversion.alternate ? `(${pad}(?:0x[0-9a-f]+|0)${trail})` : `(${pad}[0-9a-f]+${trail})`;
    case "s":
      return conversion.left ? `(\\S+(?: \\S+)*${trail})` : `(${pad}\\S*)`;
  }
}

/** Compiles a format string. */
export function compile(format: string): Template {
  const pieces: Piece[] = [];
  let last = 0;
  for (const match of format.matchAll(CONVERSION)) {
    const [source, left, alternate, width, length, type] = match as unknown as [string, string, string, string, string, string];
    const literal = format.slice(last, match.index);
    last = match.index + source.length;
    if (type === "%") {
      pieces.push(`${literal}%`);
      continue;
    }
    if (literal) pieces.push(literal);
    pieces.push({
      left: left === "-",
      alternate: alternate === "#",
      width: width === "" ? 0 : Number(width),
      bits: length === "" ? 32 : 64,
      type: type as Conversion["type"],
      source,
    });
  }
  if (last < format.length) pieces.push(format.slice(last));
  // Adjacent literals (from `%%`) are merged, so that a template is literal, conversion, literal, ...
  const merged: Piece[] = [];
  for (const piece of pieces) {
    const previous = merged[merged.length - 1];
    if (typeof piece === "string" && typeof previous === "string") merged[merged.length - 1] = previous + piece;
    else merged.push(piece);
  }
  const conversions = merged.filter((piece): piece is Conversion => typeof piece !== "string");
  const pattern = new RegExp(`^${merged.map((piece) => (typeof piece === "string" ? escapeRegExp(piece) : patternOf(piece))).join("")}$`);
  return { source: format, pieces: merged, conversions, pattern };
}

/**
 * Binds the leading `%s` conversions of a format to fixed strings (the
 * labels), and returns the format that is left, with those strings written
 * in: `bind("%-22s: %16llu\n", "target")` is `"target                : %16llu\n"`.
 */
export function bind(format: string, ...labels: string[]): string {
  let index = 0;
  return format.replace(CONVERSION, (source, left: string, _alternate, width: string, _length, type: string) => {
    if (type === "%") return source;
    if (index >= labels.length) return source;
    if (type !== "s") throw new Error(`bind: ${source} is not a %s conversion`);
    const label = labels[index++]!;
    const padded = left ? label.padEnd(Number(width || 0)) : label.padStart(Number(width || 0));
    return padded.replace(/%/g, "%%");
  });
}

export type Argument = number | bigint | string;

function renderConversion(conversion: Conversion, value: Argument, options: PrintfOptions): string {
  let text: string;
  if (conversion.type === "s") {
    text = String(value);
  } else {
    const integer = typeof value === "bigint" ? value : BigInt(value);
    if (conversion.type === "d") {
      text = BigInt.asIntN(conversion.bits, integer).toString();
    } else if (conversion.type === "u") {
      text = BigInt.asUintN(conversion.bits, integer).toString();
    } else {
      const unsigned = BigInt.asUintN(conversion.bits, integer);
      const digits = unsigned.toString(16);
      text = !conversion.alternate ? digits : unsigned === 0n ? options.hexZero : `0x${digits}`;
    }
  }
  return conversion.left ? text.padEnd(conversion.width) : text.padStart(conversion.width);
}

/** Renders a compiled template with its arguments, one per conversion. */
export function render(template: Template, args: readonly Argument[], options: PrintfOptions): string {
  let index = 0;
  let out = "";
  for (const piece of template.pieces) {
    out += typeof piece === "string" ? piece : renderConversion(piece, args[index++]!, options);
  }
  return out;
}

/** A value read back from a field: integers as bigint (unsigned, as the C variable held it), strings as they are. */
export type ScannedValue = bigint | string;

export interface Scanned {
  readonly values: readonly ScannedValue[];
  /** How a `%#x` of zero was printed, when the line has one. */
  readonly hexZero?: HexZero;
}

/** Why a line does not scan: the shape is wrong, or a number is out of its type's range. */
export type ScanFailure = { readonly kind: "shape" } | { readonly kind: "range"; readonly conversion: string; readonly text: string };

/**
 * Reads the values of a line printed with `template`. The line must be
 * exactly what `render` would print for the values read (same padding, no
 * leading zeros): anything else is a failure. `%d` values come back as the
 * unsigned value the C variable held (-1 is 2^32 - 1).
 */
export function scan(template: Template, line: string, options: Partial<PrintfOptions> = {}): Scanned | ScanFailure {
  const match = template.pattern.exec(line);
  if (!match) return { kind: "shape" };
  const values: ScannedValue[] = [];
  let hexZero: HexZero | undefined;
  for (const [i, conversion] of template.conversions.entries()) {
    const field = match[i + 1]!.trim();
    if (conversion.type === "s") {
      values.push(field);
      continue;
    }
    const limit = 1n << BigInt(conversion.bits);
    if (conversion.type === "x") {
      const value = field === "0" ? 0n : BigInt(conversion.alternate ? field : `0x${field}`);
      if (value >= limit) return { kind: "range", conversion: conversion.source, text: field };
      if (conversion.alternate && value === 0n) hexZero = field === "0" ? "0" : "0x0";
      values.push(value);
      continue;
    }
    const value = BigInt(field);
    if (conversion.type === "d") {
      if (value < -(limit >> 1n) || value >= limit >> 1n) return { kind: "range", conversion: conversion.source, text: field };
    } else if (value >= limit) {
      return { kind: "range", conversion: conversion.source, text: field };
    }
    values.push(BigInt.asUintN(conversion.bits, value));
  }
  // A zero `%#x` printed differently from an earlier line's: not the same printf.
  if (hexZero !== undefined && options.hexZero !== undefined && hexZero !== options.hexZero) return { kind: "shape" };
  const rendered = render(template, values, { hexZero: hexZero ?? options.hexZero ?? "0x0" });
  if (rendered !== line) return { kind: "shape" };
  return hexZero === undefined ? { values } : { values, hexZero };
}

/** Whether a scan result is a failure. */
export function failed(result: Scanned | ScanFailure): result is ScanFailure {
  return "kind" in result;
}
