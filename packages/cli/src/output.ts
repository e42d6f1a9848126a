import { PAGE_SIZE } from "@vmballoon/protocol";
import type { Writable } from "node:stream";

interface MaybeTty extends Writable {
  isTTY?: boolean;
  hasColors?: (count?: number) => boolean;
}

/** Whether a stream is a terminal. */
export function isTerminal(stream: Writable): boolean {
  return (stream as MaybeTty).isTTY === true;
}

/** Colour only on a terminal that has colours, never with NO_COLOR (Node's `hasColors` reads NO_COLOR, FORCE_COLOR and TERM). */
export function colorsFor(stream: Writable): boolean {
  const tty = stream as MaybeTty;
  return tty.isTTY === true && typeof tty.hasColors === "function" && tty.hasColors() && !process.env.NO_COLOR;
}

const CODES = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39] } as const;
export type Style = keyof typeof CODES;

/** A styler that colours when `enabled`, and returns the text unchanged otherwise. */
export function styler(enabled: boolean): (style: Style, text: string) => string {
  return (style, text) => (enabled ? `\u001b[${CODES[style][0]}m${text}\u001b[${CODES[style][1]}m` : text);
}

/** Pages of 4 KiB as MiB, one decimal: "128.0 MiB". The one MiB formatter of the CLI: the terminal's summaries and the report's page. */
export function mebibytes(pages: number | bigint): string {
  return `${(Number(pages) / (2 ** 20 / PAGE_SIZE)).toFixed(1)} MiB`;
}
