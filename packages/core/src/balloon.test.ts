import {
  ALLOC,
  COMMANDS,
  MAX_REFUSED,
  NOSLEEP_ALLOC_MAX,
  RATE_ALLOC_MAX,
  RATE_ALLOC_MIN,
  RATE_FREE_MAX,
  RATE_FREE_MIN,
  SLOW_CYCLES,
  STATUS,
  type AllocFlavour,
} from "@vmballoon/protocol";
import { describe, expect, it } from "vitest";
import { Balloon } from "./balloon.js";
import { NO_PAGE, type Hypervisor, type HypervisorReply, type PageSource } from "./ports.js";

interface Call {
  readonly command: number;
  readonly argument: number;
}

/**
 * A monitor for unit tests: answers every command by `answer` (SUCCESS by
 * default; GET_TARGET returns `target`) and records the calls.
 */
class FakeHypervisor implements Hypervisor {
  readonly calls: Call[] = [];
  target = 0;
  answer: (command: number, argument: number) => number = () => STATUS.SUCCESS;

  call(command: number, argument: number): HypervisorReply {
    this.calls.push({ command, argument });
    const status = this.answer(command, argument);
    return { status, result: command === COMMANDS.GET_TARGET && status === STATUS.SUCCESS ? this.target : 0 };
  }

  /** The calls of one command. */
  of(command: number): Call[] {
    return this.calls.filter((c) => c.command === command);
  }

  clear(): void {
    this.calls.length = 0;
  }
}

/**
 * Guest memory for unit tests: frames handed out in ascending order from
 * 1000; each flavour can be made to fail after a number of allocations.
 */
class FakePages implements PageSource {
  private next = 1000;
  readonly freed: number[] = [];
  readonly held = new Set<number>();
  /** Allocations of each flavour left before it fails (Infinity: never). */
  nosleepLeft = Number.POSITIVE_INFINITY;
  cansleepLeft = Number.POSITIVE_INFINITY;
  readonly allocations: AllocFlavour[] = [];
  total = 1_000_000;

  allocate(flavour: AllocFlavour): number {
    this.allocations.push(flavour);
    if (flavour === ALLOC.NOSLEEP ? this.nosleepLeft-- <= 0 : this.cansleepLeft-- <= 0) return NO_PAGE;
    const page = this.next++;
    this.held.add(page);
    return page;
  }

  free(page: number): void {
    expect(this.held.delete(page)).toBe(true);
    this.freed.push(page);
  }

  frameNumber(page: number): number {
    return page;
  }

  totalPages(): number {
    return this.total;
  }
}

function loaded(target = 0) {
  const hv = new FakeHypervisor();
  const pages = new FakePages();
  const balloon = new Balloon(hv, pages);
  expect(balloon.init()).toBe(true);
  hv.target = target;
  hv.clear();
  return { hv, pages, balloon };
}

describe("load (vmballoon_init)", () => {
  it("sends START with protocol 2, then GUEST_ID with guest id 1", () => {
    const hv = new FakeHypervisor();
    expect(new Balloon(hv, new FakePages()).init()).toBe(true);
    expect(hv.calls).toEqual([
      { command: COMMANDS.START, argument: 2 },
      { command: COMMANDS.GUEST_ID, argument: 1 },
    ]);
  });

  it("fails when START fails, and sends nothing more", () => {
    const hv = new FakeHypervisor();
    hv.answer = () => STATUS.ERROR_BUSY;
    const errors: string[] = [];
    const balloon = new Balloon(hv, new FakePages(), { onError: (m) => errors.push(m) });
    expect(balloon.init()).toBe(false);
    expect(hv.calls.map((c) => c.command)).toEqual([COMMANDS.START]);
    expect(balloon.snapshot().stats).toMatchObject({ start: 1, startFail: 1, guestType: 0 });
    expect(errors).toEqual(["failed to send start command to the host"]);
  });

  it("fails when GUEST_ID fails, counting the failure", () => {
    const hv = new FakeHypervisor();
    hv.answer = (command) => (command === COMMANDS.GUEST_ID ? STATUS.ERROR_CMD_INVALID : STATUS.SUCCESS);
    const balloon = new Balloon(hv, new FakePages());
    expect(balloon.init()).toBe(false);
    expect(balloon.snapshot().stats).toMatchObject({ start: 1, startFail: 0, guestType: 1, guestTypeFail: 1 });
  });

  it("starts at the highest rates, with no slow cycles", () => {
    const { balloon } = loaded();
    expect(balloon.snapshot()).toMatchObject({ size: 0, target: 0, rateAlloc: RATE_ALLOC_MAX, rateFree: RATE_FREE_MAX, slowCycles: 0 });
  });
});

