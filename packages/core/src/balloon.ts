/*
 * The engine of vmw_balloon.c 1.2.1.3-k, function for function. Each method
 * carries the name of the seed function it is; the statements are in the
 * seed's order, so the two can be read side by side. Quirks of the seed are
 * kept on purpose and marked "seed:".
 */
import {
  ALLOC,
  COMMANDS,
  GUEST_ID_LINUX,
  MAX_PFN,
  MAX_REFUSED,
  NOSLEEP_ALLOC_MAX,
  PROTOCOL_VERSION,
  RATE_ALLOC_INC,
  RATE_ALLOC_MAX,
  RATE_ALLOC_MIN,
  RATE_FREE_INC,
  RATE_FREE_MAX,
  RATE_FREE_MIN,
  SLOW_CYCLES,
  STATUS,
  STAT_NAMES,
  type BalloonStats,
} from "@vmballoon/protocol";
import { FrameCheckCounter, type FrameCheck, type FrameCheckTotals } from "./frame-check-counter.js";
import { PageStack } from "./page-stack.js";
import { NO_PAGE, type Hypervisor, type PageSource } from "./ports.js";

// Indices into the counters array, in the order of STAT_NAMES.
const TIMER = 0;
const START = 1;
const START_FAIL = 2;
const GUEST_TYPE = 3;
const GUEST_TYPE_FAIL = 4;
const LOCK = 5;
const LOCK_FAIL = 6;
const UNLOCK = 7;
const UNLOCK_FAIL = 8;
const TARGET = 9;
const TARGET_FAIL = 10;
const ALLOC_STAT = 11;
const ALLOC_FAIL = 12;
const SLEEP_ALLOC = 13;
const SLEEP_ALLOC_FAIL = 14;
const FREE = 15;
const REFUSED_ALLOC = 16;
const REFUSED_FREE = 17;

// The seed's error returns.
const ENOMEM = -12;
const EIO = -5;

// The constants of the per-page paths as module-local bindings: V8 folds
// these into the compiled code, where it loads an imported one every time
// (about a fifth of the engine's time per page).
const { SUCCESS, ERROR_RESET, ERROR_PPN_NOTNEEDED } = STATUS;
const { LOCK: CMD_LOCK, UNLOCK: CMD_UNLOCK } = COMMANDS;
const { NOSLEEP, CANSLEEP } = ALLOC;
const NONE = NO_PAGE;
const PFN_LIMIT = MAX_PFN;
const REFUSED_LIMIT = MAX_REFUSED;
const NOSLEEP_RATE = NOSLEEP_ALLOC_MAX;

/** The state of the balloon between two cycles. */
export interface BalloonSnapshot {
  /** Pages in the balloon (`b->size`). */
  readonly size: number;
  /** Last target received from the monitor (`b->target`). */
  readonly target: number;
  /** Rate of sleeping allocations, pages a cycle (`b->rate_alloc`). */
  readonly rateAlloc: number;
  /** Rate of releasing pages, pages a cycle (`b->rate_free`). */
  readonly rateFree: number;
  /** Cycles left at the reduced allocation rate (`b->slow_allocation_cycles`). */
  readonly slowCycles: number;
  /** The monitor asked for a reset (`b->reset_required`). */
  readonly resetRequired: boolean;
  /** The eighteen counters of `struct vmballoon_stats`. */
  readonly stats: BalloonStats;
}

export type { FrameCheck, FrameCheckTotals } from "./frame-check-counter.js";

export interface BalloonOptions {
  /** Receives the seed's `pr_err` messages. */
  readonly onError?: (message: string) => void;
}

/**
 * The balloon: the seed's `struct vmballoon` and its functions. Synchronous
 * and deterministic: the same ports and the same calls give the same commands
 * in the same order. Time (one cycle a second) belongs to the caller.
 */
export class Balloon {
  /** Ballooned pages, most recent on top (`b->pages`). */
  private readonly pages = new PageStack();
  /** Pages the monitor refused during this inflate cycle (`b->refused_pages`). */
  private readonly refusedPages: number[] = [];
  /** Pages whose frame does not fit protocol 2's 32 bits, held until the cycle ends. */
  private readonly unsendablePages: number[] = [];
  private readonly counters = new Uint32Array(STAT_NAMES.length);

