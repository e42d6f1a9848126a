import { existsSync, readFileSync } from "node:fs";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import * as protocol from "./index.js";
import { COMMANDS, COMMAND_NAMES, STATUS, STATUS_INFO, STAT_NAMES, commandName, commandNumber, describeStatus, statusNumber } from "./index.js";
import { GIVEN_SEED, conformanceRecords, forcedStatuses } from "./test-fixtures.js";

/** The seed's `#define`s, read from the seed itself: name without VMW_BALLOON_ → value. */
function seedDefines(): Map<string, number> {
  const seed = readFileSync(GIVEN_SEED, "utf8");
  const defines = new Map<string, number>();
  for (const match of seed.matchAll(/^#define VMW_BALLOON_(\w+)\s+(-?(?:0x[0-9a-f]+|\d+))U?\b/gim)) {
    defines.set(match[1]!, Number(match[2]));
  }
  return defines;
}

describe("the protocol constants, as the seed's conformance traces show them", () => {
  const records = conformanceRecords("");
  const commands = records.filter((r) => r.t === "cmd");

  it("knows every command the traces show, and the traces show every one", () => {
    expect(new Set(commands.map((r) => r.cmd))).toEqual(new Set(Object.keys(COMMANDS)));
  });

  it("knows every status the traces show, but those the scenarios forced", () => {
    const forced = forcedStatuses("");
    const known = new Set<number>(Object.values(STATUS));
    expect([...new Set(commands.map((r) => r.status!))].filter((status) => !known.has(status) && !forced.has(status))).toEqual([]);
  });

  it("has the seed's rate of nosleep allocations, as its debugfs prints it", () => {
    const text = records.find((r) => r.t === "debugfs")!.text!;
    expect(Number(/^rateNoSleepAlloc:\s+(\d+) pages\/sec$/m.exec(text)![1])).toBe(protocol.NOSLEEP_ALLOC_MAX);
  });
});

// The seed is given to the project beside the repository (shared/seed/), not kept in it: only our code is.
describe.skipIf(!existsSync(GIVEN_SEED))("the protocol constants, as the seed defines them (needs the seed given beside the repository)", () => {
  const defines = seedDefines();

  it("has every command and status of the seed, with the seed's numbers", () => {
    for (const [name, value] of defines) {
      if (name.startsWith("CMD_")) expect(COMMANDS[name.slice(4) as keyof typeof COMMANDS]).toBe(value);
      else if (name === "SUCCESS" || name === "FAILURE" || name.startsWith("ERROR_")) {
        expect(STATUS[name as keyof typeof STATUS]).toBe(value);
      }
    }
    expect(Object.keys(COMMANDS)).toHaveLength([...defines.keys()].filter((n) => n.startsWith("CMD_")).length);
    expect(Object.keys(STATUS)).toHaveLength(10);
  });

  it("has the seed's port, magic, protocol version, guest id and rate constants", () => {
    const ours: Record<string, number> = {
      HV_PORT: protocol.HV_PORT,
      HV_MAGIC: protocol.HV_MAGIC,
      PROTOCOL_VERSION: protocol.PROTOCOL_VERSION,
      GUEST_ID: protocol.GUEST_ID_LINUX,
      NOSLEEP_ALLOC_MAX: protocol.NOSLEEP_ALLOC_MAX,
      RATE_ALLOC_MIN: protocol.RATE_ALLOC_MIN,
      RATE_ALLOC_MAX: protocol.RATE_ALLOC_MAX,
      RATE_ALLOC_INC: protocol.RATE_ALLOC_INC,
      RATE_FREE_MIN: protocol.RATE_FREE_MIN,
      RATE_FREE_MAX: protocol.RATE_FREE_MAX,
      RATE_FREE_INC: protocol.RATE_FREE_INC,
      SLOW_CYCLES: protocol.SLOW_CYCLES,
      YIELD_THRESHOLD: protocol.YIELD_THRESHOLD,
      MAX_REFUSED: protocol.MAX_REFUSED,
    };
    for (const [name, value] of Object.entries(ours)) expect([name, value]).toEqual([name, defines.get(name)]);
  });
});

describe("the statistics", () => {
  it("has the eighteen counters of struct vmballoon_stats", () => {
    expect(STAT_NAMES).toHaveLength(18);
    expect(new Set(STAT_NAMES).size).toBe(18);
  });
});

describe("lookups both ways", () => {
  it("maps every command name to its number and back", () => {
    for (const [name, number] of Object.entries(COMMANDS)) {
      expect(commandNumber(name)).toBe(number);
      expect(commandName(number)).toBe(name);
      expect(COMMAND_NAMES[number]).toBe(name);
    }
    expect(commandNumber("BATCHED_LOCK")).toBeUndefined();
    expect(commandNumber("toString")).toBeUndefined();
    expect(commandName(5)).toBeUndefined();
  });

  it("maps every status name to its number and back, with a one-line meaning", () => {
    for (const [name, number] of Object.entries(STATUS)) {
      expect(statusNumber(name)).toBe(number);
      const info = describeStatus(number)!;
      expect(info.name).toBe(name);
      expect(info.status).toBe(number);
      expect(info.meaning).toMatch(/^[^\n]{5,80}$/);
      expect(STATUS_INFO[number]).toBe(info);
    }
    expect(statusNumber("hasOwnProperty")).toBeUndefined();
    expect(describeStatus(9)).toBeUndefined();
  });

  it("finds FAILURE as -1 and as the 32-bit register value 0xffffffff", () => {
    expect(describeStatus(-1)?.name).toBe("FAILURE");
    expect(describeStatus(0xffffffff)?.name).toBe("FAILURE");
  });
});

describe("as a dependency", () => {
  it("lets a bundler keep only the one name a user imports", async () => {
    const result = await build({
      stdin: { contents: 'import { HV_PORT } from "./dist/index.js"; console.log(HV_PORT);', resolveDir: new URL("..", import.meta.url).pathname },
      bundle: true,
      format: "esm",
      write: false,
      minifySyntax: true,
    });
    const code = result.outputFiles[0]!.text;
    expect(code).toMatch(/22128|0x5670/);
    for (const other of ["456c6d6f", "1164209775", "ERROR_RESET", "GET_TARGET", "STAT_NAMES", "timer", "describeStatus"]) {
      expect(code).not.toContain(other);
    }
  });
});
