/*
 * The engine of today's Linux driver (drivers/misc/vmw_balloon.c, Linux 6.7
 * and later; its model is docs/SIMULATION-MODERN.md), function
 * for function. Each method carries the name of the C function it is; the
 * statements are in the C's order, so the two can be read side by side.
 * Quirks of the C are kept on purpose and marked "modern:".
 *
 * The kernel's lists are stacks here (a PageStack or an array whose last
 * element is the list's head): list_add is a push, walking a list from its
 * head is walking the array from its end.
 */
import {
  ALLOC,
  BATCH_MAX_PAGES,
  CAPABILITIES,
  COMMANDS_WITH_TARGET_MASK,
  DRIVER_CAPABILITIES,
  GUEST_ID_LINUX,
  MAX_PFN,
  MAX_REFUSED,
  MODERN_COMMANDS,
  MODERN_COMMAND_LAST,
  MODERN_COMMAND_STAT_NAMES,
  MODERN_GENERAL_STAT_NAMES,
  MODERN_PAGE_STAT_NAMES,
  PAGE_2M_ORDER,
  PAGE_SIZE_NAMES,
  SHRINK_DELAY,
  STATUS,
  SUCCESS_WITH_CAPABILITIES,
  VMCI_INVALID_ID,
  batchEntryHigh,
  batchEntryLow,
  type ModernCommandStatName,
  type ModernGeneralStatName,
  type ModernPageStatName,
  type PageSizeName,
} from "@vmballoon/protocol";
import { MODERN_PAGE_COUNTERS, formatModern, type ModernRecord } from "@vmballoon/stats";
import { FrameCheckCounter, type FrameCheck } from "./frame-check-counter.js";
import { PageStack } from "./page-stack.js";
import { NO_PAGE, type ModernHypervisor, type ModernPageSource } from "./ports.js";

// Module-local bindings of the constants of the per-page paths: V8 folds
// these into the compiled code, where it loads an imported one every time.
const { SUCCESS, ERROR_RESET, ERROR_PPN_INVALID } = STATUS;
const { START, GET_TARGET, LOCK, UNLOCK, GUEST_ID, BATCHED_LOCK, BATCHED_UNLOCK, BATCHED_2M_LOCK, BATCHED_2M_UNLOCK, VMCI_DOORBELL_SET } = MODERN_COMMANDS;
const { BASIC_CMDS, BATCHED_CMDS, BATCHED_2M_CMDS, SIGNALLED_WAKEUP_CMD } = CAPABILITIES;
const TARGET_64_BIT = CAPABILITIES["64_BIT_TARGET"];
const WITH_TARGET = COMMANDS_WITH_TARGET_MASK;
const WITH_CAPABILITIES = SUCCESS_WITH_CAPABILITIES;
const { NOSLEEP, CANSLEEP } = ALLOC;
const NONE = NO_PAGE;
const REFUSED_LIMIT = MAX_REFUSED;
const ORDER_2M = PAGE_2M_ORDER;
const HZ = 1000;

/** `enum vmballoon_page_size_type`. */
const PAGE_4K = 0;
const PAGE_2M = 1;
/** `enum vmballoon_op`. */
const INFLATE = 0;
const DEFLATE = 1;

// The statistics (`struct vmballoon_stats`) in one array: ops[cmd][type],
// then general_stat[], then page_stat[stat][size].
const OPS = 0;
const OP_FAIL = 1;
const GENERAL = (MODERN_COMMAND_LAST + 1) * 2;
const STAT_TIMER = GENERAL + 0;
const STAT_DOORBELL = GENERAL + 1;
const STAT_RESET = GENERAL + 2;
const STAT_SHRINK = GENERAL + 3;
const STAT_SHRINK_FREE = GENERAL + 4;
const PAGES = GENERAL + MODERN_GENERAL_STAT_NAMES.length;
const PAGE_ALLOC = PAGES + 0;
const PAGE_ALLOC_FAIL = PAGES + 2;
const PAGE_REFUSED_ALLOC = PAGES + 4;
const PAGE_REFUSED_FREE = PAGES + 6;
const PAGE_FREE = PAGES + 8;
const STAT_COUNT = PAGES + MODERN_PAGE_STAT_NAMES.length * 2;

// The error returns of the C.
const EIO = -5;
const ENOMEM = -12;
const EINVAL = -22;
/** `-EBUSY`, and `MIGRATEPAGE_SUCCESS` (0), for {@link ModernBalloon.migratePage}. */
export const EBUSY = -16;

/** What one frame check of today's driver did ({@link ModernBalloon.checkFrames}): the seed's, and the batch page's moves. */
export interface ModernFrameCheck extends FrameCheck {
  /** Times the batch page was found on another frame (followed: no command). */
  readonly batchPageMoves: number;
}

/** The frame checks since the balloon was made: how many, and the sums of their {@link ModernFrameCheck}s. */
export interface ModernFrameCheckTotals extends ModernFrameCheck {
  readonly checks: number;
}

