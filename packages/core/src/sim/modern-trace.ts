import { MODERN_COMMANDS, batchEntryPfn, batchEntryStatus, modernCommandName } from "@vmballoon/protocol";
import type { ModernBalloonSnapshot, ModernBalloonStats } from "../modern-balloon.js";
import type { ModernHypervisor, ModernHypervisorReply } from "../ports.js";

/** A hypervisor command of today's driver, as it returns. */
export interface ModernCommandRecord {
  readonly t: "cmd";
  readonly cycle: number;
  readonly cmd: string;
  readonly arg: number;
  readonly arg2: number;
  readonly status: number;
  /** ECX for START (the capabilities), EBX otherwise. */
  readonly result: number;
  /** Batched commands: [pfn, status] of each entry as the batch page holds them after the call. */
  readonly batch?: readonly (readonly [number, number])[];
}

/** The driver's state after work cycle `cycle`. */
export interface ModernCycleRecord {
  readonly t: "cycle";
  readonly cycle: number;
  readonly size: number;
  readonly target: number;
  readonly resetRequired: boolean;
  readonly capabilities: number;
  readonly maxPageSize: "4k" | "2M";
  readonly batching: boolean;
  readonly batchMaxPages: number;
  readonly shrinkTimeout: number;
  readonly guestFree: number;
  readonly stats: ModernBalloonStats | null;
}

/** A shrink event: the shrinker core's call (`nrToScan` as given, `count` what count_objects said). */
export interface ShrinkRecord {
  readonly t: "shrink";
  readonly cycle: number;
  readonly nrToScan: number;
  readonly count: number;
  readonly freed: number;
}

/** A doorbell event: whether the driver's callback ran. */
export interface DoorbellRecord {
  readonly t: "doorbell";
  readonly cycle: number;
  readonly delivered: boolean;
}

/** A migration that ran: `result` is 0 or -EBUSY (-16). */
export interface MigrateRecord {
  readonly t: "migrate";
  readonly cycle: number;
  readonly pfn: number;
  readonly newPfn: number;
  readonly result: number;
}

/** The debugfs file, after a `debugfs` event and after the last cycle. */
export interface ModernDebugfsRecord {
  readonly t: "debugfs";
  readonly cycle: number;
  readonly text: string;
}

/** After the unload's commands: emptied (`exit`), or a pop that cannot finish (`exitHang`; the C spins for ever). */
export interface ModernExitRecord {
  readonly t: "exit" | "exitHang";
  readonly size: number;
  readonly guestFree: number;
}

/** One line of a modern trace (SIMULATION-MODERN.md, "Trace"). */
export type ModernTraceRecord =
  ModernCommandRecord | ModernCycleRecord | ShrinkRecord | DoorbellRecord | MigrateRecord | ModernDebugfsRecord | ModernExitRecord;

const BATCHED_FIRST = MODERN_COMMANDS.BATCHED_LOCK;
const BATCHED_LAST = MODERN_COMMANDS.BATCHED_2M_UNLOCK;

/**
 * A hypervisor that reports every command of today's driver, as it returns,
 * with the batch page's entries for batched commands.
 */
export class ModernTracingHypervisor implements ModernHypervisor {
  cycle = 0;

  constructor(
    private readonly inner: ModernHypervisor,
    private readonly memoryAt: (pfn: number) => Uint32Array | undefined,
    private readonly onCommand: (record: ModernCommandRecord) => void,
  ) {}

  call(command: number, argument: number, argument2: number): ModernHypervisorReply {
    const reply = this.inner.call(command, argument, argument2);
    const record: { -readonly [K in keyof ModernCommandRecord]: ModernCommandRecord[K] } = {
      t: "cmd",
      cycle: this.cycle,
      cmd: modernCommandName(command) ?? String(command),
      arg: argument,
      arg2: argument2,
      status: reply.status,
      result: command === MODERN_COMMANDS.START ? reply.ecx : reply.result,
    };
    if (command >= BATCHED_FIRST && command <= BATCHED_LAST) {
      const words = this.memoryAt(argument);
      const batch: [number, number][] = [];
      for (let i = 0; words !== undefined && i < argument2 && i * 2 < words.length; i++) {
        batch.push([batchEntryPfn(words[i * 2]!, words[i * 2 + 1]!), batchEntryStatus(words[i * 2]!)]);
      }
      record.batch = batch;
    }
    this.onCommand(record);
    return reply;
  }
}

/** The driver's state after work cycle `cycle`, as a trace record. */
export function modernCycleRecord(cycle: number, s: ModernBalloonSnapshot, guestFree: number): ModernCycleRecord {
  return {
    t: "cycle",
    cycle,
    size: s.size,
    target: s.target,
    resetRequired: s.resetRequired,
    capabilities: s.capabilities,
    maxPageSize: s.maxPageSize,
    batching: s.batching,
    batchMaxPages: s.batchMaxPages,
    shrinkTimeout: s.shrinkTimeout,
    guestFree,
    stats: s.stats,
  };
}
