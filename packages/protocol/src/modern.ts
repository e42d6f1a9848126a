/**
 * Today's Linux driver (`drivers/misc/vmw_balloon.c`, Linux 6.7 and later;
 * its model is the project's docs/SIMULATION-MODERN.md): what
 * it adds to protocol 2. Names are the driver's own without `VMW_BALLOON_`.
 *
 * Which driver uses what: the seed (1.2.1.3-k) sends only commands 0 to 4
 * ({@link COMMANDS}) and reads EBX; today's driver announces its
 * {@link CAPABILITIES} with START, reads the host's answer from ECX (status
 * {@link SUCCESS_WITH_CAPABILITIES}), and then uses the commands the host
 * granted: the batched ones (6 to 9) through a batch page of
 * {@link BATCH_MAX_PAGES} entries, and the doorbell (10). Both share the
 * status codes of {@link STATUS}; a batch entry's status is one of them in 5
 * bits.
 *
 * @packageDocumentation
 */

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/**
 * Every command of today's driver (`enum vmballoon_cmd_type`), by name: the
 * seed's five ({@link COMMANDS}, same numbers) and five more. There is no
 * command 5.
 */
export const MODERN_COMMANDS = {
  /** As the seed's, but the argument is the capabilities the driver asks for; the host answers with its own in ECX. */
  START: 0,
  /** As the seed's; the limit and the target may be 64-bit with 64_BIT_TARGET. */
  GET_TARGET: 1,
  /** As the seed's: one 4 KB frame. The result is the target. */
  LOCK: 2,
  /** As the seed's: one 4 KB frame. The result is the target. */
  UNLOCK: 3,
  /** As the seed's. */
  GUEST_ID: 4,
  /** Lock up to 512 4 KB frames: argument is the batch page's frame, second argument the number of entries. Host has BATCHED_CMDS. */
  BATCHED_LOCK: 6,
  /** Unlock up to 512 4 KB frames through the batch page. Host has BATCHED_CMDS. */
  BATCHED_UNLOCK: 7,
  /** Lock up to 512 2 MB pages (each entry the first of 512 frames) through the batch page. Host has BATCHED_2M_CMDS. */
  BATCHED_2M_LOCK: 8,
  /** Unlock up to 512 2 MB pages through the batch page. Host has BATCHED_2M_CMDS. */
  BATCHED_2M_UNLOCK: 9,
  /** Register (context, resource) as the doorbell the host rings when the target changes; 0xffffffff twice unregisters. Host has SIGNALLED_WAKEUP_CMD. */
  VMCI_DOORBELL_SET: 10,
} as const;

/** A command name of today's driver, such as `"BATCHED_LOCK"`. */
export type ModernCommandName = keyof typeof MODERN_COMMANDS;
/** A command number of today's driver (0 to 4, 6 to 10). */
export type ModernCommand = (typeof MODERN_COMMANDS)[ModernCommandName];

/** Command names of today's driver, by number (the inverse of {@link MODERN_COMMANDS}). */
export const MODERN_COMMAND_NAMES: Readonly<Record<ModernCommand, ModernCommandName>> = {
  0: "START",
  1: "GET_TARGET",
  2: "LOCK",
  3: "UNLOCK",
  4: "GUEST_ID",
  6: "BATCHED_LOCK",
  7: "BATCHED_UNLOCK",
  8: "BATCHED_2M_LOCK",
  9: "BATCHED_2M_UNLOCK",
  10: "VMCI_DOORBELL_SET",
};

/** The number of a command name of today's driver, or `undefined`. */
export function modernCommandNumber(name: string): ModernCommand | undefined {
  return Object.hasOwn(MODERN_COMMANDS, name) ? MODERN_COMMANDS[name as ModernCommandName] : undefined;
}

/** The name of a command number of today's driver, or `undefined` (5 and above 10). */
export function modernCommandName(command: number): ModernCommandName | undefined {
  return Object.hasOwn(MODERN_COMMAND_NAMES, command) ? MODERN_COMMAND_NAMES[command as ModernCommand] : undefined;
}

/** Highest command number (`VMW_BALLOON_CMD_LAST`); the driver's counters are indexed 0 to this. */
export const MODERN_COMMAND_LAST = 10;