/** The statistics of today's driver, as its debugfs file and the trace name them. */
export interface ModernBalloonStats {
  readonly timer: number;
  readonly doorbell: number;
  readonly reset: number;
  readonly shrink: number;
  readonly shrinkFree: number;
  /** Per command: [sent, failed]. */
  readonly ops: Readonly<Record<ModernCommandStatName, readonly [number, number]>>;
  /** Per page counter: [4k, 2M]. */
  readonly pages: Readonly<Record<ModernPageStatName, readonly [number, number]>>;
}

/** The state of the balloon between two cycles (`struct vmballoon`). */
export interface ModernBalloonSnapshot {
  /** Frames in the balloon (`b->size`); a 2 MB page counts 512. */
  readonly size: number;
  /** Last target received from the host, in frames (`b->target`). */
  readonly target: number;
  /** `b->reset_required`. */
  readonly resetRequired: boolean;
  /** What the host granted at the last START (`b->capabilities`). */
  readonly capabilities: number;
  /** `b->max_page_size`. */
  readonly maxPageSize: PageSizeName;
  /** The static key `vmw_balloon_batching`. */
  readonly batching: boolean;
  /** `b->batch_max_pages`: 512 with batching, 1 without, 0 before the first reset. */
  readonly batchMaxPages: number;
  /** `b->shrink_timeout`, in jiffies: no inflation before it. */
  readonly shrinkTimeout: number;
  /** The statistics, or null before the first debugfs read enables them. */
  readonly stats: ModernBalloonStats | null;
  /** 2 MB pages in the balloon (each counts 512 frames in `size`). Not part of the trace. */
  readonly hugePages: number;
}

export interface ModernBalloonOptions {
  /** The kernel's `jiffies` (HZ = 1000), for the shrinker's delay. Default: always 0. */
  readonly jiffies?: () => number;
  /** Receives the driver's `pr_err_once` messages (each once). */
  readonly onError?: (message: string) => void;
}

/** Handle of the VMCI doorbell (`vmci_doorbell_create` always gives this one in the model). */
export interface DoorbellHandle {
  readonly context: number;
  readonly resource: number;
}

/**
 * The ballooning state of one operation (`struct vmballoon_ctl`). Lists are
 * arrays whose last element is the list's head.
 */
class BalloonControl {
  /** `ctl->pages`, `ctl->n_pages` (at most {@link BATCH_MAX_PAGES}). */
  readonly pages = new Int32Array(BATCH_MAX_PAGES);
  nPages = 0;
  /** `ctl->refused_pages`; its length is `ctl->n_refused_pages`. */
  readonly refusedPages: number[] = [];
  /** `ctl->prealloc_pages`: the 4 KB pages of split 2 MB pages. */
  readonly preallocPages: number[] = [];
  pageSize = PAGE_4K;
  op = INFLATE;

  reset(pageSize: number, op: number): void {
    this.nPages = 0;
    this.refusedPages.length = 0;
    this.preallocPages.length = 0;
    this.pageSize = pageSize;
    this.op = op;
  }
}

/** `vmballoon_page_in_frames`. */
function pageInFrames(pageSize: number): number {
  return pageSize === PAGE_2M ? 1 << ORDER_2M : 1;
}

/**
 * The balloon of today's driver: `struct vmballoon` and its functions.
 * Synchronous and deterministic: the same ports and the same calls give the
 * same commands in the same order. Time belongs to the caller (`work()` once
 * a second; {@link ModernBalloonOptions.jiffies}).
 *
 * `init()` only asks for a reset; the first `work()` does it (DOORBELL_SET,
 * START, GUEST_ID), then GET_TARGET.
 */
export class ModernBalloon {
  private readonly hypervisor: ModernHypervisor;
  private readonly pageSource: ModernPageSource;
  private readonly jiffies: () => number;
  private readonly onError: ((message: string) => void) | undefined;
  private readonly reported: Set<string>;

  /** `b->max_page_size`. */
  private maxPageSize: number;
  private size: number;
  private target: number;
  private resetRequired: boolean;
  private capabilities: number;
  /** The batch page (`b->batch_page`): its handle and its memory. */
  private batchPage: number;
  private batchWords: Uint32Array;
  private batchMaxPages: number;
  /** The static key `vmw_balloon_batching` (true at load). */
  private batching: boolean;
  /** ECX after the last START: the capabilities the host granted. */
  private startEcx: number;
  /** `page_to_pfn(b->page)`: the frame of a LOCK or UNLOCK without batching (the page's, or the one a frame check names). */
  private pageFrame: number;
  private shrinkTimeout: number;
  /** `b->stats`: null until the first debugfs read. */
  private stats: Float64Array | null;
  /** The 4 KB pages (`b->b_dev_info.pages`), head on top. */
  private readonly balloonPages: PageStack;
  /** The 2 MB pages (`b->huge_pages`), head on top. */
  private readonly hugePages: PageStack;
  private vmciDoorbell: DoorbellHandle | null;
  private readonly ctl: BalloonControl;
  private migrationUnlocked: boolean;
  private readonly frameTotals = new FrameCheckCounter();
  private batchPageMovesTotal = 0;
  /** Moved pages whose old frame the host still holds (an UNLOCK that failed): page → that frame, retried each check. */
  private readonly staleFrames = new Map<number, number>();

