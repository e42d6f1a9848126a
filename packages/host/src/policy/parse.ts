/**
 * Reading one round's input (HOST.md "Policy rounds: input and output") from
 * JSON, checked field by field: anything else is a {@link PolicyInputError}
 * whose one-line message names the field.
 */
import { InputError } from "@vmballoon/core/sim";
import {
  ESX_STATES,
  POLICY_DEFAULTS,
  POLICY_NAMES,
  type DriverName,
  type EsxState,
  type PolicyHost,
  type PolicyInput,
  type PolicyName,
  type PolicyVm,
} from "./types.js";

/** A round's input that breaks a rule: `field` names what is wrong (`vms[2].shares`), empty for the whole document. */
export class PolicyInputError extends InputError {
  override readonly name = "PolicyInputError";
  readonly code = "E_POLICY_INPUT";
}

type Json = Record<string, unknown>;

const DRIVERS: readonly DriverName[] = ["seed", "modern", "none"];
const HOST_KEYS = ["pages", "overheadPages", "free", "state", "freeSamples"] as const;
const VM_KEYS = [
  "name",
  "pages",
  "reservation",
  "limit",
  "shares",
  "driver",
  "balloon",
  "target",
  "backed",
  "swapped",
  "active",
  "guestFree",
  "balloonSamples",
  "guestFreeSamples",
] as const;

/** A value in a message: short, and never a whole object. */
function shown(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return "an array";
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value);
  return "an object";
}

function object(value: unknown, field: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PolicyInputError(field, `must be ${field ? "an object" : "a JSON object at the top level"}, not ${shown(value)}`);
  }
  return value as Json;
}

function onlyKeys(value: Json, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new PolicyInputError(at(field, key), `unknown key (expected ${allowed.join(", ")})`);
  }
}

function at(field: string, key: string): string {
  return field ? `${field}.${key}` : key;
}

/** A whole number from `min` to `max`; negative ones too when `min` is. */
function whole(value: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    const noMin = min === -Number.MAX_SAFE_INTEGER;
    const noMax = max === Number.MAX_SAFE_INTEGER;
    const range = noMax ? (noMin ? "" : ` ≥ ${min}`) : noMin ? ` ≤ ${max}` : ` from ${min} to ${max}`;
    throw new PolicyInputError(field, `must be a whole number${range}, not ${shown(value)}`);
  }
  return value;
}

/** A finite number in [min, max] (or [min, max) when `belowMax`). */
function fraction(value: unknown, field: string, min: number, max: number, belowMax = false): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || (belowMax ? value >= max : value > max)) {
    throw new PolicyInputError(field, `must be a number from ${min} to ${belowMax ? "below " : ""}${max}, not ${shown(value)}`);
  }
  return value;
}

function wholes(value: unknown, field: string, min: number, max: number): number[] {
  if (!Array.isArray(value)) throw new PolicyInputError(field, `must be an array of whole numbers, not ${shown(value)}`);
  return value.map((v, i) => whole(v, `${field}[${i}]`, min, max));
}

function oneOf<T extends string>(value: unknown, field: string, choices: readonly T[]): T {
  if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
    throw new PolicyInputError(field, `must be one of ${choices.join(", ")}, not ${shown(value)}`);
  }
  return value as T;
}

const ANY = -Number.MAX_SAFE_INTEGER;

/** How each parameter is checked. */
const PARAM_RULES: { readonly [P in PolicyName]: { readonly [K in keyof (typeof POLICY_DEFAULTS)[P]]: (v: unknown, field: string) => number } } = {
  esx: {
    idleTax: (v, f) => fraction(v, f, 0, 1, true),
    samplePeriod: (v, f) => whole(v, f, 1),
    samplePages: (v, f) => whole(v, f, 1),
    fastGain: (v, f) => fraction(v, f, 0, 1),
    slowGain: (v, f) => fraction(v, f, 0, 1),
    interval: (v, f) => whole(v, f, 1),
    ctlMaxPercent: (v, f) => fraction(v, f, 0, 100),
    highPercent: (v, f) => fraction(v, f, 0, 100),
    softPercent: (v, f) => fraction(v, f, 0, 100),
    hardPercent: (v, f) => fraction(v, f, 0, 100),
    lowPercent: (v, f) => fraction(v, f, 0, 100),
    chunkPages: (v, f) => whole(v, f, 1),
  },
  mom: {
    interval: (v, f) => whole(v, f, 1),
    sampleInterval: (v, f) => whole(v, f, 1),
    historyLength: (v, f) => whole(v, f, 1),
    pressure_threshold: (v, f) => fraction(v, f, Number.MIN_VALUE, 1),
    pressure_critical: (v, f) => fraction(v, f, 0, 1),
    min_guest_free_percent: (v, f) => fraction(v, f, 0, 1),
    max_balloon_change_percent: (v, f) => fraction(v, f, 0, 1),
    min_balloon_change_percent: (v, f) => fraction(v, f, 0, 1),
  },
  proxmox: {
    interval: (v, f) => whole(v, f, 1),
    targetPercent: (v, f) => whole(v, f, 0, 100),
  },
};

