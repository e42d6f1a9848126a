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
  MODERN_COMMAND_LAST,
  MODERN_COMMAND_NAMES,
  MODERN_COMMAND_STAT_NAMES,
  MODERN_GENERAL_STAT_NAMES,
  MODERN_PAGE_STAT_NAMES,
  PAGE_SIZE_NAMES,
  STATUS,
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
import { conformanceRecords, doc, forcedStatuses } from "./test-fixtures.js";

const spec = doc("SIMULATION-MODERN.md");
const records = conformanceRecords("modern/");
const commands = records.filter((r) => r.t === "cmd");

/** The names listed after `lead` in the spec (by commas, "and" or "×"), up to the first `)`, `.` or ", then". */
function specList(lead: string): string[] {
  const at = spec.indexOf(lead);
  if (at < 0) throw new Error(`SIMULATION-MODERN.md no longer says ${JSON.stringify(lead)}`);
  const text = /^(.*?)(?:, then |[.)])/.exec(spec.slice(at + lead.length).replace(/\s+/g, " "))![1]!;
  return text.split(/,| and | × /).map((name) => name.trim().replace(/^\(/, ""));
}

/** A debugfs text of today's driver from the traces, with its statistics on (a command line has "(N failed)"). */
const debugfs = records.find((r) => r.t === "debugfs" && /\(\d+ failed\)/.test(r.text!))!.text!;
/** Its labels: "start", "alloc(4k)" (printed `alloc             (4k)`). */
const labels = debugfs.split("\n").map((line) => /^(\S+)\s*(\(\w+\))?\s*:/.exec(line)?.slice(1).join(""));