  constructor(hypervisor: ModernHypervisor, pageSource: ModernPageSource, options: ModernBalloonOptions = {}) {
    this.hypervisor = hypervisor;
    this.pageSource = pageSource;
    this.jiffies = options.jiffies ?? (() => 0);
    this.onError = options.onError;
    this.reported = new Set();
    this.maxPageSize = PAGE_4K;
    this.size = 0;
    this.target = 0;
    this.resetRequired = false;
    this.capabilities = 0;
    this.batchPage = NONE;
    this.batchWords = new Uint32Array(0);
    this.batchMaxPages = 0;
    this.batching = true;
    this.startEcx = 0;
    this.pageFrame = 0;
    this.shrinkTimeout = 0;
    this.stats = null;
    this.balloonPages = new PageStack();
    this.hugePages = new PageStack();
    this.vmciDoorbell = null;
    this.ctl = new BalloonControl();
    this.migrationUnlocked = false;
  }

  /** `vmballoon_init`: sends nothing; the first work cycle resets. */
  init(): void {
    this.vmciDoorbell = null;
    this.batchPage = NONE;
    this.resetRequired = true;
  }

  /** `vmballoon_work`: one cycle. */
  work(): void {
    let change = 0;

    if (this.resetRequired) this.reset();

    this.statsGenInc(STAT_TIMER);

    if (this.sendGetTarget() === 0) change = this.change();

    if (change !== 0) {
      if (change > 0) this.inflate();
      else this.deflate(0, true);
    }
  }

  /**
   * `vmballoon_exit`: DOORBELL_SET to none, START(0), then every page freed
   * without UNLOCK (modern: START comes before the pop). False when the pop
   * cannot finish: START(0) took 2 MB pages away while the balloon holds
   * some, and the C spins for ever (the balloon is left as it is).
   */
  exit(): boolean {
    this.vmciCleanup();
    // vmballoon_debugfs_exit: the statistics are switched off and freed.
    this.stats = null;
    this.sendStart(0);
    return this.pop();
  }

  /**
   * `vmballoon_shrinker_count`: the frames that could be given back under
   * memory pressure.
   */
  shrinkerCount(): number {
    return this.size;
  }

  /**
   * `vmballoon_shrinker_scan`: deflate up to `nrToScan` frames (UNLOCK
   * first), then no inflation for {@link SHRINK_DELAY} seconds. The frames
   * deflated.
   */
  shrinkerScan(nrToScan: number): number {
    this.statsGenInc(STAT_SHRINK);
    const deflatedFrames = this.deflate(nrToScan, true);
    this.statsGenAdd(STAT_SHRINK_FREE, deflatedFrames);
    this.shrinkTimeout = this.jiffies() + HZ * SHRINK_DELAY;
    return deflatedFrames;
  }

  /** `vmballoon_doorbell`: the host rang; counted (the work runs at its next turn). */
  doorbell(): void {
    this.statsGenInc(STAT_DOORBELL);
  }

  /** The doorbell handle the driver holds (`b->vmci_doorbell`), or null. */
  get doorbellHandle(): DoorbellHandle | null {
    return this.vmciDoorbell;
  }

  /**
   * `balloon_page_isolate`: takes a ballooned 4 KB page off the balloon's
   * list for migration. False when it is not there.
   */
  isolatePage(page: number): boolean {
    return this.balloonPages.remove(new Set([page])) === 1;
  }

  /** `balloon_page_putback`: an isolated page goes back to the head of the list. */
  putbackPage(page: number): void {
    this.balloonPages.push(page);
  }

  /**
   * `vmballoon_migratepage`: UNLOCK the isolated `page`, LOCK `newPage`
   * instead. 0 (`MIGRATEPAGE_SUCCESS`): `newPage` is ballooned and `page` is
   * the caller's to free. {@link EBUSY}: when `page` is still locked (the
   * UNLOCK failed), the caller puts it back; otherwise both pages are the
   * caller's and the balloon is one frame smaller.
   */
  migratePage(newPage: number, page: number): number {
    if (!this.migrateFrame(this.pageSource.frameNumber(page), DEFLATE)) {
      this.migrationUnlocked = false;
      return EBUSY;
    }
    this.migrationUnlocked = true;

    if (!this.migrateFrame(this.pageSource.frameNumber(newPage), INFLATE)) {
      // modern: the new page is not unlocked; the balloon is one frame smaller.
      this.size--;
      return EBUSY;
    }
    this.balloonPages.push(newPage);
    return 0;
  }

  /** One half of `vmballoon_migratepage`: UNLOCK (DEFLATE) or LOCK (INFLATE) one 4 KB frame; whether the host took it. */
  private migrateFrame(pfn: number, op: number): boolean {
    this.addFrame(0, pfn);
    let status = this.lockOp(1, PAGE_4K, op);
    if (status === SUCCESS) status = this.statusPage(0);
    return status === SUCCESS;
  }

