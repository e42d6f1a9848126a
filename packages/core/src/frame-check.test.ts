import { COMMANDS, STATUS, type AllocFlavour } from "@vmballoon/protocol";
import { describe, expect, it } from "vitest";
import { Balloon } from "./balloon.js";
import { NO_PAGE, type Hypervisor, type HypervisorReply, type PageSource } from "./ports.js";
import { SimMonitor } from "./sim/monitor.js";

/**
 * Guest memory whose pages the test moves to other frames, as the kernel's
 * compaction does: a page is a handle (0, 1, 2, ...), its frame a number the
 * test can change. Implements the optional frame check.
 */
class MovablePages implements PageSource {
  /** The frame each page sits on now (-1: not present). */
  readonly frameNow = new Map<number, number>();
  /** The frame this source last reported for each page (frameNumber). */
  readonly frameTold = new Map<number, number>();
  readonly freed: number[] = [];
  private next = 0;
  private nextFrame = 5000;

  allocate(_flavour: AllocFlavour): number {
    const page = this.next++;
    const frame = this.nextFrame++;
    this.frameNow.set(page, frame);
    this.frameTold.set(page, frame);
    return page;
  }
  free(page: number): void {
    this.frameNow.delete(page);
    this.frameTold.delete(page);
    this.freed.push(page);
  }
  frameNumber(page: number): number {
    return this.frameTold.get(page)!;
  }
  totalPages(): number {
    return 100_000;
  }
  checkFrames(moved: (page: number, told: number, now: number) => boolean): number {
    let checked = 0;
    for (const [page, now] of [...this.frameNow]) {
      checked++;
      const told = this.frameTold.get(page)!;
      if (now !== told && moved(page, told, now) && now > 0) this.frameTold.set(page, now);
    }
    return checked;
  }
  /** The kernel moves a page to a new frame. */
  move(page: number, to = this.nextFrame++): number {
    this.frameNow.set(page, to);
    return to;
  }
}

/** Records every command the engine sends, in order, in front of a monitor. */
class Recorder implements Hypervisor {
  readonly calls: [string, number][] = [];
  constructor(private readonly inner: Hypervisor) {}
  call(command: number, argument: number): HypervisorReply {
    const name = Object.entries(COMMANDS).find(([, value]) => value === command)![0];
    this.calls.push([name, argument]);
    return this.inner.call(command, argument);
  }
}

function inflated(pages: number) {
  const monitor = new SimMonitor({ firstPfn: 0, frames: 20_000, totalPages: 100_000 });
  const source = new MovablePages();
  const recorder = new Recorder(monitor);
  const balloon = new Balloon(recorder, source);
  expect(balloon.init()).toBe(true);
  monitor.target = pages;
  balloon.work();
  expect(balloon.snapshot().size).toBe(pages);
  recorder.calls.length = 0;
  return { monitor, source, recorder, balloon };
}

