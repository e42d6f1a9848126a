import { describe, expect, it } from "vitest";
import { modernSimSession } from "./modern-session.js";
import { seedSimSession } from "./seed-session.js";
import { validateScenario } from "./scenario.js";
import { validateModernScenario } from "./modern-scenario.js";

const guest = { totalPages: 8192, freePages: 6144, firstPfn: 4096, nosleepReserve: 64, sleepReserve: 16 };

describe("the host's hooks: frames the workload pops, frames the monitor locks", () => {
  it("the seed's guest and monitor report each popped frame and each lock", () => {
    const sim = seedSimSession(validateScenario({ cycles: 3, guest, events: [] }));
    const popped: number[] = [];
    const locked: number[] = [];
    sim.guest!.onUse = (pfn) => popped.push(pfn);
    sim.monitor!.onLock = (pfn, frames) => {
      expect(frames).toBe(1);
      locked.push(pfn);
    };
    sim.guest!.use(100);
    expect(popped).toEqual([...sim.guest!.workloadFrames()]);
    expect(sim.load()).toBe(true);
    sim.monitor!.target = 500;
    for (let c = 1; c <= 3; c++) sim.cycle();
    expect(locked.length).toBe(sim.monitor!.lockedFrames);
    expect(locked.length).toBeGreaterThan(0);
    expect(locked.every((pfn) => sim.monitor!.isLocked(pfn))).toBe(true);
    expect(popped.some((pfn) => locked.includes(pfn))).toBe(false);
  });

  it("today's guest and monitor report each popped frame, each 4 KB lock and each 2 MB lock (512 frames)", () => {
    const scenario = validateModernScenario({ cycles: 4, guest: { ...guest, huge: true }, events: [] });
    const sim = modernSimSession(scenario);
    const popped: number[] = [];
    const locks = new Map<number, number>();
    sim.guest!.onUse = (pfn) => popped.push(pfn);
    sim.monitor!.onLock = (pfn, frames) => locks.set(pfn, frames);
    sim.guest!.use(700);
    expect(popped.length).toBe(700);
    expect(new Set(popped).size).toBe(700);
    sim.load();
    sim.monitor!.target = 3000;
    for (let c = 1; c <= 4; c++) sim.cycle();
    let frames = 0;
    for (const [pfn, n] of locks) {
      frames += n;
      expect(sim.monitor!.isLocked(pfn)).toBe(true);
      if (n === 512) expect(pfn % 512).toBe(0);
    }
    expect(frames).toBe(sim.monitor!.lockedFrames);
    expect([...locks.values()]).toContain(512);
  });
});