  /**
   * The frame check, for a page source whose pages the guest's kernel may
   * move (see `PageSource.checkFrames`): each ballooned 4 KB page found on
   * another frame is migrated as `vmballoon_migratepage` does, with its two
   * halves — the old frame UNLOCKed, the new one LOCKed — except that every
   * UNLOCK of a check comes before its LOCKs (a page's new frame may be one
   * another ballooned page moved out of, which the host holds until that
   * page's UNLOCK), and no command is sent before the page source has read
   * every frame, since every command goes through the batch page, which may
   * have moved too: it is followed (the host holds no lock on it), and the
   * check's commands and the next batched commands carry its new frame
   * ({@link ModernFrameCheck.batchPageMoves}). An old frame whose UNLOCK
   * fails is kept and UNLOCKed again at the next check (until a reset, whose
   * START makes the host forget it); a LOCK that fails drops the page from
   * the balloon, one frame smaller (modern: as the C's
   * `atomic64_dec(&b->size)`), and it is freed.
   * Call it between cycles; nothing happens while a reset is pending.
   */
  checkFrames(): ModernFrameCheck {
    const source = this.pageSource;
    if (source.checkFrames === undefined || this.resetRequired) return { checked: 0, moved: 0, repaired: 0, released: 0, batchPageMoves: 0 };
    let moved = 0;
    let batchPageMoves = 0;
    const batchPage = this.batchPage === NONE ? NONE : this.batchPage >>> 0;
    // No command while the source reads frames: the batch page may be among the moved pages, and every command of
    // the check goes through it. Each moved page's new frame is taken at once; the host is told afterwards.
    const stale = this.staleFrames;
    const checked = source.checkFrames((page, told, now) => {
      if (batchPage !== NONE && page >>> 0 === batchPage) {
        batchPageMoves++;
        return now > 0;
      }
      moved++;
      // A page whose old frame is still to be UNLOCKed keeps that one: the host holds it.
      if (!stale.has(page >>> 0)) stale.set(page >>> 0, told);
      return true;
    });
    // The old frames first (the first half of vmballoon_migratepage); one that fails stays for the next check.
    const relock: number[] = [];
    for (const [page, told] of stale) {
      if (!this.migrateFrame(told, DEFLATE)) continue;
      stale.delete(page);
      relock.push(page);
    }
    // Then the new ones (its second half); a page the host refuses there leaves the balloon.
    let repaired = 0;
    const leaving = new Set<number>();
    for (const page of relock) {
      const now = source.frameNumber(page);
      if (now > 0 && this.migrateFrame(now, INFLATE)) repaired++;
      else leaving.add(page);
    }
    if (leaving.size > 0) {
      this.balloonPages.remove(leaving);
      for (const page of leaving) {
        source.free(page);
        this.size--;
      }
    }
    this.batchPageMovesTotal += batchPageMoves;
    return this.frameTotals.add({ checked, moved, repaired, released: leaving.size, batchPageMoves });
  }

  /** The frame checks so far ({@link checkFrames}). */
  frameCheckTotals(): ModernFrameCheckTotals {
    return { ...this.frameTotals.totals(), batchPageMoves: this.batchPageMovesTotal };
  }

  /**
   * Whether the last {@link migratePage} got past its UNLOCK: its -EBUSY
   * then leaves both pages to the caller (in the kernel, the driver has
   * already deleted the old page from the balloon).
   */
  get lastMigrationUnlocked(): boolean {
    return this.migrationUnlocked;
  }

  /**
   * `vmballoon_debug_show`: the debugfs numbers. Reading them enables the
   * statistics (`vmballoon_enable_stats`), as in the kernel.
   */
  debugfsRecord(): ModernRecord {
    if (this.stats === null) this.stats = new Float64Array(STAT_COUNT);
    const stats = this.stats;
    const big = (value: number) => BigInt(value);
    const commands = {} as Record<ModernCommandStatName, { total: bigint; failed: bigint }>;
    for (const [command, name] of Object.entries(MODERN_COMMAND_STAT_NAMES)) {
      const at = OPS + Number(command) * 2;
      commands[name] = { total: big(stats[at]!), failed: big(stats[at + OP_FAIL]!) };
    }
    const general = {} as Record<ModernGeneralStatName, bigint>;
    MODERN_GENERAL_STAT_NAMES.forEach((name, i) => (general[name] = big(stats[GENERAL + i]!)));
    // The record's names are the glossary's (refusedAlloc, not the text's errAlloc), in the same order.
    const pages = {} as Record<(typeof MODERN_PAGE_COUNTERS)[number], Record<PageSizeName, bigint>>;
    MODERN_PAGE_COUNTERS.forEach((name, i) => {
      pages[name] = { "4k": big(stats[PAGES + i * 2]!), "2M": big(stats[PAGES + i * 2 + 1]!) };
    });
    return {
      layout: "modern",
      balloonCapabilities: BigInt(DRIVER_CAPABILITIES),
      usedCapabilities: big(this.capabilities),
      resetRequired: this.resetRequired,
      target: big(this.target),
      size: big(this.size),
      commands,
      general,
      pages,
    };
  }

