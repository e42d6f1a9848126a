/**
 * The driver session both drivers share: what every caller (simulate, the
 * runners, run, the host) relies on, checked for each driver through the
 * same tests.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DRIVER_NAMES, ModernSimGuest, driver, formatTraceRecord, runSession, type AnyScenario, type DriverName, type MachinePageSource } from "./index.js";

const FIXTURES = new URL("../../../../__fixtures__/conformance/", import.meta.url);
/** A public scenario of each driver with guest and monitor events on many cycles. */
const SCENARIOS: Record<DriverName, string> = { seed: "random-17.scenario.json", modern: "random-23.scenario.json" };

function scenarioOf(name: DriverName): AnyScenario {
  const folder = name === "seed" ? "" : "modern/";
  return driver(name).parseScenario(readFileSync(new URL(`${folder}${SCENARIOS[name]}`, FIXTURES), "utf8"));
}

/** The trace of a session run through a scenario. */
function traceOf(name: DriverName, scenario: AnyScenario, drive?: (cycle: number, apply: (event: object) => void) => void): string[] {
  const lines: string[] = [];
  const session = driver(name).simulate(scenario, { onRecord: (record) => lines.push(formatTraceRecord(record)) });
  if (drive === undefined) {
    runSession(session, scenario);
    return lines;
  }
  // The same time as runSession, with the caller applying events as each cycle begins (as the host does).
  const apply = (event: object) => session.apply(event);
  drive(0, apply);
  session.load();
  for (let cycle = 1; cycle <= scenario.cycles; cycle++) {
    drive(cycle, apply);
    session.cycle();
    session.recordCycle();
  }
  session.finish();
  drive(scenario.cycles + 1, apply);
  if (scenario.unload) session.unload();
  return lines;
}

describe("DriverSession", () => {
  it("names both drivers, each picked by its name", () => {
    expect(DRIVER_NAMES).toEqual(["seed", "modern"]);
    for (const name of DRIVER_NAMES) expect(driver(name).name).toBe(name);
    expect(DRIVER_NAMES.filter((name) => driver(name).shrinker)).toEqual(["modern"]);
  });

  describe.each(DRIVER_NAMES)("the %s driver", (name) => {
    it("a session's apply() of setTarget, guestUse and guestRelease at a cycle's start gives the trace of the same events scheduled", () => {
      const base = scenarioOf(name);
      // Only the actions the host takes: targets and the workload.
      const events = base.events
        .filter((e) => e.setTarget !== undefined || e.guestUse !== undefined || e.guestRelease !== undefined)
        .map(({ cycle, setTarget, guestUse, guestRelease }) => ({ cycle, setTarget, guestUse, guestRelease }));
      expect(events.length).toBeGreaterThan(3);
      const scheduled = { ...base, events } as AnyScenario;
      const unscheduled = { ...base, events: [] } as AnyScenario;
      const expected = traceOf(name, scheduled);
      const applied = traceOf(name, unscheduled, (cycle, apply) => {
        for (const { cycle: at, ...event } of events) if (at === cycle) apply(event);
      });
      expect(applied).toEqual(expected);
      expect(expected.some((line) => line.includes('"t":"cycle"'))).toBe(true);
    });

    it("runs on a machine's page source: every page back at the unload, the batch page too (the simulation keeps it, as the C does)", () => {
      const spec = { totalPages: 30_000, freePages: 20_000, firstPfn: 4096, nosleepReserve: 500, sleepReserve: 100, huge: false };
      const guest = new ModernSimGuest(spec);
      let releasedIdle = 0;
      const source: MachinePageSource = Object.assign(Object.create(guest) as ModernSimGuest, {
        frameLimit: () => spec.firstPfn + spec.freePages,
        memoryAt: (pfn: number) => guest.memoryAt(pfn),
        releaseIdle: () => void releasedIdle++,
      });
      const session = driver(name).onMachine(source, { target: 5000, guestFree: () => guest.freeCount });
      expect(session.load()).toBe(true);
      for (let i = 0; i < 3; i++) {
        session.cycle();
        session.checkFrames();
      }
      expect(session.snapshot().size).toBe(5000);
      expect(session.monitor!.lockedFrames).toBe(5000);
      expect(releasedIdle).toBe(3);
      const exit = session.unload();
      expect(exit).toEqual({ size: 0, guestFree: spec.freePages, hang: false });
      expect(guest.freeCount).toBe(spec.freePages);
    });
  });
});
