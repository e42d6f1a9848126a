import { ScenarioError } from "@vmballoon/core/sim";
import { POLICY_DEFAULTS, POLICY_NAMES, type DriverName, type PolicyName } from "./policy/types.js";
import type { SeriesPoints } from "./series.js";
import { WorkloadError, parseWorkloadCsv } from "./workload-csv.js";

/** The drivers a VM may run: the seed's, today's, or none (the host can only swap it). */
const VM_DRIVERS: readonly DriverName[] = ["seed", "modern", "none"];

/** A VM's guest, as SIMULATION(-MODERN).md's scenarios describe it. */
export interface HostGuestSpec {
  readonly totalPages: number;
  readonly freePages: number;
  readonly firstPfn: number;
  readonly nosleepReserve: number;
  readonly sleepReserve: number;
  readonly huge: boolean;
}

/** A VM of a host scenario, its defaults filled in. */
export interface HostVmSpec {
  readonly name: string;
  readonly memMiB: number;
  readonly driver: DriverName;
  /** In pages. */
  readonly reservation: number;
  /** In pages. */
  readonly limit: number;
  readonly shares: number;
  readonly osMiB: number;
  readonly guest: HostGuestSpec;
  readonly demand: SeriesPoints;
  /** Absent: the demand. */
  readonly active?: SeriesPoints;
}

/** An event of a host scenario: policy parameters, or a VM's series, from its second on. */
export interface HostEvent {
  readonly second: number;
  readonly policy?: Readonly<Record<string, number>>;
  readonly vm?: string;
  readonly demand?: SeriesPoints;
  readonly active?: SeriesPoints;
}

/** A host scenario of HOST.md, validated, its defaults filled in. */
export interface HostScenario {
  readonly seconds: number;
  readonly unload: boolean;
  readonly seed: number;
  readonly host: { readonly memMiB: number; readonly overheadMiB: number; readonly swapMiBps: number };
  readonly policy: { readonly name: PolicyName; readonly params: Readonly<Record<string, number>> };
  readonly vms: readonly HostVmSpec[];
  readonly events: readonly HostEvent[];
}

/** How a scenario's `workload.csv` files are read (the CLI resolves them beside the scenario file). */
export interface HostScenarioOptions {
  readonly readFile?: (file: string) => string;
}

/** The policy parameters a scenario may set, by policy: those of its defaults. */
const POLICY_PARAMS: Readonly<Record<PolicyName, readonly string[]>> = {
  esx: Object.keys(POLICY_DEFAULTS.esx),
  mom: Object.keys(POLICY_DEFAULTS.mom),
  proxmox: Object.keys(POLICY_DEFAULTS.proxmox),
};

/** Parameters that count seconds or pages: whole numbers, at least 1. */
const WHOLE_PARAMS = new Set(["samplePeriod", "samplePages", "interval", "chunkPages", "sampleInterval", "historyLength"]);
/** Fractions of one. */
const UNIT_PARAMS = new Set(["fastGain", "slowGain"]);
/** Frames the modern guest keeps a handle of in 31 bits; the seed's in 32: the smaller bounds a VM. */
const MAX_VM_PAGES = 2 ** 31 - 1 - 4096;
const FIRST_PFN = 4096;

type Json = Record<string, unknown>;

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return `a ${typeof value}`;
}

function at(field: string, key: string | number): string {
  return typeof key === "number" ? `${field}[${key}]` : field ? `${field}.${key}` : key;
}

