import {
  CAPABILITIES,
  MODERN_COMMAND_STAT_NAMES,
  MODERN_GENERAL_STAT_NAMES,
  PAGE_SIZE_NAMES,
  type ModernCommandStatName,
  type ModernGeneralStatName,
  type PageSizeName,
} from "@vmballoon/protocol";
import { lineTemplate, type LineReader, type LineTemplate } from "./lines.js";
import { render, type HexZero } from "./printf.js";

/**
 * The layout of today's Linux drivers (`vmw_balloon.c` since Linux 4.20,
 * 2018): capabilities, `is resetting`, 64-bit counters, batched and 2M
 * commands, and page counters per page size.
 */

/**
 * The labels of the commands' counters, in the order the text prints them
 * (the driver's `vmballoon_cmd_names`): `@vmballoon/protocol`'s
 * `MODERN_COMMAND_STAT_NAMES` (command number → label), as a list.
 */
export const MODERN_COMMAND_LABELS: readonly ModernCommandStatName[] = Object.values(MODERN_COMMAND_STAT_NAMES);

/** The backdoor command behind each label of the modern layout (`VMW_BALLOON_CMD_*`). */
export const MODERN_COMMAND_IDS = {
  start: "START",
  target: "GET_TARGET",
  lock: "LOCK",
  unlock: "UNLOCK",
  guestType: "GUEST_ID",
  batchLock: "BATCHED_LOCK",
  batchUnlock: "BATCHED_UNLOCK",
  "2m-lock": "BATCHED_2M_LOCK",
  "2m-unlock": "BATCHED_2M_UNLOCK",
  doorbellSet: "VMCI_DOORBELL_SET",
} as const satisfies Record<ModernCommandStatName, string>;

/**
 * The page counters (`VMW_BALLOON_PAGE_STAT_*`), in print order; each is kept
 * per page size. Named as the glossary names them, after the kernel's enum
 * and the seed's counters (`refusedAlloc`, `refusedFree`); the text prints
 * {@link MODERN_PAGE_STAT_LABELS} (`errAlloc`, `errFree`: `@vmballoon/protocol`'s
 * `MODERN_PAGE_STAT_NAMES`, the names of the trace's `pages`).
 */
export const MODERN_PAGE_COUNTERS = ["alloc", "allocFail", "refusedAlloc", "refusedFree", "free"] as const;
export type ModernPageCounterName = (typeof MODERN_PAGE_COUNTERS)[number];

/** How the text names each page counter (`vmballoon_stat_page_names`). */
export const MODERN_PAGE_STAT_LABELS: Readonly<Record<ModernPageCounterName, string>> = {
  alloc: "alloc",
  allocFail: "allocFail",
  refusedAlloc: "errAlloc",
  refusedFree: "errFree",
  free: "free",
};

/** A command's two counters: how often it was sent, and how often that failed. */
export interface CommandCounters {
  readonly total: bigint;
  readonly failed: bigint;
}

/** The general counters. `shrink` and `shrinkFree` are absent from drivers that predate the memory shrinker. */
export interface ModernGeneralStats {
  readonly timer: bigint;
  readonly doorbell: bigint;
  readonly reset: bigint;
  readonly shrink?: bigint;
  readonly shrinkFree?: bigint;
}

/** One counter per page size. */
export type PerPageSize = Readonly<Record<PageSizeName, bigint>>;

/**
 * The numbers of the modern `vmmemctl`. Every number is a bigint: the
 * counters are 64-bit (`atomic64_t`) and exceed 2^53.
 */
export interface ModernRecord {
  readonly layout: "modern";
  /** What the driver can do (`VMW_BALLOON_CAPABILITIES`, 32 bits), a mask of {@link CAPABILITIES}. */
  readonly balloonCapabilities: bigint;
  /** What the host agreed to at START (an `unsigned long`), a mask of {@link CAPABILITIES}. */
  readonly usedCapabilities: bigint;
  /** The host asked for a reset that has not happened yet (`b->reset_required`; the text's `is resetting`). */
  readonly resetRequired: boolean;
  /** Balloon target, in 4 KiB pages. */
  readonly target: bigint;
  /** Balloon size, in 4 KiB pages (the text's `current`). */
  readonly size: bigint;
  /** Per command: sent, and failed. Keyed by the layout's own labels, in {@link MODERN_COMMAND_LABELS} order. */
  readonly commands: Readonly<Record<ModernCommandStatName, CommandCounters>>;
  readonly general: ModernGeneralStats;
  /** Page counters, per page size (counts of pages of that size). */
  readonly pages: Readonly<Record<ModernPageCounterName, PerPageSize>>;
  /**
   * A `(N failed)` count printed after each page counter. No Linux driver we
   * know of prints it, but the conformance sample `modern-fresh.txt` has it;
   * present only for a text that had it, so that the text is reproduced.
   */
  readonly pagesFailed?: Readonly<Record<ModernPageCounterName, PerPageSize>>;
  /**
   * How `%#x` printed a capability mask of zero: `"0x0"` is what the
   * kernel's `vsnprintf` prints (the default: a record without it formats
   * as the kernel does), `"0"` what C's `printf` prints. Kept when a parsed
   * text showed it, so that the text is reproduced.
   */
  readonly hexZero?: HexZero;
}