/**
 * Checks one policy's `params` (only what differs from its defaults) and
 * returns them. Exported for the host scenario's `policy` object and events,
 * whose fields are the same.
 */
export function parsePolicyParams(policy: PolicyName, value: unknown, field = "params"): Record<string, number> {
  const p = object(value, field);
  const rules = PARAM_RULES[policy] as Record<string, (v: unknown, field: string) => number>;
  onlyKeys(p, field, Object.keys(rules));
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(p)) out[key] = rules[key]!(v, at(field, key));
  if (policy === "esx") {
    const all = { ...POLICY_DEFAULTS.esx, ...out };
    const order = ["highPercent", "softPercent", "hardPercent", "lowPercent"] as const;
    for (let i = 1; i < order.length; i++) {
      const [upper, lower] = [order[i - 1]!, order[i]!];
      if (all[lower] > all[upper]) {
        const key = lower in out ? lower : upper;
        throw new PolicyInputError(at(field, key), `${lower} (${all[lower]}) must not be above ${upper} (${all[upper]})`);
      }
    }
  }
  return out;
}

function host(value: unknown, policy: PolicyName): PolicyHost {
  const h = object(value, "host");
  onlyKeys(h, "host", HOST_KEYS);
  const pages = whole(h.pages, "host.pages", 1);
  const overheadPages = whole(h.overheadPages, "host.overheadPages", 0, pages);
  const free = whole(h.free, "host.free", ANY, pages - overheadPages);
  let state: EsxState | null;
  if (policy === "esx") state = oneOf(h.state, "host.state", ESX_STATES);
  else state = h.state === null ? null : oneOf(h.state, "host.state", ESX_STATES);
  const freeSamples = wholes(h.freeSamples, "host.freeSamples", ANY, pages - overheadPages);
  return { pages, overheadPages, free, state, freeSamples };
}

function vm(value: unknown, field: string): PolicyVm {
  const v = object(value, field);
  onlyKeys(v, field, VM_KEYS);
  const f = (key: string) => at(field, key);
  if (typeof v.name !== "string" || v.name === "") throw new PolicyInputError(f("name"), `must be a name (a string that is not empty), not ${shown(v.name)}`);
  const name = v.name;
  const pages = whole(v.pages, f("pages"), 1);
  const limit = whole(v.limit, f("limit"), 0, pages);
  const reservation = whole(v.reservation, f("reservation"), 0, limit);
  const shares = whole(v.shares, f("shares"));
  const driver = oneOf(v.driver, f("driver"), DRIVERS);
  const balloon = whole(v.balloon, f("balloon"), 0, pages);
  const target = whole(v.target, f("target"), 0, pages);
  const backed = whole(v.backed, f("backed"), 0, pages - balloon);
  const swapped = whole(v.swapped, f("swapped"), 0, pages - balloon - backed);
  const active = fraction(v.active, f("active"), 0, 1);
  const guestFree = whole(v.guestFree, f("guestFree"), 0, pages);
  const balloonSamples = wholes(v.balloonSamples, f("balloonSamples"), 0, pages);
  const guestFreeSamples = wholes(v.guestFreeSamples, f("guestFreeSamples"), 0, pages);
  if (guestFreeSamples.length !== balloonSamples.length) {
    throw new PolicyInputError(
      f("guestFreeSamples"),
      `has ${guestFreeSamples.length} samples and balloonSamples ${balloonSamples.length}: they are taken together, so their lengths must be equal`,
    );
  }
  return { name, pages, reservation, limit, shares, driver, balloon, target, backed, swapped, active, guestFree, balloonSamples, guestFreeSamples };
}

/** Checks a parsed JSON value as one round's input. */
export function validatePolicyInput(value: unknown): PolicyInput {
  const doc = object(value, "");
  onlyKeys(doc, "", ["policy", "params", "host", "vms"]);
  const policy = oneOf(doc.policy, "policy", POLICY_NAMES);
  const params = parsePolicyParams(policy, doc.params ?? {});
  const h = host(doc.host, policy);
  if (!Array.isArray(doc.vms)) throw new PolicyInputError("vms", `must be an array of VMs, not ${shown(doc.vms)}`);
  const names = new Set<string>();
  const vms = doc.vms.map((item, i) => {
    const parsed = vm(item, `vms[${i}]`);
    if (names.has(parsed.name)) throw new PolicyInputError(`vms[${i}].name`, `${shown(parsed.name)} is already the name of an earlier VM`);
    names.add(parsed.name);
    return parsed;
  });
  return { policy, params, host: h, vms };
}

/**
 * Reads one round's input from JSON text. Every message starts with `name`
 * (a file's name, `stdin`), then the field: `round.json: vms[2].shares: …`.
 */
export function parsePolicyInput(text: string, name: string): PolicyInput {
  try {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
      throw new PolicyInputError("", `not JSON: ${why}`, { cause: error });
    }
    return validatePolicyInput(value);
  } catch (error) {
    if (error instanceof PolicyInputError) error.message = `${name}: ${error.message}`;
    throw error;
  }
}