/**
 * The commands whose successful result (EBX) is the balloon target
 * (`VMW_BALLOON_CMD_WITH_TARGET_MASK`): the driver copies it into its target
 * after each of them, LOCK and UNLOCK included.
 */
export const COMMANDS_WITH_TARGET_MASK =
  (1 << MODERN_COMMANDS.GET_TARGET) |
  (1 << MODERN_COMMANDS.LOCK) |
  (1 << MODERN_COMMANDS.UNLOCK) |
  (1 << MODERN_COMMANDS.BATCHED_LOCK) |
  (1 << MODERN_COMMANDS.BATCHED_UNLOCK) |
  (1 << MODERN_COMMANDS.BATCHED_2M_LOCK) |
  (1 << MODERN_COMMANDS.BATCHED_2M_UNLOCK);

/** Whether a command's successful result is the target (see {@link COMMANDS_WITH_TARGET_MASK}). */
export function returnsTarget(command: number): boolean {
  return command >= 0 && command <= MODERN_COMMAND_LAST && ((1 << command) & COMMANDS_WITH_TARGET_MASK) !== 0;
}

// ---------------------------------------------------------------------------
// START and capabilities
// ---------------------------------------------------------------------------

/**
 * START's status when the host answers with capabilities (in ECX). A host of
 * protocol 2 answers plain SUCCESS, which the driver takes as BASIC_CMDS only.
 */
export const SUCCESS_WITH_CAPABILITIES = 0x03000000;

/** Capability bits (`enum vmwballoon_capabilities`); bit 0 is reserved. */
export const CAPABILITIES = {
  /** LOCK and UNLOCK, one 4 KB frame a command (protocol 2). */
  BASIC_CMDS: 1 << 1,
  /** BATCHED_LOCK and BATCHED_UNLOCK: up to 512 frames a command through the batch page. */
  BATCHED_CMDS: 1 << 2,
  /** BATCHED_2M_LOCK and BATCHED_2M_UNLOCK: 2 MB pages (used only with BATCHED_CMDS too). */
  BATCHED_2M_CMDS: 1 << 3,
  /** VMCI_DOORBELL_SET: the host rings a doorbell when the target changes. */
  SIGNALLED_WAKEUP_CMD: 1 << 4,
  /** GET_TARGET's limit and result may exceed 32 bits (64-bit guests only). */
  "64_BIT_TARGET": 1 << 5,
} as const;

/** A capability's name, such as `"BATCHED_CMDS"`. */
export type CapabilityName = keyof typeof CAPABILITIES;
/** A capability's bit, such as `4`. */
export type Capability = (typeof CAPABILITIES)[CapabilityName];

/** Capability names, by bit (the inverse of {@link CAPABILITIES}). */
export const CAPABILITY_NAMES: Readonly<Record<Capability, CapabilityName>> = {
  2: "BASIC_CMDS",
  4: "BATCHED_CMDS",
  8: "BATCHED_2M_CMDS",
  16: "SIGNALLED_WAKEUP_CMD",
  32: "64_BIT_TARGET",
};

/** What today's driver asks for with START on a 64-bit kernel (`VMW_BALLOON_CAPABILITIES`): 0x3e. */
export const DRIVER_CAPABILITIES = 0x3e;

// ---------------------------------------------------------------------------
// Pages and the batch page
// ---------------------------------------------------------------------------

/** Allocation order of a 2 MB page (`VMW_BALLOON_2M_ORDER`, PMD_SHIFT - PAGE_SHIFT). */
export const PAGE_2M_ORDER = 9;

/** 4 KB frames in a 2 MB page. */
export const FRAMES_PER_2M_PAGE = 1 << PAGE_2M_ORDER;

/** The page sizes (`enum vmballoon_page_size_type`), by name. */
export const PAGE_SIZES = {
  /** A 4 KB page (`VMW_BALLOON_4K_PAGE`). */
  "4k": 0,
  /** A 2 MB page (`VMW_BALLOON_2M_PAGE`). */
  "2M": 1,
} as const;

/** A page size's name as the debugfs file prints it. */
export type PageSizeName = keyof typeof PAGE_SIZES;

/** Page size names by number (`vmballoon_page_size_names`). */
export const PAGE_SIZE_NAMES = ["4k", "2M"] as const satisfies readonly PageSizeName[];

/** Entries of the batch page (`PAGE_SIZE / sizeof(struct vmballoon_batch_entry)`). */
export const BATCH_MAX_PAGES = 512;

