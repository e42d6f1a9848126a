import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BATCH_ENTRY,
  BATCH_MAX_PAGES,
  CAPABILITIES,
  CAPABILITY_NAMES,
  COMMANDS,
  COMMANDS_WITH_TARGET_MASK,
  DRIVER_CAPABILITIES,
  FRAMES_PER_2M_PAGE,
  MODERN_COMMANDS,
  MODERN_COMMAND_NAMES,
  MODERN_COMMAND_STAT_NAMES,
  MODERN_GENERAL_STAT_NAMES,
  MODERN_PAGE_STAT_NAMES,
  PAGE_SIZE_NAMES,
  SUCCESS_WITH_CAPABILITIES,
  batchEntryHigh,
  batchEntryLow,
  batchEntryPfn,
  batchEntryStatus,
  decodeBatchEntry,
  encodeBatchEntry,
  fitsBatchStatus,
  modernCommandName,
  modernCommandNumber,
  returnsTarget,
} from "./index.js";

/** Today's driver, as the repository keeps it. */
const driver = readFileSync(new URL("../../../__fixtures__/seed/modern/vmw_balloon.c", import.meta.url), "utf8");

/** The body of `enum NAME { … }` in the driver. */
function enumBody(name: string): string {
  const match = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(driver);
  if (!match) throw new Error(`no enum ${name}`);
  return match[1]!.replace(/\/\*[\s\S]*?\*\//g, "");
}

/** The strings of `static const char * const NAME[] = { [X] = "y", … }`, in order. */
function stringTable(name: string): string[] {
  const match = new RegExp(`${name}\\[\\] = \\{([^}]*)\\}`).exec(driver);
  if (!match) throw new Error(`no table ${name}`);
  return [...match[1]!.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
}

describe("today's driver's constants", () => {
  it("has the driver's commands with its numbers, the seed's five unchanged, and no command 5", () => {
    const body = enumBody("vmballoon_cmd_type");
    const names = [...body.matchAll(/^\s*VMW_BALLOON_CMD_(\w+)(?:\s*=\s*(\d+))?,/gm)].filter((m) => m[1] !== "LAST");
    let next = 0;
    const fromC: Record<string, number> = {};
    for (const [, name, value] of names) {
      next = value === undefined ? next : Number(value);
      fromC[name!] = next++;
    }
    expect(MODERN_COMMANDS).toEqual(fromC);
    for (const [name, number] of Object.entries(COMMANDS)) expect(MODERN_COMMANDS[name as keyof typeof COMMANDS]).toBe(number);
    expect(modernCommandName(5)).toBeUndefined();
    expect(modernCommandNumber("NOPE")).toBeUndefined();
    for (const [name, number] of Object.entries(MODERN_COMMANDS)) {
      expect(MODERN_COMMAND_NAMES[number]).toBe(name);
      expect(modernCommandNumber(name)).toBe(number);
    }
  });

  it("has the capability bits, START's status with capabilities and what the driver asks for", () => {
    const body = enumBody("vmwballoon_capabilities");
    for (const [, name, bit] of body.matchAll(/VMW_BALLOON_(\w+)\s*=\s*\(1 << (\d)\)/g)) {
      expect([name, CAPABILITIES[name as keyof typeof CAPABILITIES]]).toEqual([name, 1 << Number(bit)]);
    }
    expect(Object.keys(CAPABILITIES)).toHaveLength(5);
    for (const [name, bit] of Object.entries(CAPABILITIES)) expect(CAPABILITY_NAMES[bit]).toBe(name);
    expect(driver).toContain(`#define VMW_BALLOON_SUCCESS_WITH_CAPABILITIES\t(0x${SUCCESS_WITH_CAPABILITIES.toString(16).padStart(8, "0")})`);
    expect(DRIVER_CAPABILITIES).toBe(Object.values(CAPABILITIES).reduce((a, b) => a | b, 0));
  });

  it("knows which commands return the target, as VMW_BALLOON_CMD_WITH_TARGET_MASK", () => {
    const mask = /#define VMW_BALLOON_CMD_WITH_TARGET_MASK[\s\S]*?BATCHED_2M_UNLOCK\)\)/.exec(driver)![0];
    const named = [...mask.matchAll(/VMW_BALLOON_CMD_(\w+)\)/g)].map((m) => m[1]!);
    expect(named.sort()).toEqual(
      Object.keys(MODERN_COMMANDS)
        .filter((n) => returnsTarget(MODERN_COMMANDS[n as keyof typeof MODERN_COMMANDS]))
        .sort(),
    );
    expect(COMMANDS_WITH_TARGET_MASK).toBe(named.reduce((m, n) => m | (1 << MODERN_COMMANDS[n as keyof typeof MODERN_COMMANDS]), 0));
    expect(returnsTarget(MODERN_COMMANDS.START)).toBe(false);
    expect(returnsTarget(31)).toBe(false);
  });

  it("has the counter and page size names in the driver's print order", () => {
    expect(Object.values(MODERN_COMMAND_STAT_NAMES)).toEqual(stringTable("vmballoon_cmd_names"));
    expect([...MODERN_GENERAL_STAT_NAMES]).toEqual(stringTable("vmballoon_stat_names"));
    expect([...MODERN_PAGE_STAT_NAMES]).toEqual(stringTable("vmballoon_stat_page_names"));
    expect([...PAGE_SIZE_NAMES]).toEqual(stringTable("vmballoon_page_size_names"));
  });

  it("has 512 entries a batch page and 512 frames a 2 MB page", () => {
    expect(BATCH_MAX_PAGES * 8).toBe(4096);
    expect(FRAMES_PER_2M_PAGE).toBe(2 ** 21 / 4096);
  });
});

describe("the batch entry", () => {
  const pfn = fc.integer({ min: 0, max: BATCH_ENTRY.MAX_PFN });
  const status = fc.integer({ min: 0, max: 31 });

  it("puts the status in bits 0-4 and the frame in bits 12-63", () => {
    expect(encodeBatchEntry(1, 0)).toBe(0x1000n);
    expect(encodeBatchEntry(0xabcde, 6)).toBe(0xabcde006n);
    expect(encodeBatchEntry(2 ** 52 - 1, 31)).toBe(0xfffffffffffff01fn);
  });

  it("round-trips any frame and status, as one 64-bit value and as two little-endian words", () => {
    fc.assert(
      fc.property(pfn, status, (p, s) => {
        const entry = encodeBatchEntry(p, s);
        expect(decodeBatchEntry(entry)).toEqual({ pfn: p, status: s });
        const low = batchEntryLow(p, s);
        const high = batchEntryHigh(p);
        expect(BigInt(low) | (BigInt(high) << 32n)).toBe(entry);
        expect([batchEntryPfn(low, high), batchEntryStatus(low)]).toEqual([p, s]);
      }),
    );
  });

  it("ignores the reserved bits when decoding, and refuses what does not fit", () => {
    expect(decodeBatchEntry(0x5000n | 0xfe0n | 3n)).toEqual({ pfn: 5, status: 3 });
    expect(() => encodeBatchEntry(2 ** 52, 0)).toThrow(RangeError);
    expect(() => encodeBatchEntry(1, 32)).toThrow(RangeError);
    expect([fitsBatchStatus(31), fitsBatchStatus(32), fitsBatchStatus(-1), fitsBatchStatus(1.5)]).toEqual([true, false, false, false]);
  });
});