  /** The debugfs `vmmemctl` text, as the kernel prints it (and the read enables the statistics). */
  debugfsText(): string {
    return formatModern(this.debugfsRecord());
  }

  snapshot(): ModernBalloonSnapshot {
    return {
      size: this.size,
      target: this.target,
      resetRequired: this.resetRequired,
      capabilities: this.capabilities,
      maxPageSize: PAGE_SIZE_NAMES[this.maxPageSize]!,
      batching: this.batching,
      batchMaxPages: this.batchMaxPages,
      shrinkTimeout: this.shrinkTimeout,
      stats: this.stats === null ? null : statsOf(this.stats),
      hugePages: this.hugePages.length,
    };
  }

  /** A copy of the ballooned pages' handles, each list oldest first: 4 KB and 2 MB. */
  balloonedPages(): { readonly pages4k: Uint32Array; readonly pages2m: Uint32Array } {
    return { pages4k: this.balloonPages.toArray(), pages2m: this.hugePages.toArray() };
  }

  /** The batch page's handle, or {@link NO_PAGE}. */
  get batchPageHandle(): number {
    return this.batchPage;
  }

  // -------------------------------------------------------------------------
  // Statistics
  // -------------------------------------------------------------------------

  private statsGenInc(stat: number): void {
    if (this.stats !== null) this.stats[stat]!++;
  }

  private statsGenAdd(stat: number, value: number): void {
    if (this.stats !== null) this.stats[stat]! += value;
  }

  private statsPageAdd(stat: number, pageSize: number, value: number): void {
    if (this.stats !== null) this.stats[stat + pageSize]! += value;
  }

  private errorOnce(message: string): void {
    if (this.reported.has(message)) return;
    this.reported.add(message);
    this.onError?.(message);
  }

  // -------------------------------------------------------------------------
  // Commands
  // -------------------------------------------------------------------------

  /** `__vmballoon_cmd` and `vmballoon_cmd`: the status; the target is taken from the result where the command carries it. */
  private cmd(cmd: number, arg1: number, arg2: number): number {
    const stats = this.stats;
    if (stats !== null) stats[OPS + cmd * 2]!++;

    const reply = this.hypervisor.call(cmd, arg1, arg2);
    const status = reply.status;
    // The result START's caller reads: ECX.
    if (cmd === START) this.startEcx = reply.ecx;

    if (status === SUCCESS && ((1 << cmd) & WITH_TARGET) !== 0) this.target = reply.result;

    if (status !== SUCCESS && status !== WITH_CAPABILITIES && stats !== null) stats[OPS + cmd * 2 + OP_FAIL]!++;

    if (status === ERROR_RESET) this.resetRequired = true;

    return status;
  }

  /** `vmballoon_send_start`: 0 or -EIO. */
  private sendStart(reqCaps: number): number {
    const status = this.cmd(START, reqCaps, 0);
    if (status === WITH_CAPABILITIES) this.capabilities = this.startEcx;
    else if (status === SUCCESS) this.capabilities = BASIC_CMDS;
    else return EIO;

    // 2 MB pages only with batching.
    this.maxPageSize = PAGE_4K;
    if ((this.capabilities & BATCHED_2M_CMDS) !== 0 && (this.capabilities & BATCHED_CMDS) !== 0) this.maxPageSize = PAGE_2M;
    return 0;
  }

  /** `vmballoon_send_guest_id`. */
  private sendGuestId(): number {
    return this.cmd(GUEST_ID, GUEST_ID_LINUX, 0) === SUCCESS ? 0 : EIO;
  }

  /** `vmballoon_send_get_target`: 0, -EINVAL (the limit needs 64 bits the host did not grant: no command) or -EIO. */
  private sendGetTarget(): number {
    const limit = this.pageSource.totalPages();
    if ((this.capabilities & TARGET_64_BIT) === 0 && limit > MAX_PFN) return EINVAL;
    return this.cmd(GET_TARGET, limit, 0) === SUCCESS ? 0 : EIO;
  }

  // -------------------------------------------------------------------------
  // Pages
  // -------------------------------------------------------------------------

  /** `vmballoon_alloc_page_list`: 0 or -ENOMEM. */
  private allocPageList(ctl: BalloonControl, reqNPages: number): number {
    const source = this.pageSource;
    const pages = ctl.pages;
    const prealloc = ctl.preallocPages;
    const huge = ctl.pageSize === PAGE_2M;
    let i: number;

    for (i = 0; i < reqNPages; i++) {
      let page: number;
      // First the 4 KB pages of 2 MB pages that were refused and split.
      if (prealloc.length > 0) {
        page = prealloc.pop()!;
      } else {
        page = huge ? source.allocateHuge() : source.allocate(NOSLEEP);
        if (this.stats !== null) this.stats[PAGE_ALLOC + ctl.pageSize]!++;
      }

      if (page !== NONE) {
        pages[i] = page;
        continue;
      }

      if (this.stats !== null) this.stats[PAGE_ALLOC_FAIL + ctl.pageSize]!++;
      break;
    }

    ctl.nPages = i;
    return reqNPages === i ? 0 : ENOMEM;
  }