describe("Balloon.checkFrames: a page the guest's kernel moved is repaired as today's driver's migratepage does", () => {
  it("UNLOCKs the old frame, then LOCKs the new one, through the balloon's own hypervisor and counters", () => {
    const { monitor, source, recorder, balloon } = inflated(10);
    const before = balloon.snapshot().stats;
    const old3 = source.frameNumber(3);
    const old7 = source.frameNumber(7);
    const new3 = source.move(3);
    const new7 = source.move(7);

    expect(balloon.checkFrames()).toStrictEqual({ checked: 10, moved: 2, repaired: 2, released: 0 });
    expect(recorder.calls).toStrictEqual([
      ["UNLOCK", old3],
      ["UNLOCK", old7],
      ["LOCK", new3],
      ["LOCK", new7],
    ]);
    expect([monitor.isLocked(old3), monitor.isLocked(old7), monitor.isLocked(new3), monitor.isLocked(new7)]).toStrictEqual([false, false, true, true]);
    expect(monitor.lockedFrames).toBe(10);
    expect(source.frameNumber(3)).toBe(new3);
    const after = balloon.snapshot();
    expect(after.size).toBe(10);
    expect(after.stats.lock - before.lock).toBe(2);
    expect(after.stats.unlock - before.unlock).toBe(2);

    // Nothing moved since: a second check sends nothing.
    recorder.calls.length = 0;
    expect(balloon.checkFrames()).toStrictEqual({ checked: 10, moved: 0, repaired: 0, released: 0 });
    expect(recorder.calls).toStrictEqual([]);
    expect(balloon.frameCheckTotals()).toStrictEqual({ checks: 2, checked: 20, moved: 2, repaired: 2, released: 0 });
  });

  it("a failed UNLOCK keeps the page as it was (the host still holds the old frame), and the next check repairs it", () => {
    const { monitor, source, recorder, balloon } = inflated(4);
    const old = source.frameNumber(2);
    const now = source.move(2);
    monitor.failNext(COMMANDS.UNLOCK, 1, STATUS.ERROR_BUSY);

    expect(balloon.checkFrames()).toStrictEqual({ checked: 4, moved: 1, repaired: 0, released: 0 });
    expect(recorder.calls).toStrictEqual([["UNLOCK", old]]);
    expect(source.frameNumber(2)).toBe(old);
    expect(monitor.isLocked(old)).toBe(true);
    expect(balloon.snapshot().stats.unlockFail).toBe(1);

    recorder.calls.length = 0;
    expect(balloon.checkFrames()).toStrictEqual({ checked: 4, moved: 1, repaired: 1, released: 0 });
    expect(recorder.calls).toStrictEqual([
      ["UNLOCK", old],
      ["LOCK", now],
    ]);
    expect(balloon.snapshot().size).toBe(4);
  });

  it("a refused LOCK of the new frame: the page leaves the balloon and is freed, and the size goes down (atomic64_dec(&b->size))", () => {
    const { monitor, source, recorder, balloon } = inflated(6);
    const old = source.frameNumber(4);
    const now = source.move(4);
    monitor.refuse(now, STATUS.ERROR_PPN_INVALID);

    expect(balloon.checkFrames()).toStrictEqual({ checked: 6, moved: 1, repaired: 0, released: 1 });
    expect(recorder.calls).toStrictEqual([
      ["UNLOCK", old],
      ["LOCK", now],
    ]);
    expect(source.freed).toStrictEqual([4]);
    expect(balloon.snapshot().size).toBe(5);
    expect([...balloon.balloonedPages()]).toStrictEqual([0, 1, 2, 3, 5]);
    expect(monitor.lockedFrames).toBe(5);
    expect(balloon.snapshot().stats.lockFail).toBe(1);

    // The engine's accounting stays whole: a deflate to 0 UNLOCKs exactly the five left.
    monitor.target = 0;
    recorder.calls.length = 0;
    balloon.work();
    expect(recorder.calls.filter(([name]) => name === "UNLOCK")).toHaveLength(5);
    expect(balloon.snapshot().size).toBe(0);
    expect(monitor.lockedFrames).toBe(0);
  });

  it("a page moved onto the frame another ballooned page moved out of is repaired too: every UNLOCK comes before the LOCKs", () => {
    const { monitor, source, recorder, balloon } = inflated(4);
    const frameOf1 = source.frameNumber(1);
    const frameOf2 = source.frameNumber(2);
    const elsewhere = source.move(1); // page 1 leaves its frame...
    source.move(2, frameOf1); // ...and page 2 lands on it
    expect(balloon.checkFrames()).toStrictEqual({ checked: 4, moved: 2, repaired: 2, released: 0 });
    expect(recorder.calls).toStrictEqual([
      ["UNLOCK", frameOf1],
      ["UNLOCK", frameOf2],
      ["LOCK", elsewhere],
      ["LOCK", frameOf1],
    ]);
    expect([monitor.isLocked(frameOf1), monitor.isLocked(frameOf2), monitor.isLocked(elsewhere)]).toStrictEqual([true, false, true]);
    expect(balloon.snapshot().size).toBe(4);
  });

  it("a page no longer present: its old frame is UNLOCKed and it leaves the balloon", () => {
    const { monitor, source, recorder, balloon } = inflated(3);
    const old = source.frameNumber(0);
    source.move(0, -1);
    expect(balloon.checkFrames()).toStrictEqual({ checked: 3, moved: 1, repaired: 0, released: 1 });
    expect(recorder.calls).toStrictEqual([["UNLOCK", old]]);
    expect(balloon.snapshot().size).toBe(2);
    expect(monitor.lockedFrames).toBe(2);
  });

  it("does nothing while a reset is pending: the next cycle gives every page back", () => {
    const { monitor, source, recorder, balloon } = inflated(3);
    source.move(1);
    monitor.reset();
    balloon.work(); // GET_TARGET answers RESET: reset_required is set
    expect(balloon.snapshot().resetRequired).toBe(true);
    recorder.calls.length = 0;
    expect(balloon.checkFrames()).toStrictEqual({ checked: 0, moved: 0, repaired: 0, released: 0 });
    expect(recorder.calls).toStrictEqual([]);
  });

  it("a page source without the check (the simulated guest: its pages never move) gets no command and no count", () => {
    const monitor = new SimMonitor({ firstPfn: 0, frames: 1000, totalPages: 1000 });
    const plain: PageSource = { allocate: () => NO_PAGE, free: () => {}, frameNumber: () => 0, totalPages: () => 1000 };
    const recorder = new Recorder(monitor);
    const balloon = new Balloon(recorder, plain);
    balloon.init();
    recorder.calls.length = 0;
    expect(balloon.checkFrames()).toStrictEqual({ checked: 0, moved: 0, repaired: 0, released: 0 });
    expect(recorder.calls).toStrictEqual([]);
    expect(balloon.frameCheckTotals()).toStrictEqual({ checks: 0, checked: 0, moved: 0, repaired: 0, released: 0 });
  });
});
