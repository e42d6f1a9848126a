import { ALLOC, COMMANDS, STATUS } from "@vmballoon/protocol";
import { describe, expect, it } from "vitest";
import { NO_PAGE } from "../ports.js";
import { SimGuest } from "./guest.js";
import { SimMonitor } from "./monitor.js";
import { runScenario } from "./runner.js";
import { validateScenario } from "./scenario.js";

const monitor = () => {
  const m = new SimMonitor({ firstPfn: 100, frames: 10, totalPages: 8 });
  m.target = 3;
  return m;
};
const status = (m: SimMonitor, command: number, argument: number) => m.call(command, argument).status;
/** The statuses of commands sent one after another. */
const statuses = (m: SimMonitor, ...calls: [command: number, argument: number][]) => calls.map(([command, argument]) => status(m, command, argument));

describe("the reference monitor", () => {
  it("answers GET_TARGET with min(target, limit)", () => {
    const m = monitor();
    expect(m.call(COMMANDS.GET_TARGET, 2)).toEqual({ status: STATUS.SUCCESS, result: 2 });
    expect(m.call(COMMANDS.GET_TARGET, 50)).toEqual({ status: STATUS.SUCCESS, result: 3 });
  });

  it("answers LOCK by the first rule that applies: invalid, refused, locked, not needed", () => {
    const m = monitor();
    m.refuse(101, STATUS.ERROR_PPN_PINNED);
    expect(status(m, COMMANDS.LOCK, 99)).toBe(STATUS.ERROR_PPN_INVALID);
    expect(status(m, COMMANDS.LOCK, 110)).toBe(STATUS.ERROR_PPN_INVALID);
    expect(status(m, COMMANDS.LOCK, 101)).toBe(STATUS.ERROR_PPN_PINNED);
    expect(status(m, COMMANDS.LOCK, 100)).toBe(STATUS.SUCCESS);
    expect(status(m, COMMANDS.LOCK, 100)).toBe(STATUS.ERROR_PPN_LOCKED);
    expect(status(m, COMMANDS.LOCK, 102)).toBe(STATUS.SUCCESS);
    expect(status(m, COMMANDS.LOCK, 103)).toBe(STATUS.SUCCESS);
    expect(status(m, COMMANDS.LOCK, 104)).toBe(STATUS.ERROR_PPN_NOTNEEDED);
    m.target = 100;
    // Never more than the guest's total pages.
    for (let pfn = 104; pfn < 109; pfn++) expect(status(m, COMMANDS.LOCK, pfn)).toBe(STATUS.SUCCESS);
    expect(status(m, COMMANDS.LOCK, 109)).toBe(STATUS.ERROR_PPN_NOTNEEDED);
    expect(m.lockedFrames).toBe(8);
  });

  it("ignores a refusal of a frame outside the guest", () => {
    const m = monitor();
    m.refuse(5000, STATUS.ERROR_PPN_PINNED);
    m.refuse(100, STATUS.ERROR_BUSY);
    expect(status(m, COMMANDS.LOCK, 100)).toBe(STATUS.ERROR_BUSY);
  });

  it("answers UNLOCK of a frame that is not locked with PPN_UNLOCKED", () => {
    const m = monitor();
    expect(status(m, COMMANDS.UNLOCK, 100)).toBe(STATUS.ERROR_PPN_UNLOCKED);
    status(m, COMMANDS.LOCK, 100);
    expect(status(m, COMMANDS.UNLOCK, 100)).toBe(STATUS.SUCCESS);
    expect(m.isLocked(100)).toBe(false);
  });

  it("answers everything but START with RESET after a reset, and START clears it and every lock", () => {
    const m = monitor();
    status(m, COMMANDS.LOCK, 100);
    m.reset();
    expect(m.isLocked(100)).toBe(false);
    for (const command of [COMMANDS.GET_TARGET, COMMANDS.LOCK, COMMANDS.UNLOCK, COMMANDS.GUEST_ID]) {
      expect(status(m, command, 100)).toBe(STATUS.ERROR_RESET);
    }
    expect(status(m, COMMANDS.START, 2)).toBe(STATUS.SUCCESS);
    expect(status(m, COMMANDS.GUEST_ID, 1)).toBe(STATUS.SUCCESS);
  });

  it("answers LOCK and UNLOCK by the rules as forced failures and resets come and go", () => {
    const m = monitor();
    const { LOCK, UNLOCK, GET_TARGET, START } = COMMANDS;
    const { SUCCESS, FAILURE, ERROR_BUSY, ERROR_RESET } = STATUS;
    // A forced failure of another command does not touch LOCK, and is still there afterwards.
    m.failNext(GET_TARGET, 1, ERROR_BUSY);
    expect(statuses(m, [LOCK, 100])).toEqual([SUCCESS]);
    m.failNext(UNLOCK, 2, FAILURE);
    expect(statuses(m, [UNLOCK, 100], [UNLOCK, 100], [UNLOCK, 100], [GET_TARGET, 50])).toEqual([FAILURE, FAILURE, SUCCESS, ERROR_BUSY]);
    // Every forced failure spent: LOCK and UNLOCK are plain again, until a reset.
    expect(statuses(m, [LOCK, 100])).toEqual([SUCCESS]);
    m.reset();
    expect(statuses(m, [LOCK, 101], [UNLOCK, 100])).toEqual([ERROR_RESET, ERROR_RESET]);
    m.failNext(START, 1, ERROR_BUSY);
    expect(statuses(m, [START, 2], [LOCK, 101], [START, 2], [LOCK, 101], [UNLOCK, 101])).toEqual([ERROR_BUSY, ERROR_RESET, SUCCESS, SUCCESS, SUCCESS]);
  });

  it("answers an unknown command with CMD_INVALID, even during a reset", () => {
    const m = monitor();
    m.reset();
    expect(status(m, 9, 0)).toBe(STATUS.ERROR_CMD_INVALID);
  });

  it("spends forced failures first, adding counts and taking the latest status", () => {
    const m = monitor();
    m.failNext(COMMANDS.START, 1, STATUS.ERROR_BUSY);
    m.failNext(COMMANDS.START, 1, 0xffffffff);
    expect(m.call(COMMANDS.START, 2)).toEqual({ status: 0xffffffff, result: 0 });
    expect(status(m, COMMANDS.START, 2)).toBe(0xffffffff);
    expect(status(m, COMMANDS.START, 2)).toBe(STATUS.SUCCESS);
    m.failNext(COMMANDS.GET_TARGET, 1, STATUS.ERROR_BUSY);
    expect(m.call(COMMANDS.GET_TARGET, 100)).toEqual({ status: STATUS.ERROR_BUSY, result: 0 });
  });
});