  /**
   * `vmballoon_status_page`: the status of entry `idx` after a lock or
   * unlock. (The C takes the page back from the entry's frame; the engine
   * keeps its own list, in the same order.)
   */
  private statusPage(idx: number): number {
    if (this.batching) return this.batchWords[idx * 2]! & 0x1f;
    // Without batching, a failure is the whole command's status.
    return SUCCESS;
  }

  /** `vmballoon_lock_op`: the command's status. */
  private lockOp(numPages: number, pageSize: number, op: number): number {
    let cmd: number;
    let pfn: number;

    if (this.batching) {
      if (op === INFLATE) cmd = pageSize === PAGE_2M ? BATCHED_2M_LOCK : BATCHED_LOCK;
      else cmd = pageSize === PAGE_2M ? BATCHED_2M_UNLOCK : BATCHED_UNLOCK;
      pfn = this.pageSource.frameNumber(this.batchPage);
    } else {
      cmd = op === INFLATE ? LOCK : UNLOCK;
      pfn = this.pageFrame;
      // Without batching, frames must fit 32 bits: refused without a command.
      if (pfn > MAX_PFN) return ERROR_PPN_INVALID;
    }

    return this.cmd(cmd, pfn, numPages);
  }

  /** `vmballoon_add_page`: entry `idx` of the batch page, or `b->page`. */
  private addPage(idx: number, page: number): void {
    if (this.batching) {
      this.addFrame(idx, this.pageSource.frameNumber(page));
    } else {
      this.pageFrame = this.pageSource.frameNumber(page);
    }
  }

  /** {@link addPage} by frame number: the page's frame as the host is to be told it. */
  private addFrame(idx: number, pfn: number): void {
    if (this.batching) {
      const words = this.batchWords;
      words[idx * 2] = batchEntryLow(pfn);
      words[idx * 2 + 1] = batchEntryHigh(pfn);
    } else {
      this.pageFrame = pfn;
    }
  }

  /**
   * `vmballoon_lock`: tell the host about `ctl`'s pages; the ones it refused
   * move to `ctl.refusedPages`. 0, or -EIO when the whole command failed.
   */
  private lock(ctl: BalloonControl): number {
    const numPages = ctl.nPages;
    if (numPages === 0) return 0;

    const pages = ctl.pages;
    // The list from its head: the most recent page is entry 0.
    for (let i = 0; i < numPages; i++) this.addPage(i, pages[numPages - 1 - i]!);

    const batchStatus = this.lockOp(numPages, ctl.pageSize, ctl.op);

    // The pages the host took stay in the list, in order; the others move
    // to the head of the refused list, one after the other.
    let kept = numPages;
    for (let i = 0; i < numPages; i++) {
      let status = this.statusPage(i);
      // A failure of the whole batch overrides each page's result.
      if (batchStatus !== SUCCESS) status = batchStatus;
      if (status === SUCCESS) continue;
      this.handleRefusedResult(ctl, numPages - 1 - i);
      kept--;
    }
    if (kept !== numPages) this.compactPages(ctl);
    ctl.nPages = kept;

    return batchStatus === SUCCESS ? 0 : EIO;
  }

  /**
   * The error branch of `vmballoon_handle_one_result` and of
   * `vmballoon_lock`'s loop, kept apart so that the per-page loop stays
   * small: counted (modern: as `errAlloc`, for unlocks too), and moved to
   * the refused list. The slot is marked empty for {@link compactPages}.
   */
  private handleRefusedResult(ctl: BalloonControl, at: number): void {
    if (this.stats !== null) this.stats[PAGE_REFUSED_ALLOC + ctl.pageSize]!++;
    ctl.refusedPages.push(ctl.pages[at]!);
    ctl.pages[at] = NONE;
  }

  /** Closes the gaps {@link handleRefusedResult} left, keeping the list's order. */
  private compactPages(ctl: BalloonControl): void {
    const pages = ctl.pages;
    let to = 0;
    for (let from = 0; from < ctl.nPages; from++) {
      const page = pages[from]!;
      if (page !== NONE) pages[to++] = page;
    }
  }

  /** `vmballoon_release_page_list` for `ctl.pages`: freed from the head. */
  private releaseCtlPages(ctl: BalloonControl): void {
    const source = this.pageSource;
    const pages = ctl.pages;
    if (ctl.pageSize === PAGE_2M) for (let i = ctl.nPages - 1; i >= 0; i--) source.freeHuge(pages[i]!);
    else for (let i = ctl.nPages - 1; i >= 0; i--) source.free(pages[i]!);
    ctl.nPages = 0;
  }

  /** `vmballoon_release_page_list` for a list kept as an array: freed from the head. */
  private releasePageList(list: number[], pageSize: number): void {
    const source = this.pageSource;
    while (list.length > 0) {
      const page = list.pop()!;
      if (pageSize === PAGE_2M) source.freeHuge(page);
      else source.free(page);
    }
  }

