import { CAPABILITIES, PAGE_SIZE, PAGE_SIZE_NAMES } from "@vmballoon/protocol";
import { MODERN_COMMAND_IDS, MODERN_COMMAND_LABELS, type ModernRecord } from "./modern.js";
import type { VmmemctlRecord } from "./parse.js";
import type { SeedRecord } from "./seed.js";

/**
 * The Prometheus text exposition format (version 0.0.4) of a record, for a
 * scrape or for node_exporter's textfile collector (node_exporter itself has
 * no balloon metric). Sizes are in bytes; counters end in `_total` and carry
 * labels for the operation and its result.
 */

type Labels = Readonly<Record<string, string>>;

/** One sample of a metric family: its labels (none by default) and its value. */
export interface MetricSample {
  readonly labels?: Labels;
  readonly value: bigint | number;
}

/** A metric family: its name (without {@link METRIC_PREFIX} here), help, type and samples. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: "gauge" | "counter";
  readonly samples: readonly MetricSample[];
}

type Sample = MetricSample;
type Family = MetricFamily;

/** Every metric's name starts with this. */
export const METRIC_PREFIX = "vmware_balloon_";

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/**
 * Metric families in the text exposition format, each name prefixed with
 * `prefix` ({@link METRIC_PREFIX} for the balloon's own): for a program that
 * serves the balloon's metrics with some of its own (`vmballoon exporter`).
 */
export function formatMetricFamilies(families: readonly MetricFamily[], prefix = METRIC_PREFIX): string {
  let out = "";
  for (const family of families) {
    const name = prefix + family.name;
    out += `# HELP ${name} ${escapeHelp(family.help)}\n# TYPE ${name} ${family.type}\n`;
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels ?? {});
      const labelText = labels.length === 0 ? "" : `{${labels.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`;
      out += `${name}${labelText} ${sample.value.toString()}\n`;
    }
  }
  return out;
}

/**
 * Successes of an operation counted as attempts and failures. The driver's
 * counters wrap (at 2^32 in the seed, 2^64 in the modern driver), so the
 * difference is taken modulo that: it is right as long as the attempts
 * counter has not wrapped twice more than the failures counter.
 */
function successes(total: bigint, failures: bigint, bits: number): bigint {
  return BigInt.asUintN(bits, total - failures);
}

function withResult(labels: Labels, total: bigint, failures: bigint, bits: number): Sample[] {
  return [
    { labels: { ...labels, result: "success" }, value: successes(total, failures, bits) },
    { labels: { ...labels, result: "failure" }, value: failures },
  ];
}

/** Label values for the commands: the protocol's names, in lower case. */
const commandLabel = (id: string) => id.toLowerCase();

const COMMON_HELP = {
  info: "The layout of the vmmemctl text read: seed (vmw_balloon 1.2.1.3-k, FreeBSD) or modern (Linux 4.20 and later).",
  target: "The balloon's target size, set by the host.",
  size: "The balloon's size: guest memory handed to the host.",
  commands: "Balloon commands sent to the host, by command and result.",
  allocations: "Guest page allocations made to inflate the balloon, by result.",
  freed: "Ballooned pages given back to the guest.",
  refused: "Allocated pages the host refused to take.",
  refusedReleased: "Refused pages given back to the guest.",
  timer: "Runs of the balloon's periodic work.",
} as const;

function seedFamilies(record: SeedRecord): Family[] {
  const s = record.stats;
  const page = BigInt(PAGE_SIZE);
  const b = (value: number) => BigInt(value);
  const command = (id: string, total: number, failures: number) => withResult({ command: commandLabel(id) }, b(total), b(failures), 32);
  return [
    { name: "info", help: COMMON_HELP.info, type: "gauge", samples: [{ labels: { layout: "seed" }, value: 1 }] },
    { name: "target_bytes", help: COMMON_HELP.target, type: "gauge", samples: [{ value: b(record.target) * page }] },
    { name: "size_bytes", help: COMMON_HELP.size, type: "gauge", samples: [{ value: b(record.size) * page }] },
    {
      name: "rate_limit_bytes_per_second",
      help: "The balloon's rate limits: allocations by flavour (nosleep never waits for memory; cansleep may), and releases.",
      type: "gauge",
      samples: [
        { labels: { operation: "alloc", flavour: "nosleep" }, value: b(record.rateNosleepAlloc) * page },
        { labels: { operation: "alloc", flavour: "cansleep" }, value: b(record.rateAlloc) * page },
        { labels: { operation: "free" }, value: b(record.rateFree) * page },
      ],
    },
    {
      name: "commands_total",
      help: COMMON_HELP.commands,
      type: "counter",
      samples: [
        ...command("START", s.start, s.startFail),
        ...command("GUEST_ID", s.guestType, s.guestTypeFail),
        ...command("LOCK", s.lock, s.lockFail),
        ...command("UNLOCK", s.unlock, s.unlockFail),
        ...command("GET_TARGET", s.target, s.targetFail),
      ],
    },
    {
      name: "page_allocations_total",
      help: `${COMMON_HELP.allocations} Flavour nosleep never waits for memory; cansleep may (under memory pressure).`,
      type: "counter",
      samples: [
        ...withResult({ page_size: "4k", flavour: "nosleep" }, b(s.alloc), b(s.allocFail), 32),
        ...withResult({ page_size: "4k", flavour: "cansleep" }, b(s.sleepAlloc), b(s.sleepAllocFail), 32),
      ],
    },
    { name: "pages_freed_total", help: COMMON_HELP.freed, type: "counter", samples: [{ labels: { page_size: "4k" }, value: b(s.free) }] },
    { name: "refused_pages_total", help: COMMON_HELP.refused, type: "counter", samples: [{ labels: { page_size: "4k" }, value: b(s.refusedAlloc) }] },
    {
      name: "refused_pages_released_total",
      help: COMMON_HELP.refusedReleased,
      type: "counter",
      samples: [{ labels: { page_size: "4k" }, value: b(s.refusedFree) }],
    },
    { name: "timer_runs_total", help: COMMON_HELP.timer, type: "counter", samples: [{ value: b(s.timer) }] },
  ];
}

