import {
  CAPABILITIES,
  DRIVER_CAPABILITIES,
  MODERN_COMMANDS,
  SUCCESS_WITH_CAPABILITIES,
  fitsBatchStatus,
  modernCommandNumber,
  type ModernCommandName,
} from "@vmballoon/protocol";
import type { ModernGuestSpec } from "./modern-guest.js";
import type { StartReply } from "./modern-monitor.js";
import {
  ScenarioError,
  commonEvent,
  count,
  guestReserves,
  describe,
  failNextAction,
  flag,
  guestAndEvents,
  join,
  object,
  onlyKeys,
  parseJson,
  refuseAction,
  type Json,
} from "./scenario.js";
import type { MonitorEvent } from "./event-schedule.js";

/** One event of a modern scenario: applied just before its cycle runs. */
export interface ModernScenarioEvent extends MonitorEvent<ModernCommandName> {
  readonly cycle: number;
  /** From now on a lock of this frame returns this status (1 to 31: it must fit a batch entry). */
  readonly refuse?: { readonly pfn: number; readonly status: number };
  /** Whether 2 MB allocations can succeed from now on. */
  readonly huge?: boolean;
  /** The host rings the doorbell. */
  readonly doorbell?: boolean;
  /** Compaction migrates this ballooned 4 KB frame. */
  readonly migrate?: number;
  /** One call of the shrinker core with this many objects to scan. */
  readonly shrink?: number;
  /** The debugfs file is read (and printed in the trace). */
  readonly debugfs?: boolean;
}

/** A scenario of SIMULATION-MODERN.md, validated. */
export interface ModernScenario {
  readonly cycles: number;
  readonly unload: boolean;
  /** Capabilities the host offers (0: a protocol 2 host). */
  readonly capabilities: number;
  readonly startReply: StartReply;
  /** The module parameter `vmwballoon_shrinker_enable`. */
  readonly shrinker: boolean;
  /** Whether debugfs is read once right after the load (which enables the statistics). */
  readonly statsOn: boolean;
  readonly guest: ModernGuestSpec;
  readonly events: readonly ModernScenarioEvent[];
}

/** The actions of an event, in the order they apply. */
export const MODERN_EVENT_ACTIONS = [
  "setTarget",
  "reset",
  "guestUse",
  "guestRelease",
  "refuse",
  "failNext",
  "huge",
  "doorbell",
  "migrate",
  "shrink",
  "debugfs",
] as const;

const COMMAND_LIST = Object.keys(MODERN_COMMANDS).join(", ");
/** Frames up to 2^52 - 1: what a batch entry holds. */
const MAX_FRAME_END = 2 ** 52;
/** The simulated guest keeps a handle a frame in 31 bits. */
const MAX_FRAMES = 2 ** 31 - 1;
const { BASIC_CMDS, BATCHED_CMDS } = CAPABILITIES;

function capabilities(s: Json): number {
  if (s.capabilities === undefined) return DRIVER_CAPABILITIES;
  const value = count(s, "capabilities", "", DRIVER_CAPABILITIES);
  if ((value & ~DRIVER_CAPABILITIES) !== 0) throw new ScenarioError("capabilities", `${value} has bit 0 set (reserved)`);
  if (value !== 0 && (value & (BASIC_CMDS | BATCHED_CMDS)) === 0) {
    throw new ScenarioError(
      "capabilities",
      `${value} has neither BASIC_CMDS (2) nor BATCHED_CMDS (4): the driver would never lock a page and its inflate would loop for ever`,
    );
  }
  return value;
}

function startReply(s: Json): StartReply {
  const value = s.startReply;
  if (value === undefined) return "offered";
  if (value !== "offered" && value !== "intersection") {
    throw new ScenarioError("startReply", `expected "offered" or "intersection", got ${describe(value)}`);
  }
  return value;
}

function guest(value: unknown): ModernGuestSpec {
  const g = object(value, "guest");
  onlyKeys(g, "guest", ["totalPages", "freePages", "firstPfn", "nosleepReserve", "sleepReserve", "huge"]);
  const totalPages = count(g, "totalPages", "guest");
  const freePages = count(g, "freePages", "guest", MAX_FRAMES);
  const firstPfn = count(g, "firstPfn", "guest");
  if (firstPfn + freePages > MAX_FRAME_END) {
    throw new ScenarioError("guest.firstPfn", `firstPfn + freePages is ${firstPfn + freePages}, above 2^52 (a batch entry carries 52-bit frame numbers)`);
  }
  return {
    totalPages,
    freePages,
    firstPfn,
    ...guestReserves(g),
    huge: flag(g, "huge", "guest") ?? true,
  };
}

function event(value: unknown, field: string, cycles: number): ModernScenarioEvent {
  const { e, out: common } = commonEvent(value, field, cycles, MODERN_EVENT_ACTIONS);
  const out: { -readonly [K in keyof ModernScenarioEvent]: ModernScenarioEvent[K] } = common;
  for (const key of ["huge", "doorbell", "debugfs"] as const) {
    const value = flag(e, key, field);
    if (value !== undefined) out[key] = value;
  }
  if ("refuse" in e) {
    out.refuse = refuseAction(e, field, (status, at) => {
      if (status === 0 || !fitsBatchStatus(status)) throw new ScenarioError(at, `${status} is not a refusal that fits a batch entry's 5-bit status (1 to 31)`);
    });
  }
  if ("failNext" in e) {
    out.failNext = failNextAction<ModernCommandName>(e, field, modernCommandNumber, COMMAND_LIST, (status, at) => {
      if (status === 0 || status === SUCCESS_WITH_CAPABILITIES) throw new ScenarioError(at, `${status} is a success, not a failure`);
    });
  }
  if ("migrate" in e) out.migrate = count(e, "migrate", field);
  if ("shrink" in e) {
    const n = count(e, "shrink", field);
    if (n === 0) throw new ScenarioError(join(field, "shrink"), "expected at least 1 object to scan, got 0");
    out.shrink = n;
  }
  if (out.debugfs === true && out.cycle === 0) {
    throw new ScenarioError(`${field}.debugfs`, "cycle 0 is before the load: the debugfs file exists from cycle 1");
  }
  return out;
}

/** Checks a parsed scenario against every rule of SIMULATION-MODERN.md. Throws {@link ScenarioError}. */
export function validateModernScenario(value: unknown): ModernScenario {
  const s = object(value, "");
  onlyKeys(s, "", ["cycles", "unload", "capabilities", "startReply", "shrinker", "statsOn", "guest", "events"]);
  const cycles = count(s, "cycles", "");
  const unload = flag(s, "unload", "") ?? false;
  const caps = capabilities(s);
  const reply = startReply(s);
  const shrinker = flag(s, "shrinker", "") ?? false;
  const statsOn = flag(s, "statsOn", "") ?? true;
  const { guest: g, events } = guestAndEvents(s, cycles, guest, event);
  return { cycles, unload, capabilities: caps, startReply: reply, shrinker, statsOn, guest: g, events };
}

/** Parses and validates a modern scenario file's text. Throws {@link ScenarioError}. */
export function parseModernScenario(text: string): ModernScenario {
  return validateModernScenario(parseJson(text));
}
