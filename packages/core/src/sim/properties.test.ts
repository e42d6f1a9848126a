import fc from "fast-check";
import { COMMANDS, type CommandName } from "@vmballoon/protocol";
import { describe, expect, it } from "vitest";
import { runScenario } from "./runner.js";
import { seedSimSession, type SeedSession } from "./seed-session.js";
import { formatTraceRecord } from "./session.js";
import { validateScenario, type Scenario } from "./scenario.js";

const STATUSES = [1, 2, 3, 4, 5, 6, 7, 8, 0xffffffff];
const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

/** Small random scenarios: every kind of event, forced failures of every command. */
const scenarios: fc.Arbitrary<Scenario> = fc
  .record({
    freePages: fc.integer({ min: 0, max: 3000 }),
    firstPfn: fc.integer({ min: 0, max: 1 << 20 }),
    extra: fc.integer({ min: 0, max: 3000 }),
    nosleep: fc.integer({ min: 0, max: 3000 }),
    sleep: fc.integer({ min: 0, max: 3000 }),
    cycles: fc.integer({ min: 1, max: 25 }),
    unload: fc.boolean(),
  })
  .chain((g) => {
    const totalPages = g.freePages + g.extra;
    const event = fc.oneof(
      fc.record({ setTarget: fc.integer({ min: 0, max: totalPages + 500 }) }),
      fc.constant({ reset: true }),
      fc.record({ guestUse: fc.integer({ min: 0, max: 2000 }) }),
      fc.record({ guestRelease: fc.integer({ min: 0, max: 2000 }) }),
      fc.record({
        refuse: fc.record({
          pfn: fc.integer({ min: g.firstPfn, max: g.firstPfn + g.freePages }),
          status: fc.constantFrom(...STATUSES),
        }),
      }),
      fc.record({
        failNext: fc.record({
          cmd: fc.constantFrom(...COMMAND_NAMES),
          count: fc.integer({ min: 0, max: 4 }),
          status: fc.constantFrom(...STATUSES),
        }),
      }),
    );
    const timed = fc.tuple(fc.integer({ min: 0, max: g.cycles }), event).map(([cycle, e]) => ({ cycle, ...e }));
    return fc.array(timed, { maxLength: 40 }).map((events) =>
      validateScenario({
        cycles: g.cycles,
        unload: g.unload,
        guest: { totalPages, freePages: g.freePages, firstPfn: g.firstPfn, nosleepReserve: g.nosleep, sleepReserve: g.sleep },
        events,
      }),
    );
  });

/** The invariants between the balloon and the guest's memory; returns what is wrong, or "". */
function memoryProblem(sim: SeedSession, scenario: Scenario): string {
  const { balloon } = sim;
  const guest = sim.guest!;
  const ballooned = balloon.balloonedPages();
  if (balloon.snapshot().size !== ballooned.length) {
    return `size ${balloon.snapshot().size} but ${ballooned.length} pages held`;
  }
  // Every frame is in exactly one place: free, ballooned, or the workload's.
  const { firstPfn, freePages } = scenario.guest;
  const places = new Uint8Array(freePages);
  const lists = { free: guest.freeFrames(), ballooned, workload: guest.workloadFrames() };
  let count = 0;
  for (const [name, frames] of Object.entries(lists)) {
    for (const pfn of frames) {
      const index = pfn - firstPfn;
      if (index < 0 || index >= freePages) return `${name} frame ${pfn} is not a guest frame`;
      if (places[index]) return `frame ${pfn} is in two places (one is ${name})`;
      places[index] = 1;
      count++;
    }
  }
  return count === freePages ? "" : `${freePages - count} frames lost`;
}

describe("properties of random scenarios", { timeout: 60_000 }, () => {
  it("size equals the pages held, no frame is both free and ballooned, and unload gives every page back", () => {
    let loaded = 0;
    fc.assert(
      fc.property(scenarios, (scenario) => {
        const sim = seedSimSession(scenario);
        if (!sim.load()) {
          // The driver did not load (START or GUEST_ID refused): it took nothing.
          expect(sim.balloon.snapshot().size).toBe(0);
          expect(memoryProblem(sim, scenario)).toBe("");
          return;
        }
        loaded++;
        for (let cycle = 1; cycle <= scenario.cycles; cycle++) {
          sim.cycle();
          expect(memoryProblem(sim, scenario)).toBe("");
        }
        expect(sim.unload().size).toBe(0);
        expect(memoryProblem(sim, scenario)).toBe("");
        expect(sim.balloon.snapshot().size).toBe(0);
        expect(sim.guest!.freeCount + sim.guest!.workloadCount).toBe(scenario.guest.freePages);
      }),
      { numRuns: 300 },
    );
    expect(loaded).toBeGreaterThan(0);
  });

  it("sends LOCK only for a page just taken from the guest, and UNLOCK only for the most recent ballooned page", () => {
    let loaded = 0;
    fc.assert(
      fc.property(scenarios, (scenario) => {
        const problems: string[] = [];
        const sim: SeedSession = seedSimSession(scenario, {
          onRecord: (record) => {
            if (record.t !== "cmd") return;
            const held = sim.balloon.balloonedPages();
            if (record.cmd === "LOCK" && (held.includes(record.arg) || sim.guest!.freeFrames().includes(record.arg))) {
              problems.push(`LOCK of frame ${record.arg}, which is not just allocated`);
            }
            if (record.cmd === "UNLOCK" && held[held.length - 1] !== record.arg) {
              problems.push(`UNLOCK of frame ${record.arg}, which is not the top of the balloon`);
            }
          },
        });
        if (sim.load()) {
          loaded++;
          for (let cycle = 1; cycle <= scenario.cycles; cycle++) sim.cycle();
        }
        expect(problems).toEqual([]);
      }),
      { numRuns: 100 },
    );
    expect(loaded).toBeGreaterThan(0);
  });

  it("is deterministic: the same scenario gives the same trace", () => {
    fc.assert(
      fc.property(scenarios, (scenario) => {
        const trace = () => {
          const lines: string[] = [];
          runScenario(scenario, { onRecord: (r) => lines.push(formatTraceRecord(r)) });
          return lines;
        };
        expect(trace()).toEqual(trace());
      }),
      { numRuns: 50 },
    );
  });
});
