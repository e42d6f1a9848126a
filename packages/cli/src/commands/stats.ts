import { MODERN_GENERAL_STAT_NAMES, PAGE_SIZE_NAMES } from "@vmballoon/protocol";
import {
  MODERN_COMMAND_LABELS,
  capabilityNames,
  format as formatVmmemctl,
  parse,
  toJson,
  toPrometheus,
  type ModernRecord,
  type SeedRecord,
  type VmmemctlRecord,
} from "@vmballoon/stats";
import { UsageError } from "../errors.js";
import { writeAtomically } from "../files.js";
import { optionValue, type OptionValue } from "../options.js";
import { colorsFor, mebibytes, styler, type Style } from "../output.js";
import { readVmmemctl } from "../vmmemctl.js";

export interface StatsOptions {
  readonly file?: OptionValue;
  readonly format?: OptionValue;
  readonly json?: boolean;
  readonly output?: OptionValue;
}

/** The output formats of `--format`; without one, a summary for people. */
export const FORMATS = ["debugfs", "json", "prometheus"] as const;
export type StatsFormat = (typeof FORMATS)[number];

function chooseFormat(options: StatsOptions): StatsFormat | undefined {
  const format = optionValue(options.format, "--format", `a value: ${FORMATS.join(", ")}`);
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be ${FORMATS.slice(0, -1).join(", ")} or ${FORMATS.at(-1)}, not '${format}'`);
  }
  if (options.json) {
    if (format !== undefined && format !== "json") throw new UsageError(`--json and --format ${format} disagree; give one`);
    return "json";
  }
  return format as StatsFormat | undefined;
}

export function stats(options: StatsOptions): number {
  const file = optionValue(options.file, "--file", "a file name ('-' for stdin)");
  const format = chooseFormat(options);
  const output = optionValue(options.output, "--output", "a file name");
  const { name, text } = readVmmemctl(file);

  let record: VmmemctlRecord;
  try {
    record = parse(text);
  } catch (error) {
    // Name the file, then the line: "saved.txt: line 7: expected ...".
    if (error instanceof Error) error.message = `${name}: ${error.message}`;
    throw error;
  }

  if (output === undefined || output === "-") {
    process.stdout.write(render(format, name, record, styler(colorsFor(process.stdout))));
  } else {
    // Whole or not at all: node_exporter's textfile collector may read it at any moment.
    writeAtomically(output, render(format, name, record), "write");
  }
  return 0;
}

function render(format: StatsFormat | undefined, name: string, record: VmmemctlRecord, paint?: Paint): string {
  switch (format) {
    case "debugfs":
      return formatVmmemctl(record);
    case "json":
      return `${JSON.stringify(toJson(record), null, 2)}\n`;
    case "prometheus":
      return toPrometheus(record);
    default:
      return summary(name, record, paint);
  }
}

// ---------------------------------------------------------------------------
// The summary for people: sizes in pages and MiB (vmware-toolbox-cmd's
// `stat balloon` prints MB), failures in yellow on a terminal.
// ---------------------------------------------------------------------------

type Paint = (style: Style, text: string) => string;

function counted(paint: Paint, total: number | bigint, failed: number | bigint): string {
  return `${total}${failed ? paint("yellow", ` (${failed} failed)`) : ""}`;
}

/** A summary of a record, for a terminal or a log. */
export function summary(name: string, record: VmmemctlRecord, paint: Paint = (_s, text) => text): string {
  const lines = record.layout === "seed" ? seedSummary(record, paint) : modernSummary(record, paint);
  const layout = record.layout === "seed" ? "seed layout: vmw_balloon 1.2.1.3-k" : "modern layout: Linux 4.20 and later";
  return `${paint("bold", `vmmemctl`)} ${name} (${layout})\n${lines.map(([label, text]) => `  ${paint("dim", label.padEnd(9))} ${text}`).join("\n")}\n`;
}

function seedSummary(r: SeedRecord, paint: Paint): [string, string][] {
  const s = r.stats;
  return [
    ["balloon", `${r.size} pages (${mebibytes(r.size)}), target ${r.target} pages (${mebibytes(r.target)})`],
    [
      "rates",
      `non-sleeping allocations ${r.rateNosleepAlloc} pages/s, sleeping ${r.rateAlloc} pages/s (${mebibytes(r.rateAlloc)}/s), releases ${r.rateFree} pages/s (${mebibytes(r.rateFree)}/s)`,
    ],
    [
      "commands",
      `LOCK ${counted(paint, s.lock, s.lockFail)}, UNLOCK ${counted(paint, s.unlock, s.unlockFail)}, GET_TARGET ${counted(paint, s.target, s.targetFail)}, START ${counted(paint, s.start, s.startFail)}, GUEST_ID ${counted(paint, s.guestType, s.guestTypeFail)}`,
    ],
    [
      "pages",
      `allocated non-sleeping ${counted(paint, s.alloc, s.allocFail)}, sleeping ${counted(paint, s.sleepAlloc, s.sleepAllocFail)}; freed ${s.free}; refused by the host ${s.refusedAlloc}, of them released ${s.refusedFree}`,
    ],
    ["timer", `${s.timer} runs`],
  ];
}

function modernSummary(r: ModernRecord, paint: Paint): [string, string][] {
  const caps = (mask: bigint) => `0x${mask.toString(16)}${mask ? ` (${capabilityNames(mask).join(", ")})` : ""}`;
  const pages = PAGE_SIZE_NAMES.map((size): [string, string] => [
    `pages ${size}`,
    `allocated ${counted(paint, r.pages.alloc[size], r.pages.allocFail[size])}, freed ${r.pages.free[size]}, refused by the host ${r.pages.refusedAlloc[size]}, of them released ${r.pages.refusedFree[size]}`,
  ]);
  return [
    [
      "balloon",
      `${r.size} pages (${mebibytes(r.size)}), target ${r.target} pages (${mebibytes(r.target)})${r.resetRequired ? paint("yellow", "; resetting") : ""}`,
    ],
    ["caps", `used ${caps(r.usedCapabilities)} of ${caps(r.balloonCapabilities)}`],
    ["commands", MODERN_COMMAND_LABELS.map((name) => `${name} ${counted(paint, r.commands[name].total, r.commands[name].failed)}`).join(", ")],
    ...pages,
    [
      "general",
      MODERN_GENERAL_STAT_NAMES.filter((name) => r.general[name] !== undefined)
        .map((name) => `${name} ${r.general[name]}`)
        .join(", "),
    ],
  ];
}
