import { COMMANDS, MAX_PFN, commandNumber, type CommandName } from "@vmballoon/protocol";
import type { MonitorEvent } from "./event-schedule.js";
import type { GuestSpec } from "./guest.js";

/** One event of a scenario: applied just before its cycle runs. */
export interface ScenarioEvent extends MonitorEvent<CommandName> {
  readonly cycle: number;
}

/** A scenario of SIMULATION.md, validated. */
export interface Scenario {
  readonly cycles: number;
  readonly unload: boolean;
  readonly guest: GuestSpec;
  readonly events: readonly ScenarioEvent[];
}

/**
 * Input that breaks a rule, in one line that starts with where: `field` is a
 * field's path (`events[3].failNext.cmd`), a line (`line 7`), or empty for
 * the whole document. Each kind of input has its own subclass and `code`.
 */
export class InputError extends Error {
  constructor(
    readonly field: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(field ? `${field}: ${detail}` : detail, options);
  }
}

/** A scenario that is not valid: `field` names what is wrong. */
export class ScenarioError extends InputError {
  override readonly name = "ScenarioError";
  readonly code = "E_SCENARIO";
}

/** A JSON object being checked. */
export type Json = Record<string, unknown>;

const EVENT_ACTIONS = ["setTarget", "reset", "guestUse", "guestRelease", "refuse", "failNext"] as const;
const COMMAND_LIST = Object.keys(COMMANDS).join(", ");

export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  // Each of these has its own text; what is left is an object.
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" || typeof value === "symbol" || typeof value === "function") {
    return String(value);
  }
  return "an object";
}

/** The path of `key` inside `field` (the top level has the empty path). */
export function join(field: string, key: string): string {
  return field ? `${field}.${key}` : key;
}

export function object(value: unknown, field: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const what = field ? "an object" : "a JSON object at the top level";
    throw new ScenarioError(field, `expected ${what}, got ${describe(value)}`);
  }
  return value as Json;
}

export function onlyKeys(value: Json, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new ScenarioError(join(field, key), `unknown key (expected ${allowed.join(", ")})`);
    }
  }
}

export function count(value: Json, key: string, field: string, max = Number.MAX_SAFE_INTEGER): number {
  const at = join(field, key);
  const v = value[key];
  if (v === undefined) throw new ScenarioError(at, "missing");
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new ScenarioError(at, `expected a non-negative integer, got ${describe(v)}`);
  }
  if (v > max) throw new ScenarioError(at, `${v} is above ${max}`);
  return v;
}

export function flag(value: Json, key: string, field: string): boolean | undefined {
  const v = value[key];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw new ScenarioError(join(field, key), `expected true or false, got ${describe(v)}`);
  return v;
}

function guest(value: unknown): GuestSpec {
  const g = object(value, "guest");
  const keys = ["totalPages", "freePages", "firstPfn", "nosleepReserve", "sleepReserve"] as const;
  onlyKeys(g, "guest", keys);
  const totalPages = count(g, "totalPages", "guest", MAX_PFN);
  const freePages = count(g, "freePages", "guest", MAX_PFN);
  const firstPfn = count(g, "firstPfn", "guest", MAX_PFN);
  if (firstPfn + freePages > MAX_PFN) {
    throw new ScenarioError("guest.firstPfn", `firstPfn + freePages is ${firstPfn + freePages}, above ${MAX_PFN} (protocol 2 carries 32-bit frame numbers)`);
  }
  return { totalPages, freePages, firstPfn, ...guestReserves(g) };
}

/** A guest's two reserves, checked (both drivers' scenarios have them). */
export function guestReserves(g: Json): { readonly nosleepReserve: number; readonly sleepReserve: number } {
  return { nosleepReserve: count(g, "nosleepReserve", "guest"), sleepReserve: count(g, "sleepReserve", "guest") };
}

/**
 * What every driver's events share: an object of the keys `cycle` and
 * `actions`, a cycle not past the last, at least one action; and the actions
 * setTarget, reset, guestUse and guestRelease.
 */