describe("inflate (vmballoon_inflate)", () => {
  it("locks rate + 1 pages in a cycle without pressure (the test comes after the allocation)", () => {
    const { hv, balloon } = loaded(100_000);
    balloon.work();
    expect(hv.of(COMMANDS.LOCK)).toHaveLength(NOSLEEP_ALLOC_MAX + 1);
    expect(balloon.snapshot().size).toBe(NOSLEEP_ALLOC_MAX + 1);
  });

  it("sends GET_TARGET with the guest's total pages and locks frames in allocation order", () => {
    const { hv, pages, balloon } = loaded(3);
    pages.total = 4242;
    balloon.work();
    expect(hv.calls).toEqual([
      { command: COMMANDS.GET_TARGET, argument: 4242 },
      { command: COMMANDS.LOCK, argument: 1000 },
      { command: COMMANDS.LOCK, argument: 1001 },
      { command: COMMANDS.LOCK, argument: 1002 },
    ]);
  });

  it("stops at the target when it is nearer than the rate", () => {
    const { hv, balloon } = loaded(10);
    balloon.work();
    expect(hv.of(COMMANDS.LOCK)).toHaveLength(10);
    balloon.work();
    expect(hv.of(COMMANDS.LOCK)).toHaveLength(10);
  });

  it("raises rate_alloc by 16 for each rate_alloc pages of a cycle without failure, up to the maximum", () => {
    const { balloon, pages } = loaded(100_000);
    // Bring rate_alloc down first: a NOSLEEP then a CANSLEEP failure halve it to 1024.
    pages.nosleepLeft = 0;
    pages.cansleepLeft = 0;
    balloon.work();
    expect(balloon.snapshot().rateAlloc).toBe(RATE_ALLOC_MAX / 2);
    pages.nosleepLeft = Number.POSITIVE_INFINITY;
    pages.cansleepLeft = Number.POSITIVE_INFINITY;
    // Slow cycles: the rate is rate_alloc (1024), so i reaches 1024: mult 1.
    balloon.work();
    expect(balloon.snapshot().rateAlloc).toBe(1024 + 16);
  });

  it("on a NOSLEEP failure switches to sleeping allocations at rate_alloc and slows down for 4 cycles", () => {
    const { pages, balloon } = loaded(100_000);
    pages.nosleepLeft = 100;
    balloon.work();
    const flavours = pages.allocations;
    // 100 NOSLEEP allocations, the failing one, then CANSLEEP ones.
    expect(flavours.slice(0, 101).every((f) => f === ALLOC.NOSLEEP)).toBe(true);
    expect(flavours.slice(101).every((f) => f === ALLOC.CANSLEEP)).toBe(true);
    // The failed allocation counts as an iteration: i runs 0 … rate_alloc.
    const s = balloon.snapshot();
    expect(s.size).toBe(RATE_ALLOC_MAX);
    expect(s.slowCycles).toBe(SLOW_CYCLES);
    expect(s.stats).toMatchObject({ alloc: 101, allocFail: 1, sleepAlloc: RATE_ALLOC_MAX - 100, sleepAllocFail: 0 });

    // The next cycles start with NOSLEEP allocations again, but at rate_alloc, while slow cycles count down.
    pages.nosleepLeft = Number.POSITIVE_INFINITY;
    pages.allocations.length = 0;
    balloon.work();
    expect(balloon.snapshot().slowCycles).toBe(SLOW_CYCLES - 1);
    expect(pages.allocations).toHaveLength(RATE_ALLOC_MAX + 1);
    expect(pages.allocations.every((f) => f === ALLOC.NOSLEEP)).toBe(true);
    for (let n = 0; n < SLOW_CYCLES - 1; n++) balloon.work();
    expect(balloon.snapshot().slowCycles).toBe(0);
    pages.allocations.length = 0;
    balloon.work();
    expect(pages.allocations).toHaveLength(NOSLEEP_ALLOC_MAX + 1);
  });

  it("raises rate_alloc even in a cycle where a NOSLEEP allocation failed, when the last one succeeded (seed: error is the last)", () => {
    const { pages, balloon } = loaded(100_000);
    pages.nosleepLeft = 0;
    pages.cansleepLeft = 0;
    balloon.work();
    expect(balloon.snapshot().rateAlloc).toBe(1024);
    // Slow cycles: the rate is 1024; NOSLEEP fails after 100 pages, sleeping allocations finish the cycle.
    pages.nosleepLeft = 100;
    pages.cansleepLeft = Number.POSITIVE_INFINITY;
    balloon.work();
    expect(balloon.snapshot().stats.allocFail).toBe(2);
    expect(balloon.snapshot().rateAlloc).toBe(1024 + 16);
  });

  it("pauses instead of sleeping when rate_alloc pages were already allocated before the NOSLEEP failure", () => {
    const { pages, balloon } = loaded(100_000);
    pages.nosleepLeft = RATE_ALLOC_MAX + 5;
    balloon.work();
    expect(pages.allocations.includes(ALLOC.CANSLEEP)).toBe(false);
    expect(balloon.snapshot()).toMatchObject({ size: RATE_ALLOC_MAX + 5, slowCycles: SLOW_CYCLES });
  });

  it("halves rate_alloc, not below 512, when a CANSLEEP allocation fails", () => {
    const { pages, balloon } = loaded(100_000);
    const rates: number[] = [];
    for (let n = 0; n < 4; n++) {
      pages.nosleepLeft = 0;
      pages.cansleepLeft = 0;
      balloon.work();
      rates.push(balloon.snapshot().rateAlloc);
    }
    expect(rates).toEqual([1024, RATE_ALLOC_MIN, RATE_ALLOC_MIN, RATE_ALLOC_MIN]);
    expect(balloon.snapshot().stats).toMatchObject({ allocFail: 4, sleepAllocFail: 4 });
  });

  it("keeps refused pages until the cycle ends, then frees them, most recent first", () => {
    const { hv, pages, balloon } = loaded(5);
    hv.answer = (command, argument) => (command === COMMANDS.LOCK && argument % 2 === 0 ? STATUS.ERROR_PPN_PINNED : STATUS.SUCCESS);
    balloon.work();
    // Frames 1000 … 1009: even ones refused, odd ones locked.
    expect(balloon.balloonedPages()).toEqual(Uint32Array.from([1001, 1003, 1005, 1007, 1009]));
    expect(pages.freed).toEqual([1008, 1006, 1004, 1002, 1000]);
    expect(balloon.snapshot().stats).toMatchObject({ lock: 10, lockFail: 5, refusedAlloc: 5, refusedFree: 5 });
  });

  it(`ends the cycle after ${MAX_REFUSED} refused pages`, () => {
    const { hv, pages, balloon } = loaded(100);
    hv.answer = (command) => (command === COMMANDS.LOCK ? STATUS.ERROR_PPN_PINNED : STATUS.SUCCESS);
    balloon.work();
    expect(hv.of(COMMANDS.LOCK)).toHaveLength(MAX_REFUSED);
    expect(pages.freed).toHaveLength(MAX_REFUSED);
    const s = balloon.snapshot();
    expect(s.size).toBe(0);
    // An error that is not -ENOMEM: no rate increase, no slow cycles.
    expect(s).toMatchObject({ rateAlloc: RATE_ALLOC_MAX, slowCycles: 0 });
    expect(s.stats).toMatchObject({ refusedAlloc: MAX_REFUSED, refusedFree: MAX_REFUSED });
  });

  it("stops at once when LOCK answers NOTNEEDED, freeing that page uncounted as refused-free", () => {
    const { hv, pages, balloon } = loaded(100);
    let locks = 0;
    hv.answer = (command) => (command === COMMANDS.LOCK && ++locks > 3 ? STATUS.ERROR_PPN_NOTNEEDED : STATUS.SUCCESS);
    balloon.work();
    expect(hv.of(COMMANDS.LOCK)).toHaveLength(4);
    expect(pages.freed).toEqual([1003]);
    expect(balloon.snapshot()).toMatchObject({ size: 3, resetRequired: false });
    expect(balloon.snapshot().stats).toMatchObject({ lockFail: 1, refusedAlloc: 1, refusedFree: 0 });
  });

  it("stops at once when LOCK answers RESET and resets in the next cycle", () => {
    const { hv, pages, balloon } = loaded(100);
    let locks = 0;
    hv.answer = (command) => (command === COMMANDS.LOCK && ++locks === 3 ? STATUS.ERROR_RESET : STATUS.SUCCESS);
    balloon.work();
    expect(balloon.snapshot()).toMatchObject({ size: 2, resetRequired: true });
    expect(pages.freed).toEqual([1002]);

    hv.clear();
    balloon.work();
    // The reset: every page popped without UNLOCK, then START, GUEST_ID, and the cycle goes on.
    expect(hv.calls.slice(0, 3).map((c) => c.command)).toEqual([COMMANDS.START, COMMANDS.GUEST_ID, COMMANDS.GET_TARGET]);
    expect(hv.of(COMMANDS.UNLOCK)).toHaveLength(0);
    expect(pages.freed.slice(1, 3)).toEqual([1001, 1000]);
    expect(balloon.snapshot()).toMatchObject({ size: 100, resetRequired: false });
  });
});

