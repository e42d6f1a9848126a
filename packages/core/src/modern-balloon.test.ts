import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { modernSimSession, validateModernScenario, type ModernScenarioEvent } from "./sim/index.js";

const event: fc.Arbitrary<Omit<ModernScenarioEvent, "cycle">> = fc.oneof(
  fc.record({ setTarget: fc.oneof(fc.integer({ min: 0, max: 9000 }), fc.constant(0)) }),
  fc.record({ guestUse: fc.nat(3000) }),
  fc.record({ guestRelease: fc.nat(3000) }),
  fc.record({ huge: fc.boolean() }),
  fc.record({ refuse: fc.record({ pfn: fc.integer({ min: 4096, max: 4096 + 12000 }), status: fc.integer({ min: 1, max: 31 }) }) }),
  fc.record({
    failNext: fc.record({
      cmd: fc.constantFrom(
        "BATCHED_LOCK",
        "BATCHED_UNLOCK",
        "BATCHED_2M_LOCK",
        "BATCHED_2M_UNLOCK",
        "LOCK",
        "UNLOCK",
        "GET_TARGET",
        "START",
      ) as fc.Arbitrary<"LOCK">,
      count: fc.integer({ min: 1, max: 3 }),
      status: fc.integer({ min: 1, max: 8 }),
    }),
  }),
  fc.record({ shrink: fc.integer({ min: 1, max: 3000 }) }),
  fc.record({ migrate: fc.integer({ min: 4096, max: 4096 + 12000 }) }),
  fc.record({ doorbell: fc.constant(true) }),
  fc.record({ reset: fc.constant(true) }),
);

describe("today's driver's engine with its reference monitor", () => {
  it("keeps the frames it holds and the frames the host has locked the same, and loses no guest frame, cycle after cycle and at the unload, whatever the host and the guest do", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 0x02, 0x06, 0x0e, 0x16, 0x3e, 0x2c),
        fc.array(fc.record({ cycle: fc.integer({ min: 1, max: 12 }), action: event }), { maxLength: 30 }),
        (capabilities, timed) => {
          const scenario = validateModernScenario({
            cycles: 12,
            unload: true,
            capabilities,
            shrinker: true,
            guest: { totalPages: 20000, freePages: 12000, firstPfn: 4096, nosleepReserve: 300, sleepReserve: 100, huge: true },
            events: [{ cycle: 1, setTarget: 6000 }, ...timed.map(({ cycle, action }) => ({ cycle, ...action }))],
          });
          const sim = modernSimSession(scenario);
          const { balloon } = sim;
          const guest = sim.guest!;
          const monitor = sim.monitor!;
          // The batch pages: one a successful reset with batching; the old one is never freed (modern: a leak).
          const batchPages: number[] = [];
          const pageWords = guest.pageWords.bind(guest);
          guest.pageWords = (page) => (batchPages.push(page), pageWords(page));
          const heldBatchPages = () => batchPages.filter((page) => guest.memoryAt(guest.frameNumber(page)) !== undefined).length;
          /** Every frame is free, the workload's, ballooned or a batch page. */
          const conserved = () => expect(guest.freeCount + guest.workloadCount + balloon.snapshot().size + heldBatchPages()).toBe(12000);
          sim.load();
          for (let cycle = 1; cycle <= scenario.cycles; cycle++) {
            sim.cycle();
            conserved();
            const snapshot = balloon.snapshot();
            // A reset pending: the host has forgotten its locks; the driver pops at its next turn (or, when the
            // command that would have told it failed otherwise, such as a forced GET_TARGET failure, later).
            if (snapshot.resetRequired || monitor.resetPending) continue;
            const { pages4k, pages2m } = balloon.balloonedPages();
            const frames = [...pages4k].map((page) => guest.frameNumber(page));
            for (const page of pages2m) for (let i = 0; i < 512; i++) frames.push(guest.frameNumber(page) + i);
            expect(frames.length).toBe(snapshot.size);
            expect(new Set(frames).size).toBe(frames.length);
            expect(frames.every((pfn) => monitor.isLocked(pfn))).toBe(true);
            expect(monitor.lockedFrames).toBe(frames.length);
          }
          // The offered reply keeps 2 MB pages at START(0): the unload always finishes.
          expect(sim.unload().hang).toBe(false);
          expect(balloon.snapshot().size).toBe(0);
          conserved();
        },
      ),
      { numRuns: 120 },
    );
  });
});
