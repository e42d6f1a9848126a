import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { HvError } from "./errors.js";
import { DEFAULT_PRESSURE_TRIGGER, MemoryPressure, checkPressureTrigger, type PressureSystem } from "./pressure.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const root = typeof process.geteuid === "function" && process.geteuid() === 0;
const psi = linuxX64 && existsSync("/proc/pressure/memory");

/** A system whose poll answers from a queue of revents; records what was written and closed. */
function fakeSystem(revents: number[]) {
  const calls: string[] = [];
  const system: PressureSystem = {
    open: (path) => (calls.push(`open ${path}`), 7),
    write: (fd, trigger) => void calls.push(`write ${fd} ${trigger}`),
    poll: () => revents.shift() ?? 0,
    close: (fd) => void calls.push(`close ${fd}`),
  };
  return { system, calls };
}

describe("PSI triggers", () => {
  it("checks a trigger's form and the kernel's limits before writing it", () => {
    expect(checkPressureTrigger(DEFAULT_PRESSURE_TRIGGER)).toBeUndefined();
    expect(checkPressureTrigger("full 1 10000000")).toBeUndefined();
    expect(checkPressureTrigger("some 150000")).toMatch(/some\|full THRESHOLD_US WINDOW_US/);
    expect(checkPressureTrigger("some 150000 100000")).toMatch(/window must be from 500000/);
    expect(checkPressureTrigger("some 0 2000000")).toMatch(/threshold must be from 1/);
    expect(checkPressureTrigger("some 3000000 2000000")).toMatch(/threshold must be from 1/);
    const { system, calls } = fakeSystem([]);
    expect(() => MemoryPressure.open("most 1 2", { system })).toThrow(RangeError);
    expect(calls).toEqual([]);
  });

  it("writes the trigger once, reports POLLPRI once per event, and closes", () => {
    const { system, calls } = fakeSystem([0, 0x2, 0, 0x2]);
    const pressure = MemoryPressure.open("some 150000 2000000", { system, path: "/x/memory" });
    expect(calls).toEqual(["open /x/memory", "write 7 some 150000 2000000"]);
    expect([pressure.fired(), pressure.fired(), pressure.fired(), pressure.fired(), pressure.fired()]).toEqual([false, true, false, true, false]);
    expect(pressure.events).toBe(2);
    pressure.close();
    pressure.close();
    expect(calls.at(-1)).toBe("close 7");
    expect(calls.filter((call) => call.startsWith("close"))).toHaveLength(1);
    expect(pressure.fired()).toBe(false);
  });

  it("a broken trigger (POLLERR) throws; a missing file is E_NO_PRESSURE; a refused write closes the file", () => {
    const broken = MemoryPressure.open(undefined, { system: fakeSystem([0x8]).system });
    expect(() => broken.fired()).toThrow(/POLLERR/);
    const missing: PressureSystem = {
      ...fakeSystem([]).system,
      open: () => {
        throw Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT" });
      },
    };
    let error: unknown;
    try {
      MemoryPressure.open(undefined, { system: missing });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(HvError);
    expect((error as HvError).code).toBe("E_NO_PRESSURE");
    const { system, calls } = fakeSystem([]);
    const refusing = {
      ...system,
      write: () => {
        throw Object.assign(new Error("EINVAL"), { code: "EINVAL" });
      },
    };
    expect(() => MemoryPressure.open(undefined, { system: refusing })).toThrow(/EINVAL/);
    expect(calls).toEqual(["open /proc/pressure/memory", "close 7"]);
  });

  it.skipIf(!psi || !root)("on this kernel: the default trigger is one the kernel takes; a 1 s window only with CAP_SYS_RESOURCE (needs root and PSI)", () => {
    // The kernel checks a trigger when it is written: the default's window of 2 s is taken with or without the capability.
    const pressure = MemoryPressure.open();
    expect(pressure.trigger).toBe(DEFAULT_PRESSURE_TRIGGER);
    pressure.fired(); // poll with a timeout of 0: returns, whatever the pressure
    pressure.close();
    const capSysResource = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))![1]!;
    const privileged = ((BigInt(`0x${capSysResource}`) >> 24n) & 1n) === 1n;
    let code: string | undefined;
    try {
      MemoryPressure.open("some 150000 1000000").close();
    } catch (error) {
      code = (error as NodeJS.ErrnoException).code;
    }
    expect(code).toBe(privileged ? undefined : "EINVAL");
  });
});
