import {
  MODERN_GENERAL_STAT_NAMES,
  PAGE_SIZE,
  PAGE_SIZE_NAMES,
  type BalloonStats,
  type ModernCommandStatName,
  type ModernGeneralStatName,
  type PageSizeName,
} from "@vmballoon/protocol";
import { MODERN_COMMAND_LABELS, MODERN_PAGE_COUNTERS, capabilityNames, type ModernPageCounterName, type ModernRecord, type PerPageSize } from "./modern.js";
import type { VmmemctlRecord } from "./parse.js";
import type { SeedRecord } from "./seed.js";

/**
 * The JSON view of a seed record: the record's own numbers (pages, and pages
 * per second for the rates), with the page size and the sizes in bytes.
 * Every value fits a JSON number exactly (at most 2^32 × 4096 < 2^53).
 */
export interface SeedJson {
  readonly layout: "seed";
  /** Bytes per page: 4096. */
  readonly pageSize: number;
  readonly target: number;
  readonly targetBytes: number;
  readonly size: number;
  readonly sizeBytes: number;
  readonly rateNosleepAlloc: number;
  readonly rateAlloc: number;
  readonly rateFree: number;
  readonly stats: BalloonStats;
}

/** A capability mask: as hex (`"0x3e"`), and the names of its bits. */
export interface CapabilitiesJson {
  readonly mask: string;
  readonly names: readonly string[];
}

/**
 * The JSON view of a modern record. The counters are 64-bit and exceed
 * 2^53, which a JSON number (an IEEE double to most readers) cannot hold
 * exactly: every 64-bit value is a decimal string, always, whatever its size
 * (as protobuf's JSON mapping does for uint64).
 */
export interface ModernJson {
  readonly layout: "modern";
  readonly pageSize: number;
  readonly target: string;
  readonly targetBytes: string;
  readonly size: string;
  readonly sizeBytes: string;
  readonly resetRequired: boolean;
  readonly balloonCapabilities: CapabilitiesJson;
  readonly usedCapabilities: CapabilitiesJson;
  readonly commands: Readonly<Record<ModernCommandStatName, { readonly total: string; readonly failed: string }>>;
  readonly general: Readonly<Partial<Record<ModernGeneralStatName, string>>>;
  readonly pages: Readonly<Record<ModernPageCounterName, Readonly<Record<PageSizeName, string>>>>;
  readonly pagesFailed?: Readonly<Record<ModernPageCounterName, Readonly<Record<PageSizeName, string>>>>;
}

export type VmmemctlJson = SeedJson | ModernJson;

function seedJson(record: SeedRecord): SeedJson {
  return {
    layout: "seed",
    pageSize: PAGE_SIZE,
    target: record.target,
    targetBytes: record.target * PAGE_SIZE,
    size: record.size,
    sizeBytes: record.size * PAGE_SIZE,
    rateNosleepAlloc: record.rateNosleepAlloc,
    rateAlloc: record.rateAlloc,
    rateFree: record.rateFree,
    stats: { ...record.stats },
  };
}

function perPageSize(counters: Readonly<Record<ModernPageCounterName, PerPageSize>>) {
  return Object.fromEntries(
    MODERN_PAGE_COUNTERS.map((name) => [name, Object.fromEntries(PAGE_SIZE_NAMES.map((size) => [size, counters[name][size].toString()]))]),
  ) as Record<ModernPageCounterName, Record<PageSizeName, string>>;
}

function capabilities(mask: bigint): CapabilitiesJson {
  return { mask: `0x${mask.toString(16)}`, names: capabilityNames(mask) };
}

function modernJson(record: ModernRecord): ModernJson {
  const page = BigInt(PAGE_SIZE);
  const general: Partial<Record<ModernGeneralStatName, string>> = {};
  for (const name of MODERN_GENERAL_STAT_NAMES) {
    const value = record.general[name];
    if (value !== undefined) general[name] = value.toString();
  }
  return {
    layout: "modern",
    pageSize: PAGE_SIZE,
    target: record.target.toString(),
    targetBytes: (record.target * page).toString(),
    size: record.size.toString(),
    sizeBytes: (record.size * page).toString(),
    resetRequired: record.resetRequired,
    balloonCapabilities: capabilities(record.balloonCapabilities),
    usedCapabilities: capabilities(record.usedCapabilities),
    commands: Object.fromEntries(
      MODERN_COMMAND_LABELS.map((name) => [name, { total: record.commands[name].total.toString(), failed: record.commands[name].failed.toString() }]),
    ) as ModernJson["commands"],
    general,
    pages: perPageSize(record.pages),
    ...(record.pagesFailed ? { pagesFailed: perPageSize(record.pagesFailed) } : {}),
  };
}

/**
 * A record as a JSON-ready object (no bigint inside): `JSON.stringify` it.
 * Seed records carry plain numbers; modern records carry their 64-bit
 * numbers as decimal strings. Both have `pageSize` and the sizes in bytes.
 */
export function toJson(record: VmmemctlRecord): VmmemctlJson {
  return record.layout === "seed" ? seedJson(record) : modernJson(record);
}