describe("a frame that does not fit 32 bits (vmballoon_send_lock_page's pfn check)", () => {
  /** Pages whose frame is 2^32 + page: protocol 2 cannot send them. */
  class HighFramePages extends FakePages {
    constructor(private readonly high: ReadonlySet<number>) {
      super();
    }
    override frameNumber(page: number): number {
      return this.high.has(page) ? 2 ** 32 + page : page;
    }
  }

  it("is dropped with no command and no counter, another page allocated, held until the cycle ends, then freed (the seed leaks it)", () => {
    const hv = new FakeHypervisor();
    const pages = new HighFramePages(new Set([1001, 1003]));
    const balloon = new Balloon(hv, pages);
    expect(balloon.init()).toBe(true);
    hv.target = 4;
    hv.clear();
    // Frame 1002 is refused, so that the held pages and the refused one are seen apart.
    const freedAtEachLock: number[][] = [];
    hv.answer = (command, argument) => {
      if (command !== COMMANDS.LOCK) return STATUS.SUCCESS;
      freedAtEachLock.push([...pages.freed]);
      return argument === 1002 ? STATUS.ERROR_PPN_PINNED : STATUS.SUCCESS;
    };
    balloon.work();

    // Pages 1000 … 1006 allocated; LOCK only for the frames that fit, in order.
    expect(pages.allocations).toStrictEqual(Array(7).fill(ALLOC.NOSLEEP));
    expect(hv.calls).toStrictEqual([
      { command: COMMANDS.GET_TARGET, argument: 1_000_000 },
      ...[1000, 1002, 1004, 1005, 1006].map((frame) => ({ command: COMMANDS.LOCK, argument: frame })),
    ]);
    // Nothing is freed while the cycle runs: the pages are held, not given back early.
    expect(freedAtEachLock).toStrictEqual([[], [], [], [], []]);
    // When it ends: the refused page (counted), then the unsendable ones (uncounted), most recent first.
    expect(pages.freed).toStrictEqual([1002, 1003, 1001]);
    expect(balloon.balloonedPages()).toStrictEqual(Uint32Array.from([1000, 1004, 1005, 1006]));
    expect(balloon.snapshot()).toMatchObject({ size: 4, target: 4 });
    expect(balloon.snapshot().stats).toMatchObject({ alloc: 7, allocFail: 0, lock: 5, lockFail: 1, refusedAlloc: 1, refusedFree: 1, free: 0 });
    expect([...pages.held].sort()).toStrictEqual([1000, 1004, 1005, 1006]);

    // Every page comes back at the unload.
    balloon.exit();
    expect(pages.held.size).toBe(0);
    expect(balloon.snapshot().stats).toMatchObject({ free: 4 });
  });

  it("when every page's frame is too large, allocates until allocation fails, sends no LOCK, and frees them all at the cycle's end", () => {
    const hv = new FakeHypervisor();
    const pages = new HighFramePages(new Set(Array.from({ length: 50 }, (_, i) => 1000 + i)));
    pages.nosleepLeft = 50;
    pages.cansleepLeft = 0;
    const balloon = new Balloon(hv, pages);
    expect(balloon.init()).toBe(true);
    hv.target = 10;
    hv.clear();
    balloon.work();
    expect(hv.of(COMMANDS.LOCK)).toStrictEqual([]);
    expect(pages.freed).toStrictEqual(Array.from({ length: 50 }, (_, i) => 1049 - i));
    expect(pages.held.size).toBe(0);
    expect(balloon.snapshot()).toMatchObject({ size: 0, slowCycles: SLOW_CYCLES });
    expect(balloon.snapshot().stats).toMatchObject({ alloc: 51, allocFail: 1, sleepAlloc: 1, sleepAllocFail: 1, lock: 0, refusedAlloc: 0, refusedFree: 0 });
  });
});