describe("the reference guest", () => {
  const spec = { totalPages: 20, freePages: 10, firstPfn: 100, nosleepReserve: 4, sleepReserve: 2 };

  it("hands out firstPfn first, then the next frames, and hands a freed page out next", () => {
    const g = new SimGuest(spec);
    expect([g.allocate(ALLOC.NOSLEEP), g.allocate(ALLOC.NOSLEEP)]).toEqual([100, 101]);
    g.free(100);
    expect(g.allocate(ALLOC.NOSLEEP)).toBe(100);
  });

  it("fails NOSLEEP at or below its reserve and CANSLEEP at or below its own", () => {
    const g = new SimGuest(spec);
    for (let i = 0; i < 6; i++) expect(g.allocate(ALLOC.NOSLEEP)).not.toBe(NO_PAGE);
    expect(g.freeCount).toBe(4);
    expect(g.allocate(ALLOC.NOSLEEP)).toBe(NO_PAGE);
    expect(g.allocate(ALLOC.CANSLEEP)).toBe(106);
    expect(g.allocate(ALLOC.CANSLEEP)).toBe(107);
    expect(g.allocate(ALLOC.CANSLEEP)).toBe(NO_PAGE);
  });

  it("lets the workload take and give back pages, last taken first given back", () => {
    const g = new SimGuest(spec);
    g.use(3);
    expect(g.freeCount).toBe(7);
    g.release(1);
    expect(g.allocate(ALLOC.NOSLEEP)).toBe(102);
    g.use(100);
    expect([g.freeCount, g.workloadCount]).toEqual([0, 9]);
    g.release(100);
    expect([g.freeCount, g.workloadCount]).toEqual([9, 0]);
  });

  it("keeps frames of 2^31 and above whole, up to the last frame a scenario allows (2^32 - 2)", () => {
    const firstPfn = 2 ** 32 - 1 - 4;
    const g = new SimGuest({ totalPages: 8, freePages: 4, firstPfn, nosleepReserve: 0, sleepReserve: 0 });
    const pages = [0, 1, 2, 3].map(() => g.allocate(ALLOC.NOSLEEP));
    expect(pages).not.toContain(NO_PAGE);
    expect(pages.map((page) => g.frameNumber(page))).toEqual([firstPfn, firstPfn + 1, firstPfn + 2, 2 ** 32 - 2]);
    expect(g.allocate(ALLOC.CANSLEEP)).toBe(NO_PAGE);
    g.free(pages[3]!);
    g.free(pages[0]!);
    expect(Array.from(g.freeFrames())).toEqual([2 ** 32 - 2, firstPfn]);
    g.use(1);
    expect(Array.from(g.workloadFrames())).toEqual([firstPfn]);
  });

  it("runs a scenario whose frames lie above 2^31: LOCK, UNLOCK and the unload name the real frames", () => {
    const firstPfn = 2 ** 32 - 1 - 100;
    const scenario = validateScenario({
      cycles: 2,
      unload: true,
      guest: { totalPages: 100, freePages: 100, firstPfn, nosleepReserve: 0, sleepReserve: 0 },
      events: [
        { cycle: 1, setTarget: 100 },
        { cycle: 2, setTarget: 40 },
      ],
    });
    const locked: number[] = [];
    const unlocked: number[] = [];
    const result = runScenario(scenario, {
      onRecord: (record) => {
        if (record.t !== "cmd") return;
        if (record.cmd === "LOCK") locked.push(record.arg);
        if (record.cmd === "UNLOCK") unlocked.push(record.arg);
      },
    });
    expect(locked).toEqual(Array.from({ length: 100 }, (_, i) => firstPfn + i));
    expect(unlocked).toEqual(Array.from({ length: 60 }, (_, i) => 2 ** 32 - 2 - i));
    expect(result.snapshot.size).toBe(40);
    expect(result.exit).toEqual({ size: 0, guestFree: 100 });
  });
});
