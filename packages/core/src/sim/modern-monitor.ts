import { BATCH_MAX_PAGES, CAPABILITIES, MODERN_COMMANDS, MODERN_COMMAND_LAST, STATUS, SUCCESS_WITH_CAPABILITIES, VMCI_INVALID_ID } from "@vmballoon/protocol";
import type { ModernHypervisor, ModernHypervisorReply } from "../ports.js";

/** How the host answers START: with what it offers, or with what was asked and offered. */
export type StartReply = "offered" | "intersection";

/** The monitor's view of the guest and what the host offers. */
export interface ModernMonitorSpec {
  /** First frame of the guest. */
  readonly firstPfn: number;
  /** Number of frames, from firstPfn. */
  readonly frames: number;
  /** The guest's total pages: the monitor never wants more locked than this. */
  readonly totalPages: number;
  /** The capabilities offered (0: a protocol 2 host). */
  readonly capabilities: number;
  readonly startReply: StartReply;
  /** The memory at a frame, where the driver keeps a batch page; undefined elsewhere. */
  readonly memoryAt: (pfn: number) => Uint32Array | undefined;
}

// Module-local bindings of the constants of the per-page paths.
const { START, GET_TARGET, LOCK, UNLOCK, GUEST_ID, BATCHED_LOCK, BATCHED_UNLOCK, BATCHED_2M_LOCK, BATCHED_2M_UNLOCK, VMCI_DOORBELL_SET } = MODERN_COMMANDS;
const { SUCCESS, ERROR_CMD_INVALID, ERROR_PPN_INVALID, ERROR_PPN_LOCKED, ERROR_PPN_UNLOCKED, ERROR_PPN_NOTNEEDED, ERROR_RESET } = STATUS;
const { BASIC_CMDS, BATCHED_CMDS, BATCHED_2M_CMDS, SIGNALLED_WAKEUP_CMD } = CAPABILITIES;
const BLOCK = 512;
const WORDS_PER_BLOCK = BLOCK / 32;
const MAX_ENTRIES = BATCH_MAX_PAGES;

/** The capability a command needs (rule 3), or 0 for the three always there; -1: never available. */
function needs(command: number): number {
  switch (command) {
    case START:
    case GET_TARGET:
    case GUEST_ID:
      return 0;
    case LOCK:
    case UNLOCK:
      return BASIC_CMDS;
    case BATCHED_LOCK:
    case BATCHED_UNLOCK:
      return BATCHED_CMDS;
    case BATCHED_2M_LOCK:
    case BATCHED_2M_UNLOCK:
      return BATCHED_2M_CMDS;
    case VMCI_DOORBELL_SET:
      return SIGNALLED_WAKEUP_CMD;
    default:
      return -1;
  }
}

/**
 * The reference monitor of SIMULATION-MODERN.md. Each command is answered by
 * the first rule that applies: a pending forced failure; START; a command
 * not granted; a pending reset; then GUEST_ID, GET_TARGET, LOCK, UNLOCK,
 * VMCI_DOORBELL_SET and the batched commands, which read and write the batch
 * page. Successful LOCK, UNLOCK and batched commands return the target
 * (`min(target, totalPages)`), which the driver takes as its new target.
 */
export class ModernSimMonitor implements ModernHypervisor {
  private targetPages: number;
  /** E = min(target, totalPages). */
  private needed: number;
  private resetFlag: boolean;
  private negotiated: number;
  private readonly offered: number;
  private readonly startReply: StartReply;
  private readonly firstPfn: number;
  private readonly frames: number;
  private readonly totalPages: number;
  /** Frame of bit 0 of {@link locked}: firstPfn rounded down to 512, so that a 2 MB block is 16 whole words. */
  private readonly base: number;
  private readonly locked: Int32Array;
  private lockedCount: number;
  private readonly refused: Map<number, number>;
  /** Whether {@link refused} has an entry: one load on the per-page path, not a `Map`'s size. */
  private anyRefused: boolean;
  /** firstPfn + frames: the first frame past the guest. */
  private readonly end: number;
  private readonly forcedCount: Float64Array;
  private readonly forcedStatus: Float64Array;
  private forcedPending: number;
  private doorbell: { readonly context: number; readonly resource: number } | null;
  private readonly memoryAt: (pfn: number) => Uint32Array | undefined;
  /** The registers: one reply object, rewritten by every call. */
  private readonly reply: ModernHypervisorReply;
  /** Called with each frame or 2 MB block a lock locks, and its frame count (1 or 512); undefined by default. */
  onLock: ((pfn: number, frames: number) => void) | undefined;

