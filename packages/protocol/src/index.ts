/**
 * The VMware balloon protocol, as spoken by the Linux driver `vmw_balloon.c`
 * version 1.2.1.3-k (balloon protocol version 2). Every number here is the
 * seed's own `#define`, under the seed's name without its `VMW_BALLOON_`
 * prefix, so that this file and the C can be read side by side.
 *
 * No dependencies and no side effects: import one name and a bundler keeps
 * only that name.
 *
 * @packageDocumentation
 */

/** Version of the Linux driver this protocol description is taken from. */
export const DRIVER_VERSION = "1.2.1.3-k";

// ---------------------------------------------------------------------------
// Hypervisor communication (the "backdoor")
// ---------------------------------------------------------------------------

/** I/O port of the balloon: `IN` from this port (in DX) issues a command. */
export const HV_PORT = 0x5670;

/** Magic value in EAX that marks an `IN` on {@link HV_PORT} as a balloon command. */
export const HV_MAGIC = 0x456c6d6f;

/** Balloon protocol version the driver announces with START. */
export const PROTOCOL_VERSION = 2;

/** Guest type announced with GUEST_ID: 1 is Linux. */
export const GUEST_ID_LINUX = 1;

/**
 * The general VMware backdoor, not the balloon: port 0x5658 with magic
 * "VMXh" in EAX. Not used by the seed; used to detect VMware (GETVERSION).
 */
export const BACKDOOR_PORT = 0x5658;

/** Magic of the general backdoor ("VMXh"); GETVERSION echoes it in EBX. */
export const BACKDOOR_MAGIC = 0x564d5868;

/** General backdoor command that returns the backdoor version in EAX. */
export const BACKDOOR_CMD_GETVERSION = 10;

/** Size of the pages the protocol counts, in bytes (x86 base pages). */
export const PAGE_SIZE = 4096;

/** Largest frame number protocol version 2 can carry (32 bits). */
export const MAX_PFN = 0xffffffff;

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/** Balloon commands (ECX), by name. */
export const COMMANDS = {
  /** Open the protocol: argument is the protocol version; clears a pending reset. */
  START: 0,
  /** Ask for the balloon target: argument is the guest's total pages; result is the target. */
  GET_TARGET: 1,
  /** Hand a guest frame to the monitor: argument is the frame number. */
  LOCK: 2,
  /** Take a frame back from the monitor: argument is the frame number. */
  UNLOCK: 3,
  /** Announce the guest type: argument is the guest id (1, Linux). */
  GUEST_ID: 4,
} as const;

/** A command's name, such as `"LOCK"`. */
export type CommandName = keyof typeof COMMANDS;
/** A command's number, such as `2`. */
export type Command = (typeof COMMANDS)[CommandName];

/** Command names, by number (the inverse of {@link COMMANDS}). */
export const COMMAND_NAMES: Readonly<Record<Command, CommandName>> = {
  0: "START",
  1: "GET_TARGET",
  2: "LOCK",
  3: "UNLOCK",
  4: "GUEST_ID",
};

/** The number of a command name, or `undefined` for a name the protocol does not have. */
export function commandNumber(name: string): Command | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name as CommandName] : undefined;
}

/** The name of a command number, or `undefined` for a number the protocol does not have. */
export function commandName(command: number): CommandName | undefined {
  return Object.hasOwn(COMMAND_NAMES, command) ? COMMAND_NAMES[command as Command] : undefined;
}

// ---------------------------------------------------------------------------
// Status codes
// ---------------------------------------------------------------------------

/** Status codes (EAX after the command), by name. */
export const STATUS = {
  /** The command succeeded. */
  SUCCESS: 0,
  /** Generic failure (EAX reads 0xffffffff as a 32-bit register). */
  FAILURE: -1,
  /** The monitor does not know this command. */
  ERROR_CMD_INVALID: 1,
  /** The frame number is not a frame of this guest. */
  ERROR_PPN_INVALID: 2,
  /** The frame is already locked in the balloon. */
  ERROR_PPN_LOCKED: 3,
  /** The frame is not locked, so it cannot be unlocked. */
  ERROR_PPN_UNLOCKED: 4,
  /** The monitor cannot take this frame (it is pinned); try another page. */
  ERROR_PPN_PINNED: 5,
  /** The monitor needs no more pages: the balloon has reached its target. */
  ERROR_PPN_NOTNEEDED: 6,
  /** The monitor was reset: pop the balloon and send START again. */
  ERROR_RESET: 7,
  /** The monitor is busy; try later. */
  ERROR_BUSY: 8,
} as const;

/** A status's name, such as `"ERROR_RESET"`. */
export type StatusName = keyof typeof STATUS;
/** A status's number, such as `7`. */
export type Status = (typeof STATUS)[StatusName];