function object(value: unknown, field: string, keys: readonly string[]): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ScenarioError(field, `expected ${field ? "an object" : "a JSON object at the top level"}, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw new ScenarioError(at(field, key), `unknown key (expected ${keys.join(", ")})`);
  }
  return value as Json;
}

function array(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new ScenarioError(field, `expected an array, got ${describe(value)}`);
  return value;
}

/** A number at `o[key]` (default when absent, if one is given): finite, at least `min`, at most `max`, whole if asked. */
function num(o: Json, key: string, field: string, opts: { def?: number; min?: number; max?: number; whole?: boolean; above?: number }): number {
  const path = at(field, key);
  const v = o[key];
  if (v === undefined) {
    if (opts.def === undefined) throw new ScenarioError(path, "missing");
    return opts.def;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ScenarioError(path, `expected a number, got ${describe(v)}`);
  if (opts.whole && !Number.isInteger(v)) throw new ScenarioError(path, `expected a whole number, got ${v}`);
  if (v < (opts.min ?? 0)) throw new ScenarioError(path, `${v} is below ${opts.min ?? 0}`);
  if (opts.above !== undefined && v <= opts.above) throw new ScenarioError(path, `${v} is not above ${opts.above}`);
  if (opts.max !== undefined && v > opts.max) throw new ScenarioError(path, `${v} is above ${opts.max}`);
  return v;
}

function bool(o: Json, key: string, field: string, def: boolean): boolean {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== "boolean") throw new ScenarioError(at(field, key), `expected true or false, got ${describe(v)}`);
  return v;
}

/** A `[second, MiB]` series: at least one point, whole seconds strictly increasing, MiB not negative. */
function series(value: unknown, field: string): SeriesPoints {
  const points = array(value, field);
  if (points.length === 0) throw new ScenarioError(field, "expected at least one [second, MiB] point");
  return points.map((p, i) => {
    const path = at(field, i);
    if (!Array.isArray(p) || p.length !== 2) throw new ScenarioError(path, `expected a [second, MiB] pair, got ${describe(p)}`);
    const pair = { second: p[0] as unknown, MiB: p[1] as unknown };
    const second = num(pair, "second", path, { whole: true });
    const mib = num(pair, "MiB", path, {});
    if (i > 0 && second <= (points[i - 1] as number[])[0]!) throw new ScenarioError(`${path}.second`, `${second} does not follow the point before`);
    return [second, mib] as const;
  });
}

function params(o: Json, field: string, policy: PolicyName, skip: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(o)) {
    if (skip.includes(key)) continue;
    if (!POLICY_PARAMS[policy].includes(key))
      throw new ScenarioError(at(field, key), `not a parameter of ${policy} (expected ${POLICY_PARAMS[policy].join(", ")})`);
    const whole = WHOLE_PARAMS.has(key);
    if (key === "idleTax") out[key] = num(o, key, field, { max: 0.99 });
    else if (UNIT_PARAMS.has(key)) out[key] = num(o, key, field, { above: 0, max: 1 });
    else if (key.endsWith("Percent")) out[key] = num(o, key, field, { max: 100 });
    else if (whole) out[key] = num(o, key, field, { whole: true, min: 1 });
    else out[key] = num(o, key, field, {});
  }
  return out;
}

function vm(value: unknown, i: number, options: HostScenarioOptions): HostVmSpec {
  const field = `vms[${i}]`;
  const keys = ["name", "memMiB", "driver", "reservationMiB", "limitMiB", "shares", "osMiB", "guest", "demand", "active", "workload"];
  const o = object(value, field, keys);
  const name = o.name;
  if (typeof name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new ScenarioError(at(field, "name"), `expected a name of letters, digits, '.', '_' and '-' (up to 64, used as a file name), got ${describe(name)}`);
  }
  const memMiB = num(o, "memMiB", field, { whole: true, min: 1, max: Math.floor(MAX_VM_PAGES / 256) });
  const driver = o.driver ?? "seed";
  if (!VM_DRIVERS.includes(driver as DriverName)) throw new ScenarioError(at(field, "driver"), `expected seed, modern or none, got ${describe(driver)}`);
  const reservationMiB = num(o, "reservationMiB", field, { def: 0, max: memMiB });
  const limitMiB = num(o, "limitMiB", field, { def: memMiB, min: reservationMiB, max: memMiB });
  const shares = num(o, "shares", field, { def: memMiB * 10, whole: true });
  const osMiB = num(o, "osMiB", field, { def: Math.floor(memMiB / 16), whole: true, max: memMiB });
  const totalPages = memMiB * 256;
  const g = o.guest === undefined ? {} : object(o.guest, at(field, "guest"), ["nosleepReserve", "sleepReserve", "huge"]);
  const guest: HostGuestSpec = {
    totalPages,
    freePages: totalPages - osMiB * 256,
    firstPfn: FIRST_PFN,
    nosleepReserve: num(g, "nosleepReserve", at(field, "guest"), { def: Math.floor(totalPages / 32), whole: true }),
    sleepReserve: num(g, "sleepReserve", at(field, "guest"), { def: Math.floor(totalPages / 128), whole: true }),
    huge: bool(g, "huge", at(field, "guest"), true),
  };
  const base = {
    name,
    memMiB,
    driver: driver as DriverName,
    reservation: Math.floor(reservationMiB * 256),
    limit: Math.floor(limitMiB * 256),
    shares,
    osMiB,
    guest,
  };
  if (o.workload !== undefined) {
    if (o.demand !== undefined || o.active !== undefined)
      throw new ScenarioError(at(field, "workload"), "give either workload or demand (and active), not both");
    return { ...base, ...csvWorkload(o.workload, at(field, "workload"), options) };
  }
  if (o.demand === undefined) throw new ScenarioError(at(field, "demand"), "missing (or give workload: {csv})");
  const demand = series(o.demand, at(field, "demand"));
  return o.active === undefined ? { ...base, demand } : { ...base, demand, active: series(o.active, at(field, "active")) };
}

function csvWorkload(value: unknown, field: string, options: HostScenarioOptions): { demand: SeriesPoints; active?: SeriesPoints } {
  const w = object(value, field, ["csv", "activeRatio"]);
  const file = w.csv;
  if (typeof file !== "string" || file === "") throw new ScenarioError(at(field, "csv"), `expected a file name, got ${describe(file)}`);
  const activeRatio = num(w, "activeRatio", field, { def: 0.25, max: 1 });
  if (options.readFile === undefined) throw new ScenarioError(at(field, "csv"), "no workload files can be read here");
  let text: string;
  try {
    text = options.readFile(file);
  } catch (error) {
    // The reader's error keeps its kind (a missing file, a permission), named by the field.
    if (!(error instanceof Error)) throw new ScenarioError(at(field, "csv"), `${file}: ${String(error)}`);
    error.message = `${at(field, "csv")}: ${error.message}`;
    throw error;
  }
  try {
    return parseWorkloadCsv(text, activeRatio);
  } catch (error) {
    if (error instanceof WorkloadError) throw new ScenarioError(at(field, "csv"), `${file}: ${error.message}`, { cause: error });
    throw error;
  }
}

function event(value: unknown, i: number, seconds: number, policy: PolicyName, names: ReadonlySet<string>): HostEvent {
  const field = `events[${i}]`;
  const o = object(value, field, ["second", "policy", "vm", "demand", "active"]);
  const second = num(o, "second", field, { whole: true, max: seconds });
  const out: { -readonly [K in keyof HostEvent]: HostEvent[K] } = { second };
  if (o.policy !== undefined) out.policy = params(object(o.policy, at(field, "policy"), Object.keys(o.policy as object)), at(field, "policy"), policy, []);
  if (o.vm !== undefined) {
    if (typeof o.vm !== "string" || !names.has(o.vm)) throw new ScenarioError(at(field, "vm"), `no VM of that name: ${describe(o.vm)}`);
    out.vm = o.vm;
    if (o.demand === undefined && o.active === undefined) throw new ScenarioError(field, "a vm event without demand or active");
    if (o.demand !== undefined) out.demand = series(o.demand, at(field, "demand"));
    if (o.active !== undefined) out.active = series(o.active, at(field, "active"));
  } else if (o.demand !== undefined || o.active !== undefined) {
    throw new ScenarioError(at(field, "vm"), "missing: which VM's series this changes");
  }
  if (out.policy === undefined && out.vm === undefined) throw new ScenarioError(field, "no action (expected policy, or vm with demand or active)");
  return out;
}

/** Checks a parsed host scenario against every rule of HOST.md. Throws core's `ScenarioError` (field named, code E_SCENARIO). */
export function validateHostScenario(value: unknown, options: HostScenarioOptions = {}): HostScenario {
  const s = object(value, "", ["seconds", "unload", "seed", "host", "policy", "vms", "events"]);
  const seconds = num(s, "seconds", "", { whole: true, min: 1, max: 10 * 365 * 86400 });
  const unload = bool(s, "unload", "", false);
  const seed = num(s, "seed", "", { def: 1, whole: true, max: 0xffffffff });
  if (s.host === undefined) throw new ScenarioError("host", "missing");
  const h = object(s.host, "host", ["memMiB", "overheadMiB", "swapMiBps"]);
  const host = {
    memMiB: num(h, "memMiB", "host", { whole: true, min: 1, max: 2 ** 40 }),
    overheadMiB: num(h, "overheadMiB", "host", { def: 0, whole: true }),
    swapMiBps: num(h, "swapMiBps", "host", { def: 200 }),
  };
  if (host.overheadMiB > host.memMiB) throw new ScenarioError("host.overheadMiB", `${host.overheadMiB} is above host.memMiB (${host.memMiB})`);
  const p = s.policy === undefined ? { name: "esx" } : object(s.policy, "policy", ["name", ...Object.keys(s.policy as object).filter((k) => k !== "name")]);
  const name = p.name ?? "esx";
  if (!POLICY_NAMES.includes(name as PolicyName)) throw new ScenarioError("policy.name", `expected esx, mom or proxmox, got ${describe(name)}`);
  const policy = { name: name as PolicyName, params: params(p, "policy", name as PolicyName, ["name"]) };
  if (s.vms === undefined) throw new ScenarioError("vms", "missing");
  const list = array(s.vms, "vms");
  if (list.length === 0) throw new ScenarioError("vms", "expected at least one VM");
  const vms = list.map((v, i) => vm(v, i, options));
  const names = new Set<string>();
  vms.forEach((v, i) => {
    if (names.has(v.name)) throw new ScenarioError(`vms[${i}].name`, `${JSON.stringify(v.name)} is the name of an earlier VM`);
    names.add(v.name);
  });
  const events = s.events === undefined ? [] : array(s.events, "events").map((e, i) => event(e, i, seconds, policy.name, names));
  return { seconds, unload, seed, host, policy, vms, events };
}

/** Parses and validates a host scenario file's text. Throws core's `ScenarioError`. */
export function parseHostScenario(text: string, options: HostScenarioOptions = {}): HostScenario {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ScenarioError("", `not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return validateHostScenario(value, options);
}