describe("deflate (vmballoon_deflate)", () => {
  function inflated(pages: number) {
    const setup = loaded(pages);
    setup.balloon.work();
    expect(setup.balloon.snapshot().size).toBe(pages);
    setup.hv.clear();
    return setup;
  }

  it("unlocks the most recent pages first, at most rate_free a cycle, and raises rate_free by 16 up to the maximum", () => {
    const { hv, balloon } = inflated(5);
    hv.target = 2;
    balloon.work();
    expect(hv.of(COMMANDS.UNLOCK).map((c) => c.argument)).toEqual([1004, 1003, 1002]);
    expect(balloon.snapshot()).toMatchObject({ size: 2, rateFree: RATE_FREE_MAX });
  });

  it("halves rate_free, not below 512, when UNLOCK fails, and keeps the page", () => {
    const { hv, pages, balloon } = inflated(10);
    hv.target = 0;
    hv.answer = (command) => (command === COMMANDS.UNLOCK ? STATUS.ERROR_BUSY : STATUS.SUCCESS);
    const rates: number[] = [];
    for (let n = 0; n < 6; n++) {
      balloon.work();
      rates.push(balloon.snapshot().rateFree);
    }
    expect(rates).toEqual([8192, 4096, 2048, 1024, RATE_FREE_MIN, RATE_FREE_MIN]);
    expect(balloon.snapshot().size).toBe(10);
    expect(pages.freed).toEqual([]);
    expect(balloon.snapshot().stats).toMatchObject({ unlock: 6, unlockFail: 6, free: 0 });

    hv.answer = () => STATUS.SUCCESS;
    balloon.work();
    expect(balloon.snapshot()).toMatchObject({ size: 0, rateFree: RATE_FREE_MIN + 16 });
  });

  it("sets the reset flag when UNLOCK answers RESET", () => {
    const { hv, balloon } = inflated(4);
    hv.target = 0;
    hv.answer = (command) => (command === COMMANDS.UNLOCK ? STATUS.ERROR_RESET : STATUS.SUCCESS);
    balloon.work();
    expect(balloon.snapshot()).toMatchObject({ resetRequired: true, size: 4 });
  });
});