export function commonEvent(value: unknown, field: string, cycles: number, actions: readonly string[]) {
  const e = object(value, field);
  onlyKeys(e, field, ["cycle", ...actions]);
  const cycle = count(e, "cycle", field);
  if (cycle > cycles) throw new ScenarioError(`${field}.cycle`, `cycle ${cycle} is past the scenario's last cycle (${cycles})`);
  if (!actions.some((key) => key in e)) {
    throw new ScenarioError(field, `no action (expected one of ${actions.join(", ")})`);
  }
  const out: { cycle: number; setTarget?: number; reset?: boolean; guestUse?: number; guestRelease?: number } = { cycle };
  if ("setTarget" in e) out.setTarget = count(e, "setTarget", field);
  const reset = flag(e, "reset", field);
  if (reset !== undefined) out.reset = reset;
  if ("guestUse" in e) out.guestUse = count(e, "guestUse", field);
  if ("guestRelease" in e) out.guestRelease = count(e, "guestRelease", field);
  return { e, out };
}

/** A `refuse` action: a frame and a status, which `checkStatus` may refuse (it throws). */
export function refuseAction(e: Json, field: string, checkStatus: (status: number, at: string) => void = () => {}) {
  const at = `${field}.refuse`;
  const r = object(e.refuse, at);
  onlyKeys(r, at, ["pfn", "status"]);
  const pfn = count(r, "pfn", at);
  const status = count(r, "status", at, 0xffffffff);
  checkStatus(status, `${at}.status`);
  return { pfn, status };
}

/** A `failNext` action: a command known to `commandNumber` (listed in `commands`), a count, a status `checkStatus` may refuse. */
export function failNextAction<Name extends string>(
  e: Json,
  field: string,
  commandNumber: (name: string) => number | undefined,
  commands: string,
  checkStatus: (status: number, at: string) => void = () => {},
) {
  const at = `${field}.failNext`;
  const f = object(e.failNext, at);
  onlyKeys(f, at, ["cmd", "count", "status"]);
  const cmd = f.cmd;
  if (cmd === undefined) throw new ScenarioError(`${at}.cmd`, "missing");
  if (typeof cmd !== "string" || commandNumber(cmd) === undefined) {
    throw new ScenarioError(`${at}.cmd`, `unknown command ${describe(cmd)} (expected ${commands})`);
  }
  const status = count(f, "status", at, 0xffffffff);
  checkStatus(status, `${at}.status`);
  return { cmd: cmd as Name, count: count(f, "count", at), status };
}

function event(value: unknown, field: string, cycles: number): ScenarioEvent {
  const { e, out } = commonEvent(value, field, cycles, EVENT_ACTIONS);
  const event: { -readonly [K in keyof ScenarioEvent]: ScenarioEvent[K] } = out;
  if ("refuse" in e) event.refuse = refuseAction(e, field);
  if ("failNext" in e) event.failNext = failNextAction<CommandName>(e, field, commandNumber, COMMAND_LIST);
  return event;
}

/** Checks a parsed scenario against every rule of SIMULATION.md. Throws {@link ScenarioError}. */
export function validateScenario(value: unknown): Scenario {
  const s = object(value, "");
  onlyKeys(s, "", ["cycles", "unload", "guest", "events"]);
  const cycles = count(s, "cycles", "");
  const unload = flag(s, "unload", "") ?? false;
  const { guest: g, events } = guestAndEvents(s, cycles, guest, event);
  return { cycles, unload, guest: g, events };
}

/** The `guest` and `events` every scenario has, in that order: the guest read by `readGuest`, each event by `readEvent`. */
export function guestAndEvents<Guest, Event>(
  s: Json,
  cycles: number,
  readGuest: (value: unknown) => Guest,
  readEvent: (value: unknown, field: string, cycles: number) => Event,
): { guest: Guest; events: Event[] } {
  if (s.guest === undefined) throw new ScenarioError("guest", "missing");
  const g = readGuest(s.guest);
  if (s.events === undefined) throw new ScenarioError("events", "missing");
  if (!Array.isArray(s.events)) throw new ScenarioError("events", `expected an array, got ${describe(s.events)}`);
  return { guest: g, events: s.events.map((e, i) => readEvent(e, `events[${i}]`, cycles)) };
}

/** Parses and validates a scenario file's text. Throws {@link ScenarioError}. */
export function parseScenario(text: string): Scenario {
  return validateScenario(parseJson(text));
}

/** A scenario file's text as JSON. Throws {@link ScenarioError}. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ScenarioError("", `not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}
