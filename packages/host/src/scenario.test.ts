import { ScenarioError } from "@vmballoon/core/sim";
import { describe, expect, it } from "vitest";
import { parseHostScenario, validateHostScenario } from "./scenario.js";
import { Series } from "./series.js";
import { parseWorkloadCsv } from "./workload-csv.js";

const base = {
  seconds: 60,
  host: { memMiB: 1024 },
  vms: [{ name: "web", memMiB: 512, demand: [[0, 100]] }],
};

function fieldOf(value: unknown, options = {}): string {
  try {
    validateHostScenario(value, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioError);
    expect((error as ScenarioError).code).toBe("E_SCENARIO");
    expect((error as Error).message).not.toContain("\n");
    return (error as ScenarioError).field;
  }
  throw new Error("accepted");
}

describe("the host scenario", () => {
  it("fills in HOST.md's defaults", () => {
    const s = validateHostScenario(base);
    expect(s).toMatchObject({ unload: false, seed: 1, host: { memMiB: 1024, overheadMiB: 0, swapMiBps: 200 }, policy: { name: "esx", params: {} } });
    const vm = s.vms[0]!;
    expect(vm).toMatchObject({ driver: "seed", reservation: 0, limit: 512 * 256, shares: 5120, osMiB: 32 });
    expect(vm.guest).toEqual({ totalPages: 131072, freePages: 131072 - 32 * 256, firstPfn: 4096, nosleepReserve: 4096, sleepReserve: 1024, huge: true });
  });

  it.each([
    [{ ...base, seconds: -1 }, "seconds"],
    [{ ...base, seconds: 1.5 }, "seconds"],
    [{ ...base, extra: 1 }, "extra"],
    [{ ...base, host: {} }, "host.memMiB"],
    [{ ...base, policy: { name: "xen" } }, "policy.name"],
    [{ ...base, policy: { name: "proxmox", idleTax: 0.5 } }, "policy.idleTax"],
    [{ ...base, policy: { name: "esx", idleTax: 1 } }, "policy.idleTax"],
    [{ ...base, policy: { name: "esx", interval: 0 } }, "policy.interval"],
    [{ ...base, vms: [] }, "vms"],
    [{ ...base, vms: [{ ...base.vms[0], driver: "xen" }] }, "vms[0].driver"],
    [{ ...base, vms: [{ ...base.vms[0], name: "a/b" }] }, "vms[0].name"],
    [{ ...base, vms: [base.vms[0], base.vms[0]] }, "vms[1].name"],
    [{ ...base, vms: [{ ...base.vms[0], limitMiB: 1024 }] }, "vms[0].limitMiB"],
    [{ ...base, vms: [{ ...base.vms[0], osMiB: 600 }] }, "vms[0].osMiB"],
    [{ ...base, vms: [{ ...base.vms[0], demand: [] }] }, "vms[0].demand"],
    [
      {
        ...base,
        vms: [
          {
            ...base.vms[0],
            demand: [
              [10, 1],
              [5, 2],
            ],
          },
        ],
      },
      "vms[0].demand[1].second",
    ],
    [{ ...base, vms: [{ ...base.vms[0], demand: [[0, -1]] }] }, "vms[0].demand[0].MiB"],
    [{ ...base, vms: [{ ...base.vms[0], guest: { huge: 1 } }] }, "vms[0].guest.huge"],
    [{ ...base, events: [{ second: 61, policy: { idleTax: 0 } }] }, "events[0].second"],
    [{ ...base, events: [{ second: 5 }] }, "events[0]"],
    [{ ...base, events: [{ second: 5, vm: "db", demand: [[5, 1]] }] }, "events[0].vm"],
    [{ ...base, events: [{ second: 5, demand: [[5, 1]] }] }, "events[0].vm"],
    [{ ...base, vms: [{ ...base.vms[0], demand: undefined, workload: { csv: "w.csv" }, active: [[0, 1]] }] }, "vms[0].workload"],
  ])("names the field of a bad input (%#: %s)", (value, field) => {
    expect(fieldOf(value)).toBe(field);
  });

  it("says what is wrong with a file that is not JSON, in one line", () => {
    expect(() => parseHostScenario("{")).toThrow(/not valid JSON/);
  });

  it("reads a VM's workload.csv through the caller's reader, and names the file and line of a bad one", () => {
    const files: Record<string, string> = { "a.csv": "second,demandMiB,activeMiB\n0,10,5\n60,20,10\n", "b.csv": "0,10\n5,x\n" };
    const readFile = (f: string) => {
      const text = files[f];
      if (text === undefined) throw new Error("no such file or directory");
      return text;
    };
    const vm = (csv: string) => ({ ...base, vms: [{ name: "w", memMiB: 512, workload: { csv } }] });
    const s = validateHostScenario(vm("a.csv"), { readFile });
    expect(s.vms[0]!.demand).toEqual([
      [0, 10],
      [60, 20],
    ]);
    expect(s.vms[0]!.active).toEqual([
      [0, 5],
      [60, 10],
    ]);
    expect(() => validateHostScenario(vm("b.csv"), { readFile })).toThrow('vms[0].workload.csv: b.csv: line 2: demandMiB is "x"');
    expect(() => validateHostScenario(vm("c.csv"), { readFile })).toThrow("vms[0].workload.csv: no such file");
    expect(fieldOf(vm("a.csv"))).toBe("vms[0].workload.csv");
  });
});