describe("reset (vmballoon_reset)", () => {
  it("keeps reset_required when START fails during the reset, and goes on to GET_TARGET", () => {
    const { hv, pages, balloon } = loaded(3);
    balloon.work();
    hv.answer = (command) => (command === COMMANDS.GET_TARGET ? STATUS.ERROR_RESET : STATUS.SUCCESS);
    balloon.work();
    expect(balloon.snapshot().resetRequired).toBe(true);

    hv.clear();
    hv.answer = (command) => (command === COMMANDS.START ? STATUS.ERROR_BUSY : STATUS.ERROR_RESET);
    balloon.work();
    expect(hv.calls.map((c) => c.command)).toEqual([COMMANDS.START, COMMANDS.GET_TARGET]);
    expect(pages.freed).toEqual([1002, 1001, 1000]);
    expect(balloon.snapshot()).toMatchObject({ size: 0, resetRequired: true });
    expect(balloon.snapshot().stats).toMatchObject({ start: 2, startFail: 1, free: 3 });
  });

  it("reports a GUEST_ID failure during the reset and clears the flag all the same", () => {
    const { hv, balloon } = loaded(0);
    hv.answer = (command) => (command === COMMANDS.GET_TARGET ? STATUS.ERROR_RESET : STATUS.SUCCESS);
    balloon.work();
    hv.answer = (command) => (command === COMMANDS.GUEST_ID ? STATUS.ERROR_BUSY : STATUS.SUCCESS);
    balloon.work();
    expect(balloon.snapshot()).toMatchObject({ resetRequired: false });
    expect(balloon.snapshot().stats).toMatchObject({ guestType: 2, guestTypeFail: 1 });
  });
});