/** What a status number means: its name and one line of explanation. */
export interface StatusInfo {
  readonly name: StatusName;
  readonly status: Status;
  readonly meaning: string;
}

/** Status names and meanings, by number (the inverse of {@link STATUS}). */
export const STATUS_INFO: Readonly<Record<Status, StatusInfo>> = {
  0: { name: "SUCCESS", status: 0, meaning: "the command succeeded" },
  [-1]: { name: "FAILURE", status: -1, meaning: "generic failure" },
  1: { name: "ERROR_CMD_INVALID", status: 1, meaning: "the monitor does not know this command" },
  2: { name: "ERROR_PPN_INVALID", status: 2, meaning: "the frame number is not a frame of this guest" },
  3: { name: "ERROR_PPN_LOCKED", status: 3, meaning: "the frame is already locked in the balloon" },
  4: { name: "ERROR_PPN_UNLOCKED", status: 4, meaning: "the frame is not locked" },
  5: { name: "ERROR_PPN_PINNED", status: 5, meaning: "the monitor cannot take this frame (pinned)" },
  6: { name: "ERROR_PPN_NOTNEEDED", status: 6, meaning: "the monitor needs no more pages" },
  7: { name: "ERROR_RESET", status: 7, meaning: "the monitor was reset; the guest must start again" },
  8: { name: "ERROR_BUSY", status: 8, meaning: "the monitor is busy" },
};

/** The number of a status name, or `undefined` for a name the protocol does not have. */
export function statusNumber(name: string): Status | undefined {
  return Object.hasOwn(STATUS, name) ? STATUS[name as StatusName] : undefined;
}

/**
 * Name and meaning of a status number, or `undefined` for a number the
 * protocol does not have. FAILURE is found both as -1 and as the 32-bit
 * register value 0xffffffff.
 */
export function describeStatus(status: number): StatusInfo | undefined {
  const key = status === 0xffffffff ? -1 : status;
  return Object.hasOwn(STATUS_INFO, key) ? STATUS_INFO[key as Status] : undefined;
}

// ---------------------------------------------------------------------------
// Rate control (pages, and pages per second)
// ---------------------------------------------------------------------------

/** Most pages locked in one cycle with non-sleeping allocations (no memory pressure). */
export const NOSLEEP_ALLOC_MAX = 16384;

/** Lowest rate of sleeping allocations under memory pressure. */
export const RATE_ALLOC_MIN = 512;
/** Highest (and initial) rate of sleeping allocations. */
export const RATE_ALLOC_MAX = 2048;
/** Step by which the allocation rate grows after a cycle without failures. */
export const RATE_ALLOC_INC = 16;

/** Lowest rate of releasing pages while deflating. */
export const RATE_FREE_MIN = 512;
/** Highest (and initial) rate of releasing pages while deflating. */
export const RATE_FREE_MAX = 16384;
/** Step by which the release rate grows after a deflate without errors. */
export const RATE_FREE_INC = 16;

/** Cycles of reduced allocation rate after a non-sleeping allocation fails. */
export const SLOW_CYCLES = 4;

/** Refused pages kept during one inflate cycle before the driver takes a break. */
export const MAX_REFUSED = 16;

/** Page allocations between two yields of the processor (the seed's `cond_resched`). */
export const YIELD_THRESHOLD = 1024;

/** Page allocation flavours of the seed: may the allocation sleep (reclaim) or not. */
export const ALLOC = {
  /** `__GFP_HIGHMEM | __GFP_NOWARN`: never sleeps, fails instead of reclaiming. */
  NOSLEEP: 0,
  /** `GFP_HIGHUSER`: may sleep while memory is reclaimed. */
  CANSLEEP: 1,
} as const;

/** An allocation flavour: `ALLOC.NOSLEEP` or `ALLOC.CANSLEEP`. */
export type AllocFlavour = (typeof ALLOC)[keyof typeof ALLOC];

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/**
 * The eighteen counters of the seed's `struct vmballoon_stats`, in the order
 * of the trace format, under the trace format's names (`alloc_fail` is
 * `allocFail`). Each is an `unsigned int` in the seed: it wraps at 2^32.
 */
export const STAT_NAMES = [
  "timer",
  "start",
  "startFail",
  "guestType",
  "guestTypeFail",
  "lock",
  "lockFail",
  "unlock",
  "unlockFail",
  "target",
  "targetFail",
  "alloc",
  "allocFail",
  "sleepAlloc",
  "sleepAllocFail",
  "free",
  "refusedAlloc",
  "refusedFree",
] as const;

/** The name of one statistics counter, such as `"lockFail"`. */
export type StatName = (typeof STAT_NAMES)[number];

/** The values of all eighteen counters, by name. */
export type BalloonStats = Record<StatName, number>;

// ---------------------------------------------------------------------------
// Today's driver
// ---------------------------------------------------------------------------

export * from "./modern.js";
