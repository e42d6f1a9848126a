import type { BalloonStats } from "@vmballoon/protocol";

/**
 * The numbers of the seed's `vmmemctl` (`vmballoon_debug_show` of
 * vmw_balloon 1.2.1.3-k). All values are the driver's `unsigned int`s,
 * 0 … 2^32 - 1.
 */
export interface SeedRecord {
  readonly layout: "seed";
  /** Balloon target, in pages. */
  readonly target: number;
  /** Balloon size, in pages. */
  readonly current: number;
  /** Always NOSLEEP_ALLOC_MAX (16384) in the seed, but printed. */
  readonly rateNoSleepAlloc: number;
  readonly rateSleepAlloc: number;
  readonly rateFree: number;
  readonly stats: BalloonStats;
}

/** `%8d` of an `unsigned int`: values of 2^31 or more print negative. */
function signed8(value: number): string {
  return String(value | 0).padStart(8);
}

/** `%Nu` of an `unsigned int`: widens past its column. */
function unsigned(value: number, width: number): string {
  return String(value >>> 0).padStart(width);
}

/** The exact text of the seed's `vmballoon_debug_show`. */
export function formatSeed(record: SeedRecord): string {
  const s = record.stats;
  const withFailed = (total: number, failed: number) =>
    `${unsigned(total, 8)} (${unsigned(failed, 4)} failed)\n`;
  return (
    `target:             ${signed8(record.target)} pages\n` +
    `current:            ${signed8(record.current)} pages\n` +
    `rateNoSleepAlloc:   ${signed8(record.rateNoSleepAlloc)} pages/sec\n` +
    `rateSleepAlloc:     ${signed8(record.rateSleepAlloc)} pages/sec\n` +
    `rateFree:           ${signed8(record.rateFree)} pages/sec\n` +
    `\n` +
    `timer:              ${unsigned(s.timer, 8)}\n` +
    `start:              ${withFailed(s.start, s.startFail)}` +
    `guestType:          ${withFailed(s.guestType, s.guestTypeFail)}` +
    `lock:               ${withFailed(s.lock, s.lockFail)}` +
    `unlock:             ${withFailed(s.unlock, s.unlockFail)}` +
    `target:             ${withFailed(s.target, s.targetFail)}` +
    `primNoSleepAlloc:   ${withFailed(s.alloc, s.allocFail)}` +
    `primCanSleepAlloc:  ${withFailed(s.sleepAlloc, s.sleepAllocFail)}` +
    `primFree:           ${unsigned(s.free, 8)}\n` +
    `errAlloc:           ${unsigned(s.refusedAlloc, 8)}\n` +
    `errFree:            ${unsigned(s.refusedFree, 8)}\n`
  );
}
