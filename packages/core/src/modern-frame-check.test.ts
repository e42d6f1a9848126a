import { describe, expect, it } from "vitest";
import { ALLOC, MODERN_COMMANDS, STATUS } from "@vmballoon/protocol";
import { ModernBalloon } from "./modern-balloon.js";
import type { ModernHypervisor, ModernPageSource } from "./ports.js";
import { ModernSimGuest } from "./sim/modern-guest.js";
import { ModernSimMonitor } from "./sim/modern-monitor.js";

/**
 * The simulated guest, whose kernel moves pages as compaction would: a moved
 * page keeps its handle and gets the frame of a fresh page; `checkFrames`
 * reports it until the engine says it repaired it.
 */
class MovingGuest implements ModernPageSource {
  readonly frames = new Map<number, number>();
  readonly pending = new Map<number, number>();
  constructor(readonly guest: ModernSimGuest) {}
  allocate = (flavour: 0 | 1) => this.guest.allocate(flavour);
  free = (page: number) => this.guest.free(page);
  totalPages = () => this.guest.totalPages();
  allocateHuge = () => this.guest.allocateHuge();
  freeHuge = (page: number) => this.guest.freeHuge(page);
  splitHugePage = (page: number) => this.guest.splitHugePage(page);
  pageWords = (page: number) => this.guest.pageWords(page);
  frameNumber(page: number): number {
    return this.frames.get(page >>> 0) ?? this.guest.frameNumber(page);
  }
  /** The host's way to the batch page: wherever the page is now. */
  memoryAt(pfn: number): Uint32Array | undefined {
    for (const [page, frame] of this.frames) if (frame === pfn) return this.guest.memoryAt(this.guest.frameNumber(page));
    return this.guest.memoryAt(pfn);
  }
  /** Compaction: the page moves to the frame of a fresh page (held, so that nothing else gets it). */
  move(page: number): number {
    const now = this.guest.frameNumber(this.guest.allocate(ALLOC.CANSLEEP));
    this.pending.set(page >>> 0, now);
    return now;
  }
  checkFrames(moved: (page: number, told: number, now: number) => boolean): number {
    for (const [page, now] of [...this.pending]) {
      if (moved(page, this.frameNumber(page), now)) {
        this.frames.set(page, now);
        this.pending.delete(page);
      }
    }
    return 1;
  }
}

function setUp() {
  const guest = new ModernSimGuest({ totalPages: 20000, freePages: 12000, firstPfn: 4096, nosleepReserve: 300, sleepReserve: 100, huge: false });
  const source = new MovingGuest(guest);
  const monitor = new ModernSimMonitor({
    firstPfn: 4096,
    frames: 12000,
    totalPages: 20000,
    capabilities: 0x3e,
    startReply: "offered",
    memoryAt: (pfn) => source.memoryAt(pfn),
  });
  const commands: { cmd: number; arg: number; arg2: number; status: number }[] = [];
  const hypervisor: ModernHypervisor = {
    call(cmd, arg, arg2) {
      const reply = monitor.call(cmd, arg, arg2);
      commands.push({ cmd, arg, arg2, status: reply.status });
      return reply;
    },
  };
  const balloon = new ModernBalloon(hypervisor, source);
  monitor.target = 2000;
  balloon.init();
  balloon.work();
  return { guest, source, monitor, balloon, commands };
}

/** Every ballooned page's frame (as the page source says now) is locked with the host, and nothing else is. */
function expectHostAgrees(balloon: ModernBalloon, source: MovingGuest, monitor: ModernSimMonitor): void {
  const frames = [...balloon.balloonedPages().pages4k].map((page) => source.frameNumber(page));
  expect(frames.length).toBe(balloon.snapshot().size);
  expect(frames.every((pfn) => monitor.isLocked(pfn))).toBe(true);
  expect(monitor.lockedFrames).toBe(frames.length);
}