function modernFamilies(record: ModernRecord): Family[] {
  const page = BigInt(PAGE_SIZE);
  const perSize = (counters: ModernRecord["pages"]["alloc"]) => PAGE_SIZE_NAMES.map((size) => ({ labels: { page_size: size }, value: counters[size] }));
  const capabilitySamples = Object.entries(CAPABILITIES).flatMap(([name, bit]) =>
    (["driver", "used"] as const).map((set) => ({
      labels: { capability: name.toLowerCase(), set },
      value: ((set === "driver" ? record.balloonCapabilities : record.usedCapabilities) & BigInt(bit)) === 0n ? 0 : 1,
    })),
  );
  const families: Family[] = [
    { name: "info", help: COMMON_HELP.info, type: "gauge", samples: [{ labels: { layout: "modern" }, value: 1 }] },
    { name: "target_bytes", help: COMMON_HELP.target, type: "gauge", samples: [{ value: record.target * page }] },
    { name: "size_bytes", help: COMMON_HELP.size, type: "gauge", samples: [{ value: record.size * page }] },
    {
      name: "resetting",
      help: "1 while the host has asked for a reset that has not happened yet.",
      type: "gauge",
      samples: [{ value: record.resetRequired ? 1 : 0 }],
    },
    {
      name: "capability",
      help: "Protocol capabilities: those the driver has (set=driver) and those the host agreed to (set=used).",
      type: "gauge",
      samples: capabilitySamples,
    },
    {
      name: "commands_total",
      help: COMMON_HELP.commands,
      type: "counter",
      samples: MODERN_COMMAND_LABELS.flatMap((name) =>
        withResult({ command: commandLabel(MODERN_COMMAND_IDS[name]) }, record.commands[name].total, record.commands[name].failed, 64),
      ),
    },
    {
      name: "page_allocations_total",
      help: COMMON_HELP.allocations,
      type: "counter",
      samples: PAGE_SIZE_NAMES.flatMap((size) => withResult({ page_size: size }, record.pages.alloc[size], record.pages.allocFail[size], 64)),
    },
    { name: "pages_freed_total", help: COMMON_HELP.freed, type: "counter", samples: perSize(record.pages.free) },
    { name: "refused_pages_total", help: COMMON_HELP.refused, type: "counter", samples: perSize(record.pages.refusedAlloc) },
    { name: "refused_pages_released_total", help: COMMON_HELP.refusedReleased, type: "counter", samples: perSize(record.pages.refusedFree) },
    { name: "timer_runs_total", help: COMMON_HELP.timer, type: "counter", samples: [{ value: record.general.timer }] },
    {
      name: "doorbell_wakeups_total",
      help: "Wake-ups of the balloon by the host's VMCI doorbell.",
      type: "counter",
      samples: [{ value: record.general.doorbell }],
    },
    { name: "resets_total", help: "Resets of the balloon asked for by the host.", type: "counter", samples: [{ value: record.general.reset }] },
  ];
  if (record.general.shrink !== undefined) {
    families.push({
      name: "shrinker_runs_total",
      help: "Runs of the balloon's memory shrinker (drivers that have one).",
      type: "counter",
      samples: [{ value: record.general.shrink }],
    });
  }
  if (record.general.shrinkFree !== undefined) {
    families.push({
      name: "shrinker_freed_bytes_total",
      help: "Memory the shrinker took back from the balloon (drivers that have one).",
      type: "counter",
      samples: [{ value: record.general.shrinkFree * page }],
    });
  }
  return families;
}

/**
 * A record in the Prometheus text exposition format: metrics named
 * `vmware_balloon_*`, sizes in bytes, counters as `*_total` with labels
 * (`command` and `result`; `page_size`, and `flavour` for the seed's two
 * allocation flavours, `nosleep` and `cansleep`, on the allocation counters
 * and rates alike). Ends with a newline, as node_exporter's textfile
 * collector wants. Counter values are exact integers (64-bit in the modern
 * layout); a Prometheus server reads them as doubles.
 */
export function toPrometheus(record: VmmemctlRecord): string {
  return formatMetricFamilies(record.layout === "seed" ? seedFamilies(record) : modernFamilies(record));
}
