/**
 * The VMware balloon's debugfs `vmmemctl` text, byte for byte: `format` and
 * `parse` for the seed's layout (vmw_balloon 1.2.1.3-k; FreeBSD's
 * `vm.vmmemctl`) and for today's Linux layout, and JSON and Prometheus views.
 *
 * @packageDocumentation
 */
export { format, parse } from "./parse.js";
export type { Layout, VmmemctlRecord } from "./parse.js";
export { formatSeed } from "./seed.js";
export type { SeedRecord } from "./seed.js";
// The modern layout's names of its own. The protocol's (CAPABILITIES, PAGE_SIZE_NAMES,
// MODERN_COMMAND_STAT_NAMES, MODERN_GENERAL_STAT_NAMES and their types) are imported from
// @vmballoon/protocol, not from here: one name, one home.
export { MODERN_COMMAND_IDS, MODERN_COMMAND_LABELS, MODERN_PAGE_COUNTERS, MODERN_PAGE_STAT_LABELS, capabilityNames, formatModern } from "./modern.js";
export type { CommandCounters, ModernGeneralStats, ModernPageCounterName, ModernRecord, PerPageSize } from "./modern.js";
export type { HexZero } from "./printf.js";
export { StatsParseError } from "./errors.js";
export { toJson } from "./json.js";
export type { CapabilitiesJson, ModernJson, SeedJson, VmmemctlJson } from "./json.js";
export { METRIC_PREFIX, formatMetricFamilies, toPrometheus } from "./prometheus.js";
export type { MetricFamily, MetricSample } from "./prometheus.js";