  /** `vmballoon_release_refused_pages`: counted once a call, not a page (modern: `errFree`). */
  private releaseRefusedPages(ctl: BalloonControl): void {
    this.statsPageAdd(PAGE_REFUSED_FREE, ctl.pageSize, 1);
    this.releasePageList(ctl.refusedPages, ctl.pageSize);
  }

  /** `vmballoon_change`: frames to inflate (> 0) or deflate (< 0). */
  private change(): number {
    const size = this.size;
    const target = this.target;

    if (this.resetRequired) return 0;

    // A 2 MB slack on deflate, unless the balloon is emptied.
    if (target < size && target !== 0 && size - target < 1 << ORDER_2M) return 0;

    // No inflation for a while after a shrink (time_before).
    if (target > size && this.jiffies() - this.shrinkTimeout < 0) return 0;

    return target - size;
  }

  /** `vmballoon_enqueue_page_list` for `ctl.pages`. */
  private enqueueCtlPages(ctl: BalloonControl): void {
    const pages = ctl.pages;
    const n = ctl.nPages;
    if (ctl.pageSize === PAGE_4K) {
      // balloon_page_list_enqueue: each page from the head is added at the list's head.
      const list = this.balloonPages;
      for (let i = n - 1; i >= 0; i--) list.push(pages[i]!);
    } else {
      // list_splice_init: the whole list goes before the 2 MB pages, in its order.
      const list = this.hugePages;
      for (let i = 0; i < n; i++) list.push(pages[i]!);
    }
    ctl.nPages = 0;
  }

  /** `vmballoon_enqueue_page_list` for the refused pages of a deflate. */
  private enqueueRefusedPages(ctl: BalloonControl): void {
    const refused = ctl.refusedPages;
    if (ctl.pageSize === PAGE_4K) {
      const list = this.balloonPages;
      for (let i = refused.length - 1; i >= 0; i--) list.push(refused[i]!);
    } else {
      const list = this.hugePages;
      for (let i = 0; i < refused.length; i++) list.push(refused[i]!);
    }
    refused.length = 0;
  }

  /**
   * `vmballoon_dequeue_page_list`: up to `nReqPages` pages from the head of
   * the list of their size, each added at the head of `ctl.pages`.
   */
  private dequeuePageList(ctl: BalloonControl, nReqPages: number): void {
    const list = ctl.pageSize === PAGE_4K ? this.balloonPages : this.hugePages;
    const pages = ctl.pages;
    let i = 0;
    while (i < nReqPages && list.length > 0) pages[i++] = list.pop();
    ctl.nPages = i;
  }

  /**
   * `vmballoon_split_refused_pages`: each refused 2 MB page, from the head,
   * split into 512 4 KB pages, each added at the head of the prealloc list.
   */
  private splitRefusedPages(ctl: BalloonControl): void {
    const refused = ctl.refusedPages;
    const prealloc = ctl.preallocPages;
    for (let r = refused.length - 1; r >= 0; r--) {
      const parts = this.pageSource.splitHugePage(refused[r]!);
      for (let i = 0; i < parts.length; i++) prealloc.push(parts[i]!);
    }
    refused.length = 0;
  }

  /** `vmballoon_inflate`. */
  private inflate(): void {
    const ctl = this.ctl;
    ctl.reset(this.maxPageSize, INFLATE);
    let toInflateFrames: number;

    while ((toInflateFrames = this.change()) > 0) {
      const frames = pageInFrames(ctl.pageSize);
      const toInflatePages = Math.min(this.batchMaxPages, Math.ceil(toInflateFrames / frames));

      // Start by allocating, then lock the pages with the host.
      const allocError = this.allocPageList(ctl, toInflatePages);
      const lockError = this.lock(ctl);

      // Something serious went wrong: stop.
      if (lockError !== 0) break;

      this.size += ctl.nPages * frames;
      this.enqueueCtlPages(ctl);

      // Allocation failed or too many refused: on to the next page size.
      if (allocError !== 0 || ctl.refusedPages.length >= REFUSED_LIMIT) {
        if (ctl.pageSize === PAGE_4K) break;
        this.splitRefusedPages(ctl);
        ctl.pageSize--;
      }
    }

    if (ctl.refusedPages.length !== 0) this.releaseRefusedPages(ctl);
    this.releasePageList(ctl.preallocPages, ctl.pageSize);
  }

