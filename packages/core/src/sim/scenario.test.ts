import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ScenarioError, parseScenario, validateScenario } from "./scenario.js";

const valid = () => ({
  cycles: 10,
  unload: true,
  guest: { totalPages: 262144, freePages: 200000, firstPfn: 4096, nosleepReserve: 1024, sleepReserve: 256 },
  events: [
    { cycle: 1, setTarget: 40000 },
    { cycle: 3, reset: true },
    { cycle: 5, guestUse: 1000, guestRelease: 500 },
    { cycle: 2, refuse: { pfn: 4100, status: 5 } },
    { cycle: 7, failNext: { cmd: "UNLOCK", count: 2, status: 8 } },
  ],
});

type Mutation = (s: ReturnType<typeof valid>) => unknown;

/** Each bad input of SIMULATION.md, with the field its message must name. */
const BAD: [string, Mutation, string][] = [
  ["a missing field", (s) => ({ ...s, cycles: undefined }), "cycles"],
  ["a missing guest field", (s) => ({ ...s, guest: { ...s.guest, sleepReserve: undefined } }), "guest.sleepReserve"],
  ["a missing guest", (s) => ({ ...s, guest: undefined }), "guest"],
  ["missing events", (s) => ({ ...s, events: undefined }), "events"],
  ["a negative number", (s) => ((s.guest.freePages = -1), s), "guest.freePages"],
  ["a fractional number", (s) => ((s.events[0] = { cycle: 1, setTarget: 1.5 }), s), "events[0].setTarget"],
  ["a number given as a string", (s) => ({ ...s, cycles: "10" }), "cycles"],
  ["an unknown top-level key", (s) => ({ ...s, seed: 1 }), "seed"],
  ["an unknown guest key", (s) => ({ ...s, guest: { ...s.guest, swap: 0 } }), "guest.swap"],
  ["an unknown event key", (s) => ((s.events[1] = { cycle: 3, reboot: true } as never), s), "events[1].reboot"],
  ["an unknown command name", (s) => ((s.events[4] = { cycle: 7, failNext: { cmd: "BATCHED_LOCK", count: 1, status: 8 } }), s), "events[4].failNext.cmd"],
  ["totalPages above 2^32 - 1", (s) => ((s.guest.totalPages = 2 ** 32), s), "guest.totalPages"],
  ["firstPfn + freePages above 2^32 - 1", (s) => ((s.guest.firstPfn = 2 ** 32 - 100), s), "guest.firstPfn"],
  ["an event cycle past cycles", (s) => ((s.events[0] = { cycle: 11, setTarget: 1 }), s), "events[0].cycle"],
  ["an event without an action", (s) => ((s.events[0] = { cycle: 1 } as never), s), "events[0]"],
  ["unload that is not a boolean", (s) => ({ ...s, unload: "yes" }), "unload"],
  ["a refuse without a status", (s) => ((s.events[3] = { cycle: 2, refuse: { pfn: 4100 } } as never), s), "events[3].refuse.status"],
  ["events that are not an array", (s) => ({ ...s, events: {} }), "events"],
  ["a scenario that is not an object", () => [1, 2], ""],
];

describe("scenario validation", () => {
  it("accepts the example of SIMULATION.md", () => {
    const scenario = validateScenario(valid());
    expect(scenario.cycles).toBe(10);
    expect(scenario.events[4]!.failNext).toEqual({ cmd: "UNLOCK", count: 2, status: 8 });
  });

  it("takes unload as false when it is absent", () => {
    const { unload: _, ...rest } = valid();
    expect(validateScenario(rest).unload).toBe(false);
  });

  it("accepts firstPfn + freePages of exactly 2^32 - 1", () => {
    const s = valid();
    s.guest.firstPfn = 2 ** 32 - 1 - s.guest.freePages;
    expect(validateScenario(s).guest.firstPfn).toBe(s.guest.firstPfn);
  });

  it.each(BAD)("rejects %s, naming the field", (_what, mutate, field) => {
    const input = JSON.parse(JSON.stringify(mutate(valid()) ?? null));
    let error: unknown;
    try {
      validateScenario(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ScenarioError);
    const e = error as ScenarioError;
    expect(e.field).toBe(field);
    expect(e.code).toBe("E_SCENARIO");
    expect(e.message.startsWith(field ? `${field}: ` : "expected")).toBe(true);
    expect(e.message).not.toContain("\n");
  });

  it("reports a JSON syntax error with its position", () => {
    expect(() => parseScenario('{"cycles": 3,,}')).toThrow(/not valid JSON: .*position|column/);
  });

  /** Valid, or one ScenarioError of one line: never another exception, whatever the document. */
  function validOrOneLine(input: unknown): void {
    try {
      validateScenario(input);
    } catch (error) {
      expect(error).toBeInstanceOf(ScenarioError);
      expect((error as Error).message).not.toContain("\n");
    }
  }

  it("any JSON document is valid or gets one ScenarioError of one line", () => {
    fc.assert(fc.property(fc.jsonValue(), validOrOneLine), { numRuns: 1000 });
  });

  it("a valid scenario with any one value replaced by any JSON value is valid or gets one ScenarioError of one line", () => {
    const base = valid();
    const paths: (string | number)[][] = [];
    const walk = (value: unknown, path: (string | number)[]) => {
      paths.push(path);
      if (value !== null && typeof value === "object") {
        for (const [key, child] of Object.entries(value)) walk(child, [...path, Array.isArray(value) ? Number(key) : key]);
      }
    };
    walk(base, []);
    fc.assert(
      fc.property(fc.constantFrom(...paths.filter((path) => path.length > 0)), fc.jsonValue(), (path, replacement) => {
        const copy = JSON.parse(JSON.stringify(base));
        let at = copy;
        for (const key of path.slice(0, -1)) at = at[key];
        at[path[path.length - 1]!] = replacement;
        validOrOneLine(copy);
      }),
      { numRuns: 2000 },
    );
  });
});
