import { describe, expect, it } from "vitest";
import { parse, toJson } from "./index.js";
import { sample, samples } from "./test-fixtures.js";

describe("toJson", () => {
  it("gives a seed record's numbers under the seed's names, with the page size and the sizes in bytes", () => {
    const json = toJson(parse(sample("seed-typical.txt")));
    expect(json).toStrictEqual({
      layout: "seed",
      pageSize: 4096,
      target: 40000,
      targetBytes: 163840000,
      size: 32770,
      sizeBytes: 134225920,
      rateNosleepAlloc: 16384,
      rateAlloc: 2048,
      rateFree: 16400,
      stats: {
        timer: 7,
        start: 1,
        startFail: 0,
        guestType: 1,
        guestTypeFail: 0,
        lock: 32773,
        lockFail: 3,
        unlock: 0,
        unlockFail: 0,
        target: 7,
        targetFail: 1,
        alloc: 32770,
        allocFail: 0,
        sleepAlloc: 0,
        sleepAllocFail: 0,
        free: 0,
        refusedAlloc: 3,
        refusedFree: 3,
      },
    });
  });

  it("carries 64-bit counters as exact decimal strings", () => {
    const json = toJson(parse(sample("modern-huge-counters.txt")));
    if (json.layout !== "modern") throw new Error("not modern");
    expect(json.size).toBe("12326406953667846644");
    // 12326406953667846644 × 4096 (python3 says 50488962882223499853824), beyond 2^64 too.
    expect(json.sizeBytes).toBe("50488962882223499853824");
    expect(json.commands.start).toStrictEqual({ total: "10964188997154589307", failed: "2477446469902186" });
    expect(json.pages.alloc).toStrictEqual({ "4k": "11081462065516102037", "2M": "9898867670432435327" });
    expect(json.general.shrinkFree).toBe("2993965375437990961");
  });

  it("names the capability bits and shows the masks in hex", () => {
    const json = toJson(parse(sample("modern-resetting-basic.txt")));
    if (json.layout !== "modern") throw new Error("not modern");
    expect(json.resetRequired).toBe(true);
    expect(json.balloonCapabilities).toStrictEqual({
      mask: "0x3e",
      names: ["BASIC_CMDS", "BATCHED_CMDS", "BATCHED_2M_CMDS", "SIGNALLED_WAKEUP_CMD", "64_BIT_TARGET"],
    });
    expect(json.usedCapabilities).toStrictEqual({ mask: "0x2", names: ["BASIC_CMDS"] });
  });

  it.each(samples())("$name: survives JSON.stringify and JSON.parse unchanged", ({ text }) => {
    const json = toJson(parse(text));
    expect(JSON.parse(JSON.stringify(json))).toStrictEqual(json);
  });
});
