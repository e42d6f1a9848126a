import { NOSLEEP_ALLOC_MAX } from "@vmballoon/protocol";
import { formatSeed, type SeedRecord } from "@vmballoon/stats";
import type { BalloonSnapshot } from "./balloon.js";

/** The numbers the seed's `vmballoon_debug_show` prints for a balloon's state. */
export function seedRecord(snapshot: BalloonSnapshot): SeedRecord {
  return {
    layout: "seed",
    target: snapshot.target,
    size: snapshot.size,
    rateNosleepAlloc: NOSLEEP_ALLOC_MAX,
    rateAlloc: snapshot.rateAlloc,
    rateFree: snapshot.rateFree,
    stats: snapshot.stats,
  };
}

/** The seed's debugfs `vmmemctl` text for a balloon's state. */
export function debugfsText(snapshot: BalloonSnapshot): string {
  return formatSeed(seedRecord(snapshot));
}
