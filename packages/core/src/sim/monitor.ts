import { COMMANDS, STATUS } from "@vmballoon/protocol";
import type { Hypervisor, HypervisorReply } from "../ports.js";

/** The monitor's view of the guest: which frames exist and its total pages. */
export interface MonitorSpec {
  /** First frame of the guest. */
  readonly firstPfn: number;
  /** Number of frames, from firstPfn. */
  readonly frames: number;
  /** The guest's total pages: the monitor never wants more locked than this. */
  readonly totalPages: number;
}

const COMMAND_COUNT = Object.keys(COMMANDS).length;

// Module-local bindings of the constants of the per-page paths: V8 folds
// these into compiled code, where it loads an imported one each time.
const { START, GET_TARGET, LOCK, UNLOCK, GUEST_ID } = COMMANDS;
const { SUCCESS, ERROR_CMD_INVALID, ERROR_PPN_INVALID, ERROR_PPN_LOCKED, ERROR_PPN_UNLOCKED, ERROR_PPN_NOTNEEDED, ERROR_RESET } = STATUS;

/**
 * The reference monitor of SIMULATION.md. Each command is answered by the
 * first rule that applies: a pending forced failure; START; an unknown
 * command; a pending reset; then GUEST_ID, GET_TARGET, LOCK, UNLOCK.
 */
export class SimMonitor implements Hypervisor {
  private targetPages = 0;
  /** min(target, totalPages): LOCK is not needed past this many locked frames. */
  private needed = 0;
  private resetFlag = false;
  /** Forced failures pending, all commands together. */
  private forcedPending = 0;
  /** No forced failure and no reset pending: LOCK and UNLOCK go straight to their rules. */
  private plain = true;
  private readonly firstPfn: number;
  private readonly frames: number;
  private readonly totalPages: number;
  /** One bit per guest frame. */
  private readonly locked: Int32Array;
  private lockedCount = 0;
  private readonly refused = new Map<number, number>();
  /** Whether {@link refused} has an entry: one load on the per-page path, not three. */
  private anyRefused = false;
  private readonly forcedCount = new Float64Array(COMMAND_COUNT);
  private readonly forcedStatus = new Float64Array(COMMAND_COUNT);
  /** The registers: one reply object, rewritten by every call. */
  private readonly reply: HypervisorReply = { status: 0, result: 0 };
  /** Called with each frame a LOCK locks, and 1 (its frame count); undefined by default. */
  onLock: ((pfn: number, frames: number) => void) | undefined = undefined;

  constructor(spec: MonitorSpec) {
    this.firstPfn = spec.firstPfn;
    this.frames = spec.frames;
    this.totalPages = spec.totalPages;
    this.locked = new Int32Array(Math.ceil(spec.frames / 32));
  }

  /** The balloon target, in pages. */
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

  /** `reset` event: set the reset flag and forget every locked frame. */
  reset(): void {
    this.resetFlag = true;
    this.updatePlain();
    this.unlockAll();
  }

  /** `refuse` event: from now on LOCK of that frame returns that status. */
  refuse(pfn: number, status: number): void {
    if (this.frameIndex(pfn) < 0) return;
    this.refused.set(pfn, status);
    this.anyRefused = true;
  }

  /** `failNext` event: `count` more forced failures of `command`, all returning `status`. */
  failNext(command: number, count: number, status: number): void {
    this.forcedCount[command] = this.forcedCount[command]! + count;
    this.forcedStatus[command] = status;
    this.forcedPending += count;
    this.updatePlain();
  }

  /** Whether a frame is locked. */
  isLocked(pfn: number): boolean {
    const index = this.frameIndex(pfn);
    if (index < 0) return false;
    return (this.locked[index >>> 5]! & (1 << (index & 31))) !== 0;
  }

  call(command: number, argument: number): HypervisorReply {
    const reply = this.reply;
    reply.result = 0;
    // The per-page commands with no forced failure and no reset pending go
    // straight to rules 7 and 8, which are where the rules would take them.
    if (this.plain === true) {
      if (command === LOCK) {
        reply.status = this.lock(argument);
        return reply;
      }
      if (command === UNLOCK) {
        reply.status = this.unlock(argument);
        return reply;
      }
    }
    reply.status = this.forcedPending === 0 ? this.answer(command, argument) : this.answerForced(command, argument);
    return reply;
  }

  /** Keeps {@link plain} true exactly when no forced failure and no reset are pending. */
  private updatePlain(): void {
    this.plain = this.forcedPending === 0 && this.resetFlag === false;
  }

  /** Rule 1: a pending forced failure of this command is used up. */
  private answerForced(command: number, argument: number): number {
    if (command < COMMAND_COUNT && this.forcedCount[command]! > 0) {
      this.forcedCount[command]!--;
      this.forcedPending--;
      this.updatePlain();
      return this.forcedStatus[command]!;
    }
    return this.answer(command, argument);
  }

  /** Rules 2 to 8. */
  private answer(command: number, argument: number): number {
    if (command === START) {
      this.resetFlag = false;
      this.updatePlain();
      this.unlockAll();
      return SUCCESS;
    }
    if (command > GUEST_ID) return ERROR_CMD_INVALID;
    if (this.resetFlag === true) return ERROR_RESET;
    if (command === LOCK) return this.lock(argument);
    if (command === GET_TARGET) {
      this.reply.result = Math.min(this.targetPages, argument);
      return SUCCESS;
    }
    if (command === GUEST_ID) return SUCCESS;
    return this.unlock(argument);
  }

  /** The frame's bit in `locked`, or -1 for a frame that is not the guest's. */
  private frameIndex(pfn: number): number {
    const index = pfn - this.firstPfn;
    return index >= 0 && index < this.frames ? index : -1;
  }

  private lock(pfn: number): number {
    const index = this.frameIndex(pfn);
    if (index < 0) return ERROR_PPN_INVALID;
    if (this.anyRefused === true && this.refused.has(pfn)) return this.refused.get(pfn)!;
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    const bits = this.locked[word]!;
    if ((bits & bit) !== 0) return ERROR_PPN_LOCKED;
    if (this.lockedCount >= this.needed) return ERROR_PPN_NOTNEEDED;
    this.locked[word] = bits | bit;
    this.lockedCount++;
    if (this.onLock !== undefined) this.onLock(pfn, 1);
    return SUCCESS;
  }

  private unlock(pfn: number): number {
    const index = this.frameIndex(pfn);
    if (index < 0) return ERROR_PPN_UNLOCKED;
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    const bits = this.locked[word]!;
    if ((bits & bit) === 0) return ERROR_PPN_UNLOCKED;
    this.locked[word] = bits & ~bit;
    this.lockedCount--;
    return SUCCESS;
  }

  private unlockAll(): void {
    if (this.lockedCount === 0) return;
    this.locked.fill(0);
    this.lockedCount = 0;
  }
}
