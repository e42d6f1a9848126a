import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { FIXTURES, STACK, jsonLines, vmballoon } from "./cli-runner.js";

const MODERN = join(FIXTURES, "modern");
const temp = () => mkdtempSync(join(tmpdir(), "vmballoon-cli-modern-"));
const names = readdirSync(MODERN)
  .filter((f) => f.endsWith(".scenario.json"))
  .map((f) => f.slice(0, -".scenario.json".length));
const golden = (name: string) => gunzipSync(readFileSync(join(MODERN, `${name}.trace.jsonl.gz`))).toString("utf8");

describe("vmballoon simulate --driver modern, conformance through the CLI", () => {
  it("has the public scenarios of today's driver", () => {
    expect(names.length).toBeGreaterThanOrEqual(20);
  });

  it.each(names)("%s: --trace writes the C's trace, byte for byte", (name) => {
    const out = join(temp(), "trace.jsonl");
    const run = vmballoon(["simulate", "--driver", "modern", "--scenario", join(MODERN, `${name}.scenario.json`), "--trace", out]);
    const hangs = golden(name).includes('"t":"exitHang"');
    expect(run.stderr).toEqual(hangs ? expect.stringMatching(/^vmballoon: the unload did not finish: .*\n$/) : "");
    expect(run.status).toBe(0);
    expect(readFileSync(out, "utf8") === golden(name)).toBe(true);
  });
});