/**
 * One entry of the batch page (`struct vmballoon_batch_entry`, 64 bits,
 * little-endian): status in bits 0-4 (written by the host), 7 reserved bits,
 * the frame number in bits 12-63. In memory, as two 32-bit words: the low
 * word holds the status and the frame's low 20 bits, the high word the
 * frame's upper bits.
 */
export const BATCH_ENTRY = {
  /** Bits of the status. */
  STATUS_BITS: 5,
  /** Mask of the status in the low word. */
  STATUS_MASK: 0x1f,
  /** Where the frame number starts. */
  PFN_SHIFT: 12,
  /** Largest frame number an entry holds (52 bits). */
  MAX_PFN: 2 ** 52 - 1,
} as const;

/** Whether a status fits an entry's 5 bits (0 to 31). */
export function fitsBatchStatus(status: number): boolean {
  return Number.isInteger(status) && status >= 0 && status <= BATCH_ENTRY.STATUS_MASK;
}

/** The low 32-bit word of an entry for a frame (up to 2^52 - 1) and a status. */
export function batchEntryLow(pfn: number, status = 0): number {
  return ((pfn << 12) | (status & 0x1f)) >>> 0;
}

/** The high 32-bit word of an entry for a frame (up to 2^52 - 1). */
export function batchEntryHigh(pfn: number): number {
  // A shift for frames of 32 bits (no division on the per-page path).
  return pfn <= 0xffffffff ? pfn >>> 20 : (pfn / 1048576) >>> 0;
}

/** The frame number of an entry, from its two words. */
export function batchEntryPfn(low: number, high: number): number {
  return high === 0 ? low >>> 12 : high * 1048576 + (low >>> 12);
}

/** The status of an entry, from its low word. */
export function batchEntryStatus(low: number): number {
  return low & 0x1f;
}

/** An entry as one 64-bit value. */
export function encodeBatchEntry(pfn: number, status = 0): bigint {
  if (!Number.isInteger(pfn) || pfn < 0 || pfn > BATCH_ENTRY.MAX_PFN) throw new RangeError(`pfn ${pfn} does not fit 52 bits`);
  if (!fitsBatchStatus(status)) throw new RangeError(`status ${status} does not fit 5 bits`);
  return (BigInt(pfn) << 12n) | BigInt(status);
}

/** The frame and status of a 64-bit entry (the reserved bits are ignored). */
export function decodeBatchEntry(entry: bigint): { readonly pfn: number; readonly status: number } {
  return { pfn: Number((entry >> 12n) & 0xfffffffffffffn), status: Number(entry & 0x1fn) };
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/** The command counters' names, by command number (`vmballoon_cmd_names`); no command 5. */
export const MODERN_COMMAND_STAT_NAMES = {
  0: "start",
  1: "target",
  2: "lock",
  3: "unlock",
  4: "guestType",
  6: "batchLock",
  7: "batchUnlock",
  8: "2m-lock",
  9: "2m-unlock",
  10: "doorbellSet",
} as const satisfies Record<ModernCommand, string>;

/** A command counter's name, such as `"2m-lock"`. */
export type ModernCommandStatName = (typeof MODERN_COMMAND_STAT_NAMES)[ModernCommand];

/** The general counters (`vmballoon_stat_names`), in print order. */
export const MODERN_GENERAL_STAT_NAMES = ["timer", "doorbell", "reset", "shrink", "shrinkFree"] as const;
/** A general counter's name. */
export type ModernGeneralStatName = (typeof MODERN_GENERAL_STAT_NAMES)[number];

/** The page counters (`vmballoon_stat_page_names`), in print order; each is kept per page size. */
export const MODERN_PAGE_STAT_NAMES = ["alloc", "allocFail", "errAlloc", "errFree", "free"] as const;
/** A page counter's name. */
export type ModernPageStatName = (typeof MODERN_PAGE_STAT_NAMES)[number];

/** Seconds after a shrink before the balloon may inflate again (`VMBALLOON_SHRINK_DELAY`). */
export const SHRINK_DELAY = 5;

/** The `vmci_handle` ids that mean "none" (`VMCI_INVALID_ID`): the doorbell is unregistered with them. */
export const VMCI_INVALID_ID = 0xffffffff;