// The modern driver's format strings, as its `vmballoon_debug_show` has them.
const CAPS = "%-22s: %#16x\n";
const USED_CAPS = "%-22s: %#16lx\n";
const FLAG = "%-22s: %16s\n";
const TARGET = "%-22s: %16lu\n";
const CURRENT = "%-22s: %16llu\n";
const COMMAND = "%-22s: %16llu (%llu failed)\n";
const GENERAL = "%-22s: %16llu\n";
const PAGE = "%-18s(%s): %16llu\n";
/** The page counter line of `modern-fresh.txt`, with a failed count as the commands have. */
const PAGE_WITH_FAILED = "%-18s(%s): %16llu (%llu failed)\n";

const lines = {
  balloonCapabilities: lineTemplate(CAPS, "balloon capabilities"),
  usedCapabilities: lineTemplate(USED_CAPS, "used capabilities"),
  resetRequired: lineTemplate(FLAG, "is resetting"),
  target: lineTemplate(TARGET, "target"),
  size: lineTemplate(CURRENT, "current"),
  commands: Object.fromEntries(MODERN_COMMAND_LABELS.map((name) => [name, lineTemplate(COMMAND, name)])) as Record<ModernCommandStatName, LineTemplate>,
  general: Object.fromEntries(MODERN_GENERAL_STAT_NAMES.map((name) => [name, lineTemplate(GENERAL, name)])) as Record<ModernGeneralStatName, LineTemplate>,
  page: Object.fromEntries(
    MODERN_PAGE_COUNTERS.map((name) => [
      name,
      Object.fromEntries(PAGE_SIZE_NAMES.map((size) => [size, lineTemplate(PAGE, MODERN_PAGE_STAT_LABELS[name], size)])),
    ]),
  ) as Record<ModernPageCounterName, Record<PageSizeName, LineTemplate>>,
  pageWithFailed: Object.fromEntries(
    MODERN_PAGE_COUNTERS.map((name) => [
      name,
      Object.fromEntries(PAGE_SIZE_NAMES.map((size) => [size, lineTemplate(PAGE_WITH_FAILED, MODERN_PAGE_STAT_LABELS[name], size)])),
    ]),
  ) as Record<ModernPageCounterName, Record<PageSizeName, LineTemplate>>,
};

function checkUnsigned(bits: 32 | 64, value: unknown, name: string): bigint {
  const max = (1n << BigInt(bits)) - 1n;
  if (typeof value !== "bigint" || value < 0n || value > max) {
    throw new RangeError(`${name}: ${String(value)} is not an unsigned ${bits}-bit bigint (0 to ${max})`);
  }
  return value;
}

const checkU64 = (value: unknown, name: string) => checkUnsigned(64, value, name);

/** Whether a record has the shrinker's general counters. */
function hasShrinker(general: ModernGeneralStats): boolean {
  return general.shrink !== undefined || general.shrinkFree !== undefined;
}

/**
 * The exact text of the modern driver's `vmballoon_debug_show` for a record.
 *
 * @throws RangeError when a value is not an unsigned 64-bit bigint, or when
 *   only one of `shrink` and `shrinkFree` is given.
 */