describe("vmballoon simulate --driver modern", () => {
  it("prints today's driver's debugfs text for the final state when stdout is not a terminal", () => {
    const run = vmballoon(["simulate", "--driver", "modern", "--scenario", join(MODERN, "inflate-batched.scenario.json")]);
    expect(run.status).toBe(0);
    const records: { t: string; text?: string }[] = jsonLines(golden("inflate-batched"));
    expect(run.stdout).toBe(records.filter((r) => r.t === "debugfs").at(-1)!.text);
    expect(run.stdout.split("\n")[1]).toBe("used capabilities     :             0x36");
  });

  it("prints one JSON summary with --json: 2 MB pages and batches, matching the trace's final state", () => {
    const out = join(temp(), "t.jsonl");
    const run = vmballoon(["simulate", "--driver", "modern", "--scenario", join(MODERN, "debugfs-before-first-start.scenario.json"), "--json", "--trace", out]);
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    const records = jsonLines(readFileSync(out, "utf8"));
    const last = records.filter((r) => r.t === "cycle").at(-1);
    expect(summary.driver).toBe("modern");
    expect(summary.final.size).toBe(last.size);
    expect(summary.final.stats).toEqual(last.stats);
    expect(summary.final.hugePages * summary.hugePageFrames).toBe(last.size);
    expect(summary.final.stats.ops["2m-lock"]).toEqual([1, 0]);
    expect(summary.debugfs).toBe(records.filter((r) => r.t === "debugfs").at(-1).text);
    expect(summary.unload).toEqual({ size: 0, guestFree: 65535, hang: false });
  });

  it("runs a built-in scenario of its own: 2 MB pages, a fall back to 4 KB ones, a shrink, a reset, a doorbell, the unload", () => {
    const run = vmballoon(["simulate", "--driver", "modern", "--json"]);
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    const { ops, pages, shrink, reset, doorbell } = summary.final.stats;
    expect(summary.scenario).toBe("built-in scenario");
    expect(ops["2m-lock"][0]).toBeGreaterThan(0);
    expect(ops.batchLock[0]).toBeGreaterThan(0); // 4 KB pages once 2 MB ones could not be had
    expect(pages.allocFail[1]).toBeGreaterThan(0);
    expect(pages.errAlloc[1]).toBeGreaterThan(0); // the refused frame cost its 2 MB page
    expect(shrink).toBeGreaterThan(0);
    expect(reset).toBeGreaterThanOrEqual(2);
    expect(doorbell).toBe(1);
    expect(summary.unload).toEqual({ size: 0, guestFree: summary.guest.freePages - 2, hang: false }); // a batch page leaked at each reset
  });

  it("says on stderr that the unload could not finish, with the trace's exitHang", () => {
    const hanging = names.find((name) => golden(name).includes('"t":"exitHang"'))!;
    const run = vmballoon(["simulate", "--driver", "modern", "--scenario", join(MODERN, `${hanging}.scenario.json`), "--json"]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).unload.hang).toBe(true);
    expect(run.stderr).toMatch(/^vmballoon: the unload did not finish: START\(0\) took 2 MB pages away and \d+ frames stay ballooned/);
  });

  it("keeps the seed as the default driver", () => {
    const run = vmballoon(["simulate", "--json"]);
    expect(JSON.parse(run.stdout).driver).toBe("seed");
    expect(vmballoon(["simulate", "--driver", "seed", "--json"]).stdout).toBe(run.stdout);
  });

  describe("bad input: one line naming what is wrong, exit status 2, nothing run", () => {
    const guest = { totalPages: 100, freePages: 100, firstPfn: 0, nosleepReserve: 0, sleepReserve: 0 };
    const cases: [string, unknown, RegExp][] = [
      [
        "a capability mask with neither BASIC nor BATCHED",
        { cycles: 3, capabilities: 0x38, guest, events: [] },
        /: capabilities: 56 has neither BASIC_CMDS \(2\) nor BATCHED_CMDS \(4\)/,
      ],
      ["a capability with bit 0", { cycles: 3, capabilities: 0x3, guest, events: [] }, /: capabilities: 3 has bit 0 set/],
      [
        "a refusal status that does not fit 5 bits",
        { cycles: 3, guest, events: [{ cycle: 1, refuse: { pfn: 5, status: 32 } }] },
        /: events\[0\]\.refuse\.status: 32 is not a refusal that fits/,
      ],
      ["shrink: 0", { cycles: 3, shrinker: true, guest, events: [{ cycle: 1, shrink: 0 }] }, /: events\[0\]\.shrink: expected at least 1/],
      [
        "a forced failure that is a success",
        { cycles: 3, guest, events: [{ cycle: 1, failNext: { cmd: "BATCHED_LOCK", count: 1, status: 0x03000000 } }] },
        /: events\[0\]\.failNext\.status: 50331648 is a success/,
      ],
      ["an unknown start reply", { cycles: 3, startReply: "all", guest, events: [] }, /: startReply: expected "offered" or "intersection"/],
      ["debugfs before the load", { cycles: 3, guest, events: [{ cycle: 0, debugfs: true }] }, /: events\[0\]\.debugfs: cycle 0 is before the load/],
      [
        "frames beyond 52 bits",
        { cycles: 3, guest: { ...guest, firstPfn: 2 ** 52 - 10 }, events: [] },
        /: guest\.firstPfn: firstPfn \+ freePages is \d+, above 2\^52/,
      ],
    ];

    it.each(cases)("%s", (_what, scenario, message) => {
      const dir = temp();
      const file = join(dir, "bad.json");
      const trace = join(dir, "trace.jsonl");
      writeFileSync(file, JSON.stringify(scenario));
      const run = vmballoon(["simulate", "--driver", "modern", "--scenario", file, "--trace", trace]);
      expect(run.status).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toContain(file);
      expect(run.stderr).not.toMatch(STACK);
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
      expect(existsSync(trace)).toBe(false);
    });

    it("a driver that is neither seed nor modern", () => {
      const run = vmballoon(["simulate", "--driver", "linux-4.20"]);
      expect(run.status).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toBe("vmballoon: --driver must be seed or modern, not \"linux-4.20\"\nRun 'vmballoon --help' for usage.\n");
    });

    it("a modern scenario's keys given to the seed's driver", () => {
      const file = join(temp(), "modern.json");
      writeFileSync(file, JSON.stringify({ cycles: 3, capabilities: 62, guest, events: [] }));
      const run = vmballoon(["simulate", "--scenario", file]);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/: capabilities: unknown key/);
    });
  });
});