describe("today's driver's constants, as the spec and the conformance traces have them", () => {
  it("has the spec's ten commands in its order, the seed's five unchanged, the batched ones 6 to 9, the doorbell 10, and no command 5", () => {
    const names = specList("`cmd` names: ");
    expect(names).toHaveLength(10);
    expect(Object.keys(MODERN_COMMANDS)).toEqual(names);
    for (const [name, number] of Object.entries(COMMANDS)) expect(MODERN_COMMANDS[name as keyof typeof COMMANDS]).toBe(number);
    // "BATCHED_LOCK/UNLOCK (6, 7) if BATCHED (0x04); BATCHED_2M_LOCK/UNLOCK (8, 9) …; VMCI_DOORBELL_SET (10)"
    const numbered = new Map<string, number>();
    for (const [, prefix, first, second, a, b] of spec.matchAll(/\b([A-Z0-9_]*_)(LOCK)\/(UNLOCK) \((\d+), (\d+)\)/g)) {
      numbered.set(`${prefix}${first}`, Number(a)).set(`${prefix}${second}`, Number(b));
    }
    numbered.set("VMCI_DOORBELL_SET", Number(/VMCI_DOORBELL_SET \((\d+)\)/.exec(spec)![1]));
    expect(numbered.size).toBe(5);
    for (const [name, number] of numbered) expect([name, MODERN_COMMANDS[name as keyof typeof MODERN_COMMANDS]]).toEqual([name, number]);
    expect(spec).toMatch(/Command 5 and numbers above 10 never are/);
    expect([modernCommandName(5), modernCommandName(MODERN_COMMAND_LAST + 1), MODERN_COMMAND_LAST]).toEqual([undefined, undefined, 10]);
    expect(modernCommandNumber("NOPE")).toBeUndefined();
    for (const [name, number] of Object.entries(MODERN_COMMANDS)) {
      expect(MODERN_COMMAND_NAMES[number]).toBe(name);
      expect(modernCommandNumber(name)).toBe(number);
    }
  });

  it("knows every command the traces show, and the traces show every one", () => {
    expect(new Set(commands.map((r) => r.cmd))).toEqual(new Set(Object.keys(MODERN_COMMANDS)));
  });

  it("knows every status the traces show, of a command and of a batch entry, but those the scenarios forced", () => {
    const known = new Set<number>([...Object.values(STATUS), SUCCESS_WITH_CAPABILITIES]);
    const forced = forcedStatuses("modern/");
    const shown = new Set(commands.flatMap((r) => [r.status!, ...(r.batch ?? []).map(([, status]) => status)]));
    const unknown = [...shown].filter((status) => !known.has(status) && !forced.has(status));
    expect(unknown).toEqual([]);
    // START answers with its capabilities in this status, and the traces show it.
    expect(commands.filter((r) => r.cmd === "START" && r.status === SUCCESS_WITH_CAPABILITIES).length).toBeGreaterThan(0);
  });

  it("has the capability bits, START's status with capabilities and what the driver asks for", () => {
    // "LOCK/UNLOCK if BASIC (0x02) negotiated; … if BATCHED (0x04); … if BATCHED_2M (0x08); … if SIGNALLED_WAKEUP (0x10)"
    const bits = [...spec.matchAll(/\bif ([A-Z0-9_]+) \((0x[0-9A-Fa-f]+)\)/g)].map(([, name, bit]) => [name!, Number(bit)] as const);
    expect(bits.map(([name]) => name)).toEqual(["BASIC", "BATCHED", "BATCHED_2M", "SIGNALLED_WAKEUP"]);
    for (const [name, bit] of bits) {
      const ours = Object.entries(CAPABILITIES).find(([key]) => key === `${name}_CMDS` || key === `${name}_CMD`);
      expect([name, ours?.[1]]).toEqual([name, bit]);
    }
    // The one the spec names without its bit: what 0x3e leaves.
    expect(spec).toContain("64_BIT_TARGET");
    expect(CAPABILITIES["64_BIT_TARGET"]).toBe(DRIVER_CAPABILITIES & ~bits.reduce((mask, [, bit]) => mask | bit, 0));
    expect(Object.keys(CAPABILITIES)).toHaveLength(5);
    for (const [name, bit] of Object.entries(CAPABILITIES)) expect(CAPABILITY_NAMES[bit]).toBe(name);
    expect(SUCCESS_WITH_CAPABILITIES).toBe(Number(/SUCCESS_WITH_CAPABILITIES \((0x[0-9a-f]+)\)/.exec(spec)![1]));
    expect(DRIVER_CAPABILITIES).toBe(Number(/`VMW_BALLOON_CAPABILITIES` = (0x[0-9a-f]+)/.exec(spec)![1]));
    expect(DRIVER_CAPABILITIES).toBe(Number(/^balloon capabilities\s*:\s*(0x[0-9a-f]+)$/m.exec(debugfs)![1]));
    expect(DRIVER_CAPABILITIES).toBe(Object.values(CAPABILITIES).reduce((a, b) => a | b, 0));
  });

  it("knows which commands return the target: GET_TARGET, LOCK, UNLOCK and the four batched ones, and no other returns a number in EBX", () => {
    expect(spec).toMatch(/\*\*Result of successful LOCK, UNLOCK and the four batched commands is `E`\.\*\*/);
    const named = ["GET_TARGET", "LOCK", "UNLOCK", ...Object.keys(MODERN_COMMANDS).filter((name) => name.startsWith("BATCHED_"))];
    expect(named).toHaveLength(7);
    expect(
      Object.keys(MODERN_COMMANDS)
        .filter((n) => returnsTarget(MODERN_COMMANDS[n as keyof typeof MODERN_COMMANDS]))
        .sort(),
    ).toEqual(named.sort());
    expect(COMMANDS_WITH_TARGET_MASK).toBe(named.reduce((m, n) => m | (1 << MODERN_COMMANDS[n as keyof typeof MODERN_COMMANDS]), 0));
    // In the traces, a successful command other than START (whose result is its capabilities) returns 0 unless it returns the target.
    const nonzero = new Set(commands.filter((r) => r.status === 0 && r.result !== 0 && r.cmd !== "START").map((r) => r.cmd!));
    for (const name of nonzero) expect([name, returnsTarget(MODERN_COMMANDS[name as keyof typeof MODERN_COMMANDS])]).toEqual([name, true]);
    expect(nonzero.size).toBeGreaterThanOrEqual(5);
    expect(returnsTarget(MODERN_COMMANDS.START)).toBe(false);
    expect(returnsTarget(31)).toBe(false);
  });

  it("has the counter and page size names in the driver's print order, as the spec lists them and the traces' debugfs prints them", () => {
    const commandNames = specList("line per command name (");
    expect(Object.values(MODERN_COMMAND_STAT_NAMES)).toEqual(commandNames);
    expect([...MODERN_GENERAL_STAT_NAMES]).toEqual(specList("`%-22s: %16llu` for "));
    // "alloc, allocFail, errAlloc, errFree, free × (4k, 2M)"
    expect([...MODERN_PAGE_STAT_NAMES, ...PAGE_SIZE_NAMES]).toEqual(specList("`%-18s(%s): %16llu` for "));
    // The debugfs text: the command lines, then the general ones, then each page counter in each size.
    const printed = labels.filter((label) => label !== undefined);
    const first = printed.indexOf("start");
    expect(printed.slice(first, first + commandNames.length)).toEqual(commandNames);
    expect(printed.slice(first + commandNames.length, first + commandNames.length + MODERN_GENERAL_STAT_NAMES.length)).toEqual([...MODERN_GENERAL_STAT_NAMES]);
    expect(printed.slice(-MODERN_PAGE_STAT_NAMES.length * PAGE_SIZE_NAMES.length)).toEqual(
      MODERN_PAGE_STAT_NAMES.flatMap((name) => PAGE_SIZE_NAMES.map((size) => `${name}(${size})`)),
    );
  });

  it("has 512 entries a batch page and 512 frames a 2 MB page", () => {
    expect(BATCH_MAX_PAGES * 8).toBe(4096);
    expect(FRAMES_PER_2M_PAGE).toBe(2 ** 21 / 4096);
    // The traces' batches never hold more.
    expect(Math.max(...commands.map((r) => r.batch?.length ?? 0))).toBeLessThanOrEqual(BATCH_MAX_PAGES);
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