describe("workload.csv", () => {
  it("reads second,demandMiB rows, with or without a header and an active column", () => {
    expect(parseWorkloadCsv("0,100\n30,200\n", 0.25)).toEqual({
      demand: [
        [0, 100],
        [30, 200],
      ],
    });
    expect(parseWorkloadCsv("second,demandMiB,activeMiB\r\n0,100,50\r\n", 0.25)).toEqual({ demand: [[0, 100]], active: [[0, 50]] });
  });

  it("reads the GWA-T-12 (Bitbrains) layout: the first row second 0, Memory usage [KB] / 1024 MiB, active a ratio of it", () => {
    const header =
      "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\tDisk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]";
    const rows = [
      "1376314846;\t4;\t11703.99824;\t10.3999998;\t0.088858555;\t67108864;\t2097152;\t0;\t2.666666667;\t0;\t0",
      "1376315146;\t4;\t11703.99824;\t5.2;\t0.04;\t67108864;\t1048576;\t0;\t0;\t0;\t0",
    ];
    const w = parseWorkloadCsv([header, ...rows].join("\n"), 0.5);
    expect(w.demand).toEqual([
      [0, 2048],
      [300, 1024],
    ]);
    expect(w.active).toEqual([
      [0, 1024],
      [300, 512],
    ]);
  });

  it.each([
    ["", /empty file/],
    ["second,demandMiB\n", /a header and no rows/],
    ["0,1,2,3\n", /line 1: expected second,demandMiB/],
    ["0,1\n0,2\n", /line 2: second 0 does not follow 0/],
    ["0.5,1\n", /line 1: second 0.5 is not a whole second/],
    ["0,1,1\n5,2\n", /line 2: 2 fields where the first row has 3/],
    ["a;b\n1;2\n", /header is not GWA-T-12's/],
    ["Timestamp [ms]; Memory usage [KB]\n10; 5\n5; 6\n", /line 3: Timestamp \[ms\] 5 does not follow/],
    ["Timestamp [ms]; Memory usage [KB]\n10; 5; 7\n", /line 2: 3 fields where the header has 2/],
  ])("refuses a file that is neither layout (%#)", (text, message) => {
    expect(() => parseWorkloadCsv(text, 0.25)).toThrow(message);
  });
});

describe("a series", () => {
  it("is linear between points, constant after the last and before the first, floor(MiB × 256) pages", () => {
    const s = new Series([
      [10, 1],
      [20, 2],
      [30, 0.5],
    ]);
    expect([0, 10, 15, 20, 25, 30, 100].map((t) => s.pages(t))).toEqual([256, 256, 384, 512, Math.floor(1.25 * 256), 128, 128]);
  });
});