  constructor(spec: ModernMonitorSpec) {
    this.targetPages = 0;
    this.needed = 0;
    this.resetFlag = false;
    this.negotiated = 0;
    this.offered = spec.capabilities;
    this.startReply = spec.startReply;
    this.firstPfn = spec.firstPfn;
    this.frames = spec.frames;
    this.totalPages = spec.totalPages;
    this.base = spec.firstPfn - (spec.firstPfn % BLOCK);
    const bits = spec.firstPfn - this.base + spec.frames;
    this.locked = new Int32Array(Math.ceil(bits / BLOCK) * WORDS_PER_BLOCK);
    this.lockedCount = 0;
    this.refused = new Map();
    this.anyRefused = false;
    this.end = spec.firstPfn + spec.frames;
    this.forcedCount = new Float64Array(MODERN_COMMAND_LAST + 1);
    this.forcedStatus = new Float64Array(MODERN_COMMAND_LAST + 1);
    this.forcedPending = 0;
    this.doorbell = null;
    this.memoryAt = spec.memoryAt;
    this.reply = { status: 0, result: 0, ecx: 0 };
    this.onLock = undefined;
  }

  /** The balloon target, in frames. */
  get target(): number {
    return this.targetPages;
  }

  set target(pages: number) {
    this.targetPages = pages;
    this.needed = Math.min(pages, this.totalPages);
  }

  /** Frames locked now. */
  get lockedFrames(): number {
    return this.lockedCount;
  }

  /** The capabilities negotiated at the last START (0 before any). */
  get capabilities(): number {
    return this.negotiated;
  }

  /** Whether a doorbell is registered. */
  get doorbellRegistered(): boolean {
    return this.doorbell !== null;
  }

  /** The host has reset (forgotten every locked frame) and has not been sent START since. */
  get resetPending(): boolean {
    return this.resetFlag;
  }

  /** `reset` event: set the reset flag and forget every locked frame. */
  reset(): void {
    this.resetFlag = true;
    this.unlockAll();
  }

  /** `refuse` event: from now on a lock of that frame returns that status (a frame outside the guest is ignored). */
  refuse(pfn: number, status: number): void {
    if (!this.inGuest(pfn)) return;
    this.refused.set(pfn, status);
    this.anyRefused = true;
  }

  /** `failNext` event: `count` more forced failures of `command`, all returning `status`. */
  failNext(command: number, count: number, status: number): void {
    this.forcedCount[command] = this.forcedCount[command]! + count;
    this.forcedStatus[command] = status;
    this.forcedPending += count;
  }