  private size = 0;
  private target = 0;
  private resetRequired = false;
  private rateAlloc: number = RATE_ALLOC_MAX;
  private rateFree: number = RATE_FREE_MAX;
  private slowAllocationCycles = 0;
  private lastLockStatus = 0;
  private readonly frameTotals = new FrameCheckCounter();

  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly pageSource: PageSource,
    private readonly options: BalloonOptions = {},
  ) {}

  /**
   * `vmballoon_init`: START, then GUEST_ID. False when either fails (the
   * seed's module load fails with -EIO and the balloon never runs).
   */
  init(): boolean {
    if (!this.sendStart()) {
      this.options.onError?.("failed to send start command to the host");
      return false;
    }
    if (!this.sendGuestId()) {
      this.options.onError?.("failed to send guest ID to the host");
      return false;
    }
    return true;
  }

  /** `vmballoon_work`: one cycle. */
  work(): void {
    this.counters[TIMER]!++;

    if (this.resetRequired) this.reset();

    if (this.slowAllocationCycles > 0) this.slowAllocationCycles--;

    const target = this.sendGetTarget();
    if (target >= 0) {
      this.target = target;
      if (this.size < target) this.inflate();
      else if (this.size > target) this.deflate();
    }
  }

  /**
   * `vmballoon_exit`: START, then every page freed without UNLOCK (seed:
   * START comes first, so that the monitor's reset precedes the pages'
   * return).
   */
  exit(): void {
    this.sendStart();
    this.pop();
  }

  /**
   * The frame check (not in the seed; today's Linux driver does the same in
   * `vmballoon_migratepage` when the kernel migrates a ballooned page). Asks
   * the page source which ballooned pages are no longer on the frame the host
   * was told; for each, UNLOCKs the old frame and LOCKs the new one, through
   * this balloon's Hypervisor and with its counters (every UNLOCK of a check
   * before its LOCKs: see the body). When the UNLOCK fails,
   * the page stays as it was (the host still holds the old frame) and the
   * next check tries again; when the LOCK fails, the page leaves the balloon
   * and is freed, and the size goes down by one, as the modern driver's
   * `atomic64_dec(&b->size)`. Call it between cycles. Does nothing when the
   * page source cannot check (the simulated guest: its pages never move) or a
   * reset is pending (the next cycle gives every page back).
   */
  checkFrames(): FrameCheck {
    const source = this.pageSource;
    if (source.checkFrames === undefined || this.resetRequired) return { checked: 0, moved: 0, repaired: 0, released: 0 };
    let moved = 0;
    let repaired = 0;
    // Every old frame is UNLOCKed first, then the new ones LOCKed: one check sees many migrations at once and not
    // their order, and a page's new frame may be one another ballooned page moved out of, which the host holds
    // until that page's UNLOCK.
    const relocked: number[] = [];
    const checked = source.checkFrames((page, told, now) => {
      moved++;
      if (!this.sendUnlockPage(told)) return false;
      relocked.push(page, now);
      return true;
    });
    const leaving = new Set<number>();
    for (let i = 0; i < relocked.length; i += 2) {
      const page = relocked[i]!;
      const now = relocked[i + 1]!;
      if (now > 0 && this.sendLockPage(now) === 0) repaired++;
      else leaving.add(page >>> 0);
    }
    if (leaving.size > 0) {
      this.pages.remove(leaving);
      for (const page of leaving) {
        source.free(page);
        this.size--;
      }
    }
    return this.frameTotals.add({ checked, moved, repaired, released: leaving.size });
  }

  /** The frame checks so far ({@link checkFrames}). */
  frameCheckTotals(): FrameCheckTotals {
    return this.frameTotals.totals();
  }

  /** A copy of the ballooned pages' handles, oldest first. */
  balloonedPages(): Uint32Array {
    return this.pages.toArray();
  }

  snapshot(): BalloonSnapshot {
    const stats = {} as Record<string, number>;
    for (let i = 0; i < STAT_NAMES.length; i++) stats[STAT_NAMES[i]!] = this.counters[i]!;
    return {
      size: this.size,
      target: this.target,
      rateAlloc: this.rateAlloc,
      rateFree: this.rateFree,
      slowCycles: this.slowAllocationCycles,
      resetRequired: this.resetRequired,
      stats: stats as BalloonStats,
    };
  }

  // -------------------------------------------------------------------------
  // Commands
  // -------------------------------------------------------------------------

  /** `vmballoon_send_start`: START's status is compared with SUCCESS only (a RESET does not set the flag). */
  private sendStart(): boolean {
    this.counters[START]!++;
    const { status } = this.hypervisor.call(COMMANDS.START, PROTOCOL_VERSION);
    if (status === SUCCESS) return true;
    this.counters[START_FAIL]!++;
    return false;
  }

  /** `vmballoon_check_status`. */
  private checkStatus(status: number): boolean {
    if (status === SUCCESS) return true;
    if (status === ERROR_RESET) this.resetRequired = true;
    return false;
  }

  /** `vmballoon_send_guest_id` (seed: the counter goes up after the command). */
  private sendGuestId(): boolean {
    const { status } = this.hypervisor.call(COMMANDS.GUEST_ID, GUEST_ID_LINUX);
    this.counters[GUEST_TYPE]!++;
    if (this.checkStatus(status)) return true;
    this.counters[GUEST_TYPE_FAIL]!++;
    return false;
  }

  /** `vmballoon_send_get_target`: the new target, or -1. */
  private sendGetTarget(): number {
    const limit = this.pageSource.totalPages();
    // seed: a limit that does not fit 32 bits skips the command, uncounted.
    if (limit > MAX_PFN) return -1;

    this.counters[TARGET]!++;
    const reply = this.hypervisor.call(COMMANDS.GET_TARGET, limit);
    if (this.checkStatus(reply.status)) return reply.result >>> 0;
    this.counters[TARGET_FAIL]!++;
    return -1;
  }

  /**
   * `vmballoon_send_lock_page`: 0 locked, 1 refused (the seed's `hv_status`
   * in `lastLockStatus`, set only then), -1 frame too large to send (no
   * command).
   */
  private sendLockPage(pfn: number): number {
    if (pfn > PFN_LIMIT) return -1;

    this.counters[LOCK]!++;
    const status = this.hypervisor.call(CMD_LOCK, pfn).status;
    if (this.checkStatus(status)) return 0;
    this.lastLockStatus = status;
    this.counters[LOCK_FAIL]!++;
    return 1;
  }

  /** `vmballoon_send_unlock_page`. */
  private sendUnlockPage(pfn: number): boolean {
    if (pfn > PFN_LIMIT) return false;

    this.counters[UNLOCK]!++;
    const status = this.hypervisor.call(CMD_UNLOCK, pfn).status;
    if (this.checkStatus(status)) return true;
    this.counters[UNLOCK_FAIL]!++;
    return false;
  }

  // -------------------------------------------------------------------------
  // Pages
  // -------------------------------------------------------------------------

  /** `vmballoon_pop`: free every ballooned page, no UNLOCK. */
  private pop(): void {
    const pages = this.pages;
    while (pages.length > 0) {
      this.pageSource.free(pages.pop());
      this.counters[FREE]!++;
      this.size--;
    }
  }

  /** `vmballoon_reset`: pop, then START and GUEST_ID. */
  private reset(): void {
    this.pop();
    // seed: when START fails, reset_required stays set and the cycle goes on.
    if (this.sendStart()) {
      this.resetRequired = false;
      if (!this.sendGuestId()) this.options.onError?.("failed to send guest ID to the host");
    }
  }

  /** `vmballoon_reserve_page`: 0, -ENOMEM or -EIO. */
  private reservePage(canSleep: boolean): number {
    const source = this.pageSource;
    const flavour = canSleep === true ? CANSLEEP : NOSLEEP;
    let page: number;
    let locked: number;

    do {
      this.counters[canSleep ? SLEEP_ALLOC : ALLOC_STAT]!++;

      page = source.allocate(flavour);
      if (page === NONE) {
        this.counters[canSleep ? SLEEP_ALLOC_FAIL : ALLOC_FAIL]!++;
        return ENOMEM;
      }

      locked = this.sendLockPage(source.frameNumber(page));
      if (locked !== 0 && this.keepRefusedPage(page, locked)) return EIO;
    } while (locked !== 0);

    this.pages.push(page);
    this.size++;
    return 0;
  }

  /**
   * The refused branch of `vmballoon_reserve_page`, kept apart so that the
   * per-page path stays small enough to be inlined. True when the cycle must
   * stop (-EIO).
   */
  private keepRefusedPage(page: number, locked: number): boolean {
    if (locked < 0) {
      // seed: a frame too large for 32 bits is dropped and another page
      // allocated; the seed leaks it. Here it is held and given back when the
      // inflate cycle ends.
      this.unsendablePages.push(page);
      return false;
    }
    this.counters[REFUSED_ALLOC]!++;

    const status = this.lastLockStatus;
    if (status === ERROR_RESET || status === ERROR_PPN_NOTNEEDED) {
      this.pageSource.free(page);
      return true;
    }

    // Keep the page off the balloon, and take a breather after too many.
    this.refusedPages.push(page);
    return this.refusedPages.length >= REFUSED_LIMIT;
  }

  /** `vmballoon_release_page`: UNLOCK, then free. */
  private releasePage(page: number): boolean {
    if (!this.sendUnlockPage(this.pageSource.frameNumber(page))) return false;
    this.pages.pop();
    this.pageSource.free(page);
    this.counters[FREE]!++;
    this.size--;
    return true;
  }

  /** `vmballoon_release_refused_pages`: most recently refused first, as the seed's list. */
  private releaseRefusedPages(): void {
    const refused = this.refusedPages;
    while (refused.length > 0) {
      this.pageSource.free(refused.pop()!);
      this.counters[REFUSED_FREE]!++;
    }
    const unsendable = this.unsendablePages;
    while (unsendable.length > 0) this.pageSource.free(unsendable.pop()!);
  }

  /** `vmballoon_inflate`. */
  private inflate(): void {
    const goal = (this.target - this.size) >>> 0;
    // Start with the non-sleeping rate, unless memory pressure was seen lately.
    let rate = this.slowAllocationCycles !== 0 ? this.rateAlloc : NOSLEEP_RATE;
    let canSleep = false;
    let error = 0;
    let i: number;

    for (i = 0; i < goal; i++) {
      error = this.reservePage(canSleep);
      if (error !== 0) {
        // Not an allocation failure: stop this cycle.
        if (error !== ENOMEM) break;

        if (canSleep) {
          // A sleeping allocation failed: severe pressure, halve the rate.
          this.rateAlloc = Math.max(this.rateAlloc >>> 1, RATE_ALLOC_MIN);
          break;
        }

        // A non-sleeping allocation failed: slow down for a few cycles, and
        // go on with sleeping allocations unless rate_alloc pages are done.
        this.slowAllocationCycles = SLOW_CYCLES;
        if (i >= this.rateAlloc) break;
        canSleep = true;
        rate = this.rateAlloc;
      }

      // seed: cond_resched() every YIELD_THRESHOLD allocations; nothing to
      // yield to in a synchronous engine.

      // seed: tested after the allocation, so a cycle can lock rate + 1 pages.
      if (i >= rate) break;
    }

    // No failure: raise the rate by one step per rate_alloc pages done.
    if (error === 0 && i >= this.rateAlloc) {
      const mult = Math.floor(i / this.rateAlloc);
      this.rateAlloc = Math.min(this.rateAlloc + mult * RATE_ALLOC_INC, RATE_ALLOC_MAX);
    }

    this.releaseRefusedPages();
  }

  /** `vmballoon_deflate`. */
  private deflate(): void {
    const goal = Math.min(this.size - this.target, this.rateFree);
    const pages = this.pages;
    let i = 0;

    while (pages.length > 0) {
      if (!this.releasePage(pages.peek())) {
        // An error: quickly decrease the rate.
        this.rateFree = Math.max(this.rateFree >>> 1, RATE_FREE_MIN);
        return;
      }
      if (++i >= goal) break;
    }

    // No error: slowly increase the rate.
    this.rateFree = Math.min(this.rateFree + RATE_FREE_INC, RATE_FREE_MAX);
  }
}
