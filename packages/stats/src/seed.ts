import { STAT_NAMES, type BalloonStats, type StatName } from "@vmballoon/protocol";
import type { LineReader } from "./lines.js";
import { lineTemplate, type LineTemplate } from "./lines.js";
import { render } from "./printf.js";

/**
 * The numbers of the seed's `vmmemctl` (`vmballoon_debug_show` of
 * vmw_balloon 1.2.1.3-k; FreeBSD's `vm.vmmemctl` prints the same layout).
 * All values are the driver's `unsigned int`s, 0 … 2^32 - 1, as plain numbers.
 */
export interface SeedRecord {
  readonly layout: "seed";
  /** Balloon target, in pages. */
  readonly target: number;
  /** Balloon size, in pages (the text's `current`). */
  readonly size: number;
  /** Rate of nosleep allocations (the text's `rateNoSleepAlloc`): always NOSLEEP_ALLOC_MAX (16384) in the seed, but printed. */
  readonly rateNosleepAlloc: number;
  /** Rate of cansleep allocations, in pages per second (the seed's `rate_alloc`, the text's `rateSleepAlloc`). */
  readonly rateAlloc: number;
  /** Rate of releases, in pages per second. */
  readonly rateFree: number;
  /** The eighteen counters of `struct vmballoon_stats`, under the trace format's names. */
  readonly stats: BalloonStats;
}

type SizeField = "target" | "size" | "rateNosleepAlloc" | "rateAlloc" | "rateFree";

interface SeedLine {
  readonly template: LineTemplate;
  /** What the line holds, for error messages. */
  readonly what: string;
  readonly size?: SizeField;
  readonly stats?: readonly StatName[];
}

function seedLine(format: string, what: string, fields: { size?: SizeField; stats?: readonly StatName[] } = {}): SeedLine {
  return { template: lineTemplate(format), what, ...fields };
}

/**
 * The seed's `vmballoon_debug_show`, one entry per line, with its format
 * strings as the C has them (three `seq_printf` calls, split at `\n`).
 */
const SEED_LINES: readonly SeedLine[] = [
  seedLine("target:             %8d pages\n", "the balloon's target", { size: "target" }),
  seedLine("current:            %8d pages\n", "the balloon's size", { size: "size" }),
  seedLine("rateNoSleepAlloc:   %8d pages/sec\n", "the rate of non-sleeping allocations", { size: "rateNosleepAlloc" }),
  seedLine("rateSleepAlloc:     %8d pages/sec\n", "the rate of sleeping allocations", { size: "rateAlloc" }),
  seedLine("rateFree:           %8d pages/sec\n", "the rate of releases", { size: "rateFree" }),
  seedLine("\n", "an empty line"),
  seedLine("timer:              %8u\n", "the timer counter", { stats: ["timer"] }),
  seedLine("start:              %8u (%4u failed)\n", "the START counters", { stats: ["start", "startFail"] }),
  seedLine("guestType:          %8u (%4u failed)\n", "the GUEST_ID counters", { stats: ["guestType", "guestTypeFail"] }),
  seedLine("lock:               %8u (%4u failed)\n", "the LOCK counters", { stats: ["lock", "lockFail"] }),
  seedLine("unlock:             %8u (%4u failed)\n", "the UNLOCK counters", { stats: ["unlock", "unlockFail"] }),
  seedLine("target:             %8u (%4u failed)\n", "the GET_TARGET counters", { stats: ["target", "targetFail"] }),
  seedLine("primNoSleepAlloc:   %8u (%4u failed)\n", "the non-sleeping allocation counters", { stats: ["alloc", "allocFail"] }),
  seedLine("primCanSleepAlloc:  %8u (%4u failed)\n", "the sleeping allocation counters", { stats: ["sleepAlloc", "sleepAllocFail"] }),
  seedLine("primFree:           %8u\n", "the freed pages counter", { stats: ["free"] }),
  seedLine("errAlloc:           %8u\n", "the refused pages counter", { stats: ["refusedAlloc"] }),
  seedLine("errFree:            %8u\n", "the released refused pages counter", { stats: ["refusedFree"] }),
];

const U32_MAX = 0xffffffff;

function checkU32(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new RangeError(`${name}: ${String(value)} is not an unsigned 32-bit integer (0 to ${U32_MAX})`);
  }
  return value;
}

/**
 * The exact text of the seed's `vmballoon_debug_show` for a record: `%8d`
 * for the sizes and rates (so 2^31 or more prints negative), `%8u` and `%4u`
 * for the counters (which widen past their columns).
 *
 * @throws RangeError when a value is not an unsigned 32-bit integer.
 */
export function formatSeed(record: SeedRecord): string {
  let text = "";
  for (const line of SEED_LINES) {
    const args: number[] = [];
    if (line.size) args.push(checkU32(record[line.size], line.size));
    for (const name of line.stats ?? []) args.push(checkU32(record.stats[name], `stats.${name}`));
    text += `${render(line.template, args, { hexZero: "0" })}\n`;
  }
  return text;
}

/** Reads the seed's layout from the first line on. */
export function parseSeedLines(reader: LineReader): SeedRecord {
  const sizes: Partial<Record<SizeField, number>> = {};
  const stats: Partial<Record<StatName, number>> = {};
  for (const line of SEED_LINES) {
    const { values } = reader.read(line.template, line.what);
    if (line.size) sizes[line.size] = Number(values[0]);
    line.stats?.forEach((name, i) => {
      stats[name] = Number(values[i]);
    });
  }
  reader.end("seed");
  // Key order: the trace format's.
  const ordered = Object.fromEntries(STAT_NAMES.map((name) => [name, stats[name]!])) as BalloonStats;
  return {
    layout: "seed",
    target: sizes.target!,
    size: sizes.size!,
    rateNosleepAlloc: sizes.rateNosleepAlloc!,
    rateAlloc: sizes.rateAlloc!,
    rateFree: sizes.rateFree!,
    stats: ordered,
  };
}