  /** Whether a frame is locked. */
  isLocked(pfn: number): boolean {
    if (!this.inGuest(pfn)) return false;
    const bit = pfn - this.base;
    return (this.locked[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  call(command: number, argument: number, argument2: number): ModernHypervisorReply {
    const reply = this.reply;
    reply.result = 0;
    reply.ecx = 0;
    // Rule 1: a pending forced failure.
    if (this.forcedPending !== 0 && command >= 0 && command <= MODERN_COMMAND_LAST && this.forcedCount[command]! > 0) {
      this.forcedCount[command]!--;
      this.forcedPending--;
      reply.status = this.forcedStatus[command]!;
      return reply;
    }
    reply.status = this.answer(command, argument, argument2);
    return reply;
  }

  /** Rules 2 to 10. */
  private answer(command: number, argument: number, argument2: number): number {
    const reply = this.reply;
    if (command === START) {
      this.resetFlag = false;
      this.unlockAll();
      this.doorbell = null;
      if (this.offered === 0) {
        this.negotiated = BASIC_CMDS;
        return SUCCESS;
      }
      const granted = this.startReply === "offered" ? this.offered : (argument & this.offered) >>> 0;
      this.negotiated = granted;
      reply.ecx = granted;
      return SUCCESS_WITH_CAPABILITIES;
    }
    const needed = needs(command);
    if (needed < 0 || (needed !== 0 && (this.negotiated & needed) === 0)) return ERROR_CMD_INVALID;
    if (this.resetFlag) return ERROR_RESET;
    let status: number;
    switch (command) {
      case GUEST_ID:
        return SUCCESS;
      case GET_TARGET:
        reply.result = Math.min(this.targetPages, argument);
        return SUCCESS;
      case VMCI_DOORBELL_SET:
        this.doorbell = argument === VMCI_INVALID_ID && argument2 === VMCI_INVALID_ID ? null : { context: argument, resource: argument2 };
        return SUCCESS;
      case LOCK:
        status = this.lock(argument);
        break;
      case UNLOCK:
        status = this.unlock(argument);
        break;
      default:
        status = this.batched(command, argument, argument2);
    }
    if (status === SUCCESS) reply.result = this.needed;
    return status;
  }

  /** Rule 10: each entry's status written into the batch page; SUCCESS, or PPN_INVALID for the whole command. */
  private batched(command: number, pfn: number, entries: number): number {
    const words = this.memoryAt(pfn);
    if (words === undefined || entries > MAX_ENTRIES) return ERROR_PPN_INVALID;
    for (let i = 0; i < entries; i++) {
      const low = words[i * 2]!;
      const high = words[i * 2 + 1]!;
      const frame = high === 0 ? low >>> 12 : high * 1048576 + (low >>> 12);
      let status: number;
      if (command === BATCHED_LOCK) status = this.lock(frame);
      else if (command === BATCHED_UNLOCK) status = this.unlock(frame);
      else if (command === BATCHED_2M_LOCK) status = this.lock2m(frame);
      else status = this.unlock2m(frame);
      words[i * 2] = ((low & ~0x1f) | status) >>> 0;
    }
    return SUCCESS;
  }

  private inGuest(pfn: number): boolean {
    return pfn >= this.firstPfn && pfn < this.firstPfn + this.frames;
  }

  /** Rule 7: a 4 KB frame. */
  private lock(pfn: number): number {
    if (pfn < this.firstPfn || pfn >= this.end) return ERROR_PPN_INVALID;
    if (this.anyRefused) {
      const refused = this.refused.get(pfn);
      if (refused !== undefined) return refused;
    }
    const bit = pfn - this.base;
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    const bits = this.locked[word]!;
    if ((bits & mask) !== 0) return ERROR_PPN_LOCKED;
    if (this.lockedCount >= this.needed) return ERROR_PPN_NOTNEEDED;
    this.locked[word] = bits | mask;
    this.lockedCount++;
    if (this.onLock !== undefined) this.onLock(pfn, 1);
    return SUCCESS;
  }

  /** Rule 8: a 4 KB frame. */
  private unlock(pfn: number): number {
    if (pfn < this.firstPfn || pfn >= this.end) return ERROR_PPN_UNLOCKED;
    const bit = pfn - this.base;
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    const bits = this.locked[word]!;
    if ((bits & mask) === 0) return ERROR_PPN_UNLOCKED;
    this.locked[word] = bits & ~mask;
    this.lockedCount--;
    return SUCCESS;
  }

  /** Whether [pfn, pfn + 512) is a 512-aligned block inside the guest. */
  private blockInGuest(pfn: number): boolean {
    return pfn % BLOCK === 0 && pfn >= this.firstPfn && pfn + BLOCK <= this.firstPfn + this.frames;
  }

  /** Rule 10, BATCHED_2M_LOCK: a 512-frame block. */
  private lock2m(pfn: number): number {
    if (!this.blockInGuest(pfn)) return ERROR_PPN_INVALID;
    if (this.anyRefused) {
      for (let frame = pfn; frame < pfn + BLOCK; frame++) {
        const refused = this.refused.get(frame);
        if (refused !== undefined) return refused;
      }
    }
    const first = (pfn - this.base) >>> 5;
    for (let w = first; w < first + WORDS_PER_BLOCK; w++) if (this.locked[w] !== 0) return ERROR_PPN_LOCKED;
    if (this.lockedCount >= this.needed) return ERROR_PPN_NOTNEEDED;
    this.locked.fill(-1, first, first + WORDS_PER_BLOCK);
    this.lockedCount += BLOCK;
    if (this.onLock !== undefined) this.onLock(pfn, BLOCK);
    return SUCCESS;
  }

  /** Rule 10, BATCHED_2M_UNLOCK: all 512 frames, or nothing. */
  private unlock2m(pfn: number): number {
    if (!this.blockInGuest(pfn)) return ERROR_PPN_UNLOCKED;
    const first = (pfn - this.base) >>> 5;
    for (let w = first; w < first + WORDS_PER_BLOCK; w++) if (this.locked[w] !== -1) return ERROR_PPN_UNLOCKED;
    this.locked.fill(0, first, first + WORDS_PER_BLOCK);
    this.lockedCount -= BLOCK;
    return SUCCESS;
  }

  private unlockAll(): void {
    if (this.lockedCount === 0) return;
    this.locked.fill(0);
    this.lockedCount = 0;
  }
}