describe("today's driver's frame check (migratepage for pages the kernel moved)", () => {
  it("UNLOCKs each old frame, then LOCKs each new one, with single-entry batched commands; the batch page is followed without a command", () => {
    const { source, monitor, balloon, commands } = setUp();
    expect(balloon.snapshot().size).toBe(2000);
    const pages = balloon.balloonedPages().pages4k;
    const moving = [pages[3]!, pages[700]!, pages[1999]!];
    const told = moving.map((page) => source.frameNumber(page));
    const now = moving.map((page) => source.move(page));
    const batchNow = source.move(balloon.batchPageHandle);
    commands.length = 0;

    expect(balloon.checkFrames()).toEqual({ checked: 1, moved: 3, repaired: 3, released: 0, batchPageMoves: 1 });
    // The two halves of vmballoon_migratepage, every UNLOCK of the check first; each through the batch page, now at its new frame.
    expect(commands.map((c) => [c.cmd, c.arg, c.arg2, c.status])).toEqual([
      ...told.map(() => [MODERN_COMMANDS.BATCHED_UNLOCK, batchNow, 1, STATUS.SUCCESS]),
      ...now.map(() => [MODERN_COMMANDS.BATCHED_LOCK, batchNow, 1, STATUS.SUCCESS]),
    ]);
    for (const frame of told) expect(monitor.isLocked(frame)).toBe(false);
    for (const frame of now) expect(monitor.isLocked(frame)).toBe(true);
    expectHostAgrees(balloon, source, monitor);
    expect(balloon.snapshot().size).toBe(2000);
    expect(balloon.frameCheckTotals()).toEqual({ checks: 1, checked: 1, moved: 3, repaired: 3, released: 0, batchPageMoves: 1 });

    // The next inflation's batched commands carry the batch page's new frame.
    monitor.target = 2600;
    commands.length = 0;
    balloon.work();
    const batched = commands.filter((c) => c.cmd === MODERN_COMMANDS.BATCHED_LOCK);
    expect(batched.length).toBeGreaterThan(0);
    expect(batched.every((c) => c.arg === batchNow && c.status === STATUS.SUCCESS)).toBe(true);
    expect(balloon.snapshot().size).toBe(2600);
    expectHostAgrees(balloon, source, monitor);
  });

  it("a new frame the host refuses: the page leaves the balloon (one frame smaller) and is freed; an UNLOCK that fails leaves the page for the next check", () => {
    const { guest, source, monitor, balloon } = setUp();
    const pages = balloon.balloonedPages().pages4k;
    const free = guest.freeCount;
    const refusedNow = source.move(pages[10]!);
    monitor.refuse(refusedNow, STATUS.ERROR_PPN_PINNED);
    expect(balloon.checkFrames()).toMatchObject({ moved: 1, repaired: 0, released: 1 });
    expect(balloon.snapshot().size).toBe(1999);
    expect([...balloon.balloonedPages().pages4k]).not.toContain(pages[10]);
    expect(guest.freeCount).toBe(free - 1 + 1); // the fresh page taken by the move, the released page given back
    expectHostAgrees(balloon, source, monitor);

    // The host fails the next UNLOCK: the host keeps the old frame, and the next check UNLOCKs it, then LOCKs the new one.
    const told = source.frameNumber(pages[20]!);
    const now = source.move(pages[20]!);
    monitor.failNext(MODERN_COMMANDS.BATCHED_UNLOCK, 1, STATUS.ERROR_BUSY);
    expect(balloon.checkFrames()).toMatchObject({ moved: 1, repaired: 0, released: 0 });
    expect([monitor.isLocked(told), monitor.isLocked(now)]).toEqual([true, false]);
    expect(balloon.checkFrames()).toMatchObject({ moved: 0, repaired: 1, released: 0 });
    expect([monitor.isLocked(told), monitor.isLocked(now)]).toEqual([false, true]);
    expectHostAgrees(balloon, source, monitor);
  });
});
