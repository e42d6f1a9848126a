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

/**
 * The reference monitor of SIMULATION.md. Each command is answered by the
 * first rule that applies: a pending forced failure; START; an unknown
 * command; a pending reset; then GUEST_ID, GET_TARGET, LOCK, UNLOCK.
 */
export class SimMonitor implements Hypervisor {
  /** The balloon target, in pages. */
  target = 0;
  private resetFlag = false;
  private readonly firstPfn: number;
  private readonly frames: number;
  private readonly totalPages: number;
  /** One bit per guest frame. */
  private readonly locked: Int32Array;
  private lockedCount = 0;
  private readonly refused = new Map<number, number>();
  private readonly forcedCount = new Float64Array(COMMAND_COUNT);
  private readonly forcedStatus = new Float64Array(COMMAND_COUNT);
  /** The registers: one reply object, rewritten by every call. */
  private readonly reply: HypervisorReply = { status: 0, result: 0 };

  constructor(spec: MonitorSpec) {
    this.firstPfn = spec.firstPfn;
    this.frames = spec.frames;
    this.totalPages = spec.totalPages;
    this.locked = new Int32Array(Math.ceil(spec.frames / 32));
  }

  /** Frames locked now. */
  get lockedFrames(): number {
    return this.lockedCount;
  }

  /** Whether the reset flag is set. */
  get resetPending(): boolean {
    return this.resetFlag;
  }

  /** `reset` event: set the reset flag and forget every locked frame. */
  reset(): void {
    this.resetFlag = true;
    this.unlockAll();
  }

  /** `refuse` event: from now on LOCK of that frame returns that status. */
  refuse(pfn: number, status: number): void {
    if (pfn - this.firstPfn >= 0 && pfn - this.firstPfn < this.frames) this.refused.set(pfn, status);
  }

  /** `failNext` event: `count` more forced failures of `command`, all returning `status`. */
  failNext(command: number, count: number, status: number): void {
    this.forcedCount[command] = this.forcedCount[command]! + count;
    this.forcedStatus[command] = status;
  }

  /** Whether a frame is locked. */
  isLocked(pfn: number): boolean {
    const index = pfn - this.firstPfn;
    if (index < 0 || index >= this.frames) return false;
    return (this.locked[index >>> 5]! & (1 << (index & 31))) !== 0;
  }

  call(command: number, argument: number): HypervisorReply {
    const reply = this.reply;
    reply.result = 0;
    reply.status = this.answer(command, argument);
    return reply;
  }

  private answer(command: number, argument: number): number {
    if (command < COMMAND_COUNT && this.forcedCount[command]! > 0) {
      this.forcedCount[command]!--;
      return this.forcedStatus[command]!;
    }
    if (command === COMMANDS.START) {
      this.resetFlag = false;
      this.unlockAll();
      return STATUS.SUCCESS;
    }
    if (command > COMMANDS.GUEST_ID) return STATUS.ERROR_CMD_INVALID;
    if (this.resetFlag) return STATUS.ERROR_RESET;

    switch (command) {
      case COMMANDS.GUEST_ID:
        return STATUS.SUCCESS;
      case COMMANDS.GET_TARGET:
        this.reply.result = Math.min(this.target, argument);
        return STATUS.SUCCESS;
      case COMMANDS.LOCK:
        return this.lock(argument);
      default:
        return this.unlock(argument);
    }
  }

  private lock(pfn: number): number {
    const index = pfn - this.firstPfn;
    if (index < 0 || index >= this.frames) return STATUS.ERROR_PPN_INVALID;
    if (this.refused.size !== 0) {
      const status = this.refused.get(pfn);
      if (status !== undefined) return status;
    }
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    const bits = this.locked[word]!;
    if ((bits & bit) !== 0) return STATUS.ERROR_PPN_LOCKED;
    if (this.lockedCount >= Math.min(this.target, this.totalPages)) return STATUS.ERROR_PPN_NOTNEEDED;
    this.locked[word] = bits | bit;
    this.lockedCount++;
    return STATUS.SUCCESS;
  }

  private unlock(pfn: number): number {
    const index = pfn - this.firstPfn;
    if (index < 0 || index >= this.frames) return STATUS.ERROR_PPN_UNLOCKED;
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    const bits = this.locked[word]!;
    if ((bits & bit) === 0) return STATUS.ERROR_PPN_UNLOCKED;
    this.locked[word] = bits & ~bit;
    this.lockedCount--;
    return STATUS.SUCCESS;
  }

  private unlockAll(): void {
    if (this.lockedCount === 0) return;
    this.locked.fill(0);
    this.lockedCount = 0;
  }
}