export function formatModern(record: ModernRecord): string {
  const options = { hexZero: record.hexZero ?? "0x0" } as const;
  const out: string[] = [];
  const line = (template: LineTemplate, args: readonly (bigint | string)[]) => out.push(render(template, args, options));
  // `%#x` of the driver's `int` constant: 32 bits, unlike the `unsigned long` of the used capabilities.
  line(lines.balloonCapabilities, [checkUnsigned(32, record.balloonCapabilities, "balloonCapabilities")]);
  line(lines.usedCapabilities, [checkU64(record.usedCapabilities, "usedCapabilities")]);
  line(lines.resetRequired, [record.resetRequired ? "y" : "n"]);
  line(lines.target, [checkU64(record.target, "target")]);
  line(lines.size, [checkU64(record.size, "size")]);
  for (const name of MODERN_COMMAND_LABELS) {
    const counters = record.commands[name];
    line(lines.commands[name], [checkU64(counters?.total, `commands.${name}.total`), checkU64(counters?.failed, `commands.${name}.failed`)]);
  }
  const general = record.general;
  if (hasShrinker(general) && (general.shrink === undefined || general.shrinkFree === undefined)) {
    throw new RangeError("general: shrink and shrinkFree come together (drivers with the memory shrinker) or not at all");
  }
  for (const name of MODERN_GENERAL_STAT_NAMES) {
    if ((name === "shrink" || name === "shrinkFree") && !hasShrinker(general)) continue;
    line(lines.general[name], [checkU64(general[name], `general.${name}`)]);
  }
  for (const name of MODERN_PAGE_COUNTERS) {
    for (const size of PAGE_SIZE_NAMES) {
      const value = checkU64(record.pages[name]?.[size], `pages.${name}.${size}`);
      if (record.pagesFailed) {
        line(lines.pageWithFailed[name][size], [value, checkU64(record.pagesFailed[name]?.[size], `pagesFailed.${name}.${size}`)]);
      } else {
        line(lines.page[name][size], [value]);
      }
    }
  }
  return `${out.join("\n")}\n`;
}

/** Reads the modern layout from the first line on. */
export function parseModernLines(reader: LineReader): ModernRecord {
  // The capability lines tell how this printf prints a zero `%#x` (if either is zero).
  const balloonCaps = reader.read(lines.balloonCapabilities, "the driver's capabilities");
  let hexZero = balloonCaps.hexZero;
  const usedCaps = reader.read(
    lines.usedCapabilities,
    hexZero === undefined ? "the capabilities in use" : `the capabilities in use (a zero printed as ${JSON.stringify(hexZero)}, as on line 1)`,
    { hexZero },
  );
  hexZero ??= usedCaps.hexZero;

  const resetting = reader.read(lines.resetRequired, "whether a reset is pending (y or n)", {
    accept: ([flag]) => flag === "y" || flag === "n",
  });
  const target = reader.read(lines.target, "the balloon's target").values[0] as bigint;
  const size = reader.read(lines.size, "the balloon's size").values[0] as bigint;

  const commands = {} as Record<ModernCommandStatName, CommandCounters>;
  for (const name of MODERN_COMMAND_LABELS) {
    const [total, failedCount] = reader.read(lines.commands[name], `the ${name} command's counters`).values as [bigint, bigint];
    commands[name] = { total, failed: failedCount };
  }

  const general: Partial<Record<ModernGeneralStatName, bigint>> = {};
  for (const name of MODERN_GENERAL_STAT_NAMES) {
    // Drivers that predate the memory shrinker go from `reset` straight to the page counters.
    if (name === "shrink" && !reader.peek()?.startsWith("shrink ")) break;
    general[name] = reader.read(lines.general[name], `the ${name} counter`).values[0] as bigint;
  }

  // The first page counter line tells whether these lines carry a failed count.
  const withFailed = / \(\d+ failed\)$/.test(reader.peek() ?? "");
  const pages = {} as Record<ModernPageCounterName, Record<PageSizeName, bigint>>;
  const pagesFailed = {} as Record<ModernPageCounterName, Record<PageSizeName, bigint>>;
  for (const name of MODERN_PAGE_COUNTERS) {
    pages[name] = {} as Record<PageSizeName, bigint>;
    pagesFailed[name] = {} as Record<PageSizeName, bigint>;
    for (const size of PAGE_SIZE_NAMES) {
      const what = `the ${MODERN_PAGE_STAT_LABELS[name]} (${size}) page counter${withFailed ? " with a failed count, as the first page counter has" : ""}`;
      const { values } = reader.read(withFailed ? lines.pageWithFailed[name][size] : lines.page[name][size], what);
      pages[name][size] = values[0] as bigint;
      if (withFailed) pagesFailed[name][size] = values[1] as bigint;
    }
  }
  reader.end("modern");

  return {
    layout: "modern",
    balloonCapabilities: balloonCaps.values[0] as bigint,
    usedCapabilities: usedCaps.values[0] as bigint,
    resetRequired: resetting.values[0] === "y",
    target,
    size,
    commands,
    general: general as ModernGeneralStats,
    pages,
    ...(withFailed ? { pagesFailed } : {}),
    ...(hexZero === undefined ? {} : { hexZero }),
  };
}

/** The names of the capability bits set in a mask, and the numbers of unknown bits. */
export function capabilityNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0n; mask >> bit !== 0n; bit++) {
    if (((mask >> bit) & 1n) === 0n) continue;
    const known = Object.entries(CAPABILITIES).find(([, value]) => BigInt(value) === 1n << bit);
    names.push(known ? known[0] : `bit${bit}`);
  }
  return names;
}