describe("unload (vmballoon_exit)", () => {
  it("sends START, then frees every page without UNLOCK", () => {
    const { hv, pages, balloon } = loaded(7);
    balloon.work();
    hv.clear();
    balloon.exit();
    expect(hv.calls).toEqual([{ command: COMMANDS.START, argument: 2 }]);
    expect(pages.held.size).toBe(0);
    expect(balloon.snapshot()).toMatchObject({ size: 0 });
    expect(balloon.snapshot().stats.free).toBe(7);
  });
});

describe("GET_TARGET (vmballoon_send_get_target)", () => {
  it("skips the command, uncounted, when the guest's total pages do not fit 32 bits", () => {
    const { hv, pages, balloon } = loaded(10);
    pages.total = 2 ** 32;
    balloon.work();
    expect(hv.calls).toEqual([]);
    expect(balloon.snapshot().stats).toMatchObject({ timer: 1, target: 0, targetFail: 0 });
  });

  it("keeps the old target when GET_TARGET fails", () => {
    const { hv, balloon } = loaded(10);
    balloon.work();
    hv.target = 0;
    hv.answer = (command) => (command === COMMANDS.GET_TARGET ? STATUS.ERROR_BUSY : STATUS.SUCCESS);
    balloon.work();
    expect(balloon.snapshot()).toMatchObject({ target: 10, size: 10 });
    expect(balloon.snapshot().stats).toMatchObject({ target: 2, targetFail: 1 });
  });
});

describe("counters", () => {
  it("wrap at 2^32 as the seed's unsigned ints do", () => {
    const { balloon } = loaded(0);
    // 2^32 cycles are too many to run: set the private timer counter just below the wrap.
    (balloon as unknown as { counters: Uint32Array }).counters[0] = 0xffffffff;
    balloon.work();
    expect(balloon.snapshot().stats.timer).toBe(0);
  });
});