  /**
   * `vmballoon_deflate`: `nFrames` frames, or (0) as far as the target asks;
   * `coordinated`: UNLOCK with the host first (not on a pop). The frames
   * deflated.
   */
  private deflate(nFrames: number, coordinated: boolean): number {
    const ctl = this.ctl;
    ctl.reset(PAGE_4K, DEFLATE);
    let deflatedFrames = 0;
    let triedFrames = 0;

    for (;;) {
      const frames = pageInFrames(ctl.pageSize);

      const toDeflateFrames = nFrames !== 0 ? nFrames - triedFrames : -this.change();
      if (toDeflateFrames <= 0) break;

      // Per page size, one batch at most.
      const toDeflatePages = Math.min(this.batchMaxPages, Math.ceil(toDeflateFrames / frames));

      this.dequeuePageList(ctl, toDeflatePages);

      // Tried, before the refused pages leave the list.
      triedFrames += ctl.nPages * frames;

      // The result is ignored: what matters is whether every page was unlocked.
      if (coordinated) this.lock(ctl);

      const deflatedAll = ctl.nPages === toDeflatePages;

      const nUnlockedFrames = ctl.nPages * frames;
      this.size -= nUnlockedFrames;
      deflatedFrames += nUnlockedFrames;

      this.statsPageAdd(PAGE_FREE, ctl.pageSize, ctl.nPages);

      this.releaseCtlPages(ctl);

      // The refused pages go back to the balloon.
      this.enqueueRefusedPages(ctl);

      // Not all unlocked: on to the next page size.
      if (!deflatedAll) {
        if (ctl.pageSize === this.maxPageSize) break;
        ctl.pageSize++;
      }
    }

    return deflatedFrames;
  }

  /** `vmballoon_deinit_batching`. */
  private deinitBatching(): void {
    if (this.batchPage !== NONE) this.pageSource.free(this.batchPage);
    this.batchPage = NONE;
    this.batchWords = new Uint32Array(0);
    this.batching = false;
    this.batchMaxPages = 1;
  }

  /** `vmballoon_init_batching`: 0 or -ENOMEM. modern: the old batch page, if any, is not freed. */
  private initBatching(): number {
    const page = this.pageSource.allocate(CANSLEEP);
    if (page === NONE) return ENOMEM;

    this.batchPage = page;
    this.batchWords = this.pageSource.pageWords(page);
    this.batchMaxPages = BATCH_MAX_PAGES;
    this.batching = true;
    return 0;
  }

  /** `vmballoon_vmci_cleanup`: DOORBELL_SET to none, whatever was negotiated. */
  private vmciCleanup(): void {
    this.cmd(VMCI_DOORBELL_SET, VMCI_INVALID_ID, VMCI_INVALID_ID);
    this.vmciDoorbell = null;
  }

  /** `vmballoon_vmci_init`: 0 or -EIO. */
  private vmciInit(): number {
    if ((this.capabilities & SIGNALLED_WAKEUP_CMD) === 0) return 0;

    // vmci_doorbell_create: always this handle in the model.
    this.vmciDoorbell = { context: 3, resource: 1024 };
    if (this.cmd(VMCI_DOORBELL_SET, this.vmciDoorbell.context, this.vmciDoorbell.resource) === SUCCESS) return 0;

    this.vmciCleanup();
    return EIO;
  }

  /** `vmballoon_pop`: every page freed, no UNLOCK. False when it cannot finish (the C spins for ever). */
  private pop(): boolean {
    // The host forgets every frame at the START around a pop: no old frame is left to UNLOCK.
    this.staleFrames.clear();
    let size: number;
    while ((size = this.size) !== 0) {
      if (this.deflate(size, false) === 0) return false;
    }
    return true;
  }

  /** `vmballoon_reset`: DOORBELL_SET to none, pop, START, batching, doorbell, GUEST_ID. */
  private reset(): void {
    this.vmciCleanup();

    // Every page freed, without UNLOCK. (A pop that cannot finish would
    // spin for ever in the C; it cannot happen here: the START that could
    // take 2 MB pages away comes after it.)
    this.pop();

    if (this.sendStart(DRIVER_CAPABILITIES) !== 0) return;

    if ((this.capabilities & BATCHED_CMDS) !== 0) {
      if (this.initBatching() !== 0) {
        // Tell the host with no capabilities; retried in a second.
        this.sendStart(0);
        return;
      }
    } else if ((this.capabilities & BASIC_CMDS) !== 0) {
      this.deinitBatching();
    }

    this.statsGenInc(STAT_RESET);
    this.resetRequired = false;

    if (this.vmciInit() !== 0) this.errorOnce("failed to initialize vmci doorbell");
    if (this.sendGuestId() !== 0) this.errorOnce("failed to send guest ID to the host");
  }
}

/** The statistics under the trace's names. */
function statsOf(stats: Float64Array): ModernBalloonStats {
  const ops = {} as Record<ModernCommandStatName, [number, number]>;
  for (const [command, name] of Object.entries(MODERN_COMMAND_STAT_NAMES)) {
    const at = OPS + Number(command) * 2;
    ops[name] = [stats[at]!, stats[at + OP_FAIL]!];
  }
  const pages = {} as Record<ModernPageStatName, [number, number]>;
  MODERN_PAGE_STAT_NAMES.forEach((name, i) => (pages[name] = [stats[PAGES + i * 2]!, stats[PAGES + i * 2 + 1]!]));
  return {
    timer: stats[STAT_TIMER]!,
    doorbell: stats[STAT_DOORBELL]!,
    reset: stats[STAT_RESET]!,
    shrink: stats[STAT_SHRINK]!,
    shrinkFree: stats[STAT_SHRINK_FREE]!,
    ops,
    pages,
  };
}
