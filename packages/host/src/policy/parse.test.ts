import { describe, expect, test } from "vitest";
import { PolicyInputError, parsePolicyInput, parsePolicyParams } from "./parse.js";

const VM = {
  name: "web",
  pages: 1048576,
  reservation: 0,
  limit: 1048576,
  shares: 40960,
  driver: "seed",
  balloon: 0,
  target: 0,
  backed: 900000,
  swapped: 0,
  active: 0.4,
  guestFree: 50000,
  balloonSamples: [0, 0],
  guestFreeSamples: [52000, 50000],
};

/** HOST.md's example of a round's input. */
const EXAMPLE = {
  policy: "esx",
  params: { idleTax: 0.75 },
  host: { pages: 4194304, overheadPages: 0, free: 120000, state: "soft", freeSamples: [118000, 120000] },
  vms: [VM],
};

/** The example with one change: `edit` receives a deep copy to change. */
function edited(edit: (doc: Record<string, any>) => void): string {
  const doc = structuredClone(EXAMPLE) as Record<string, any>;
  edit(doc);
  return JSON.stringify(doc);
}

describe("parsePolicyInput", () => {
  test("reads HOST.md's example as it is", () => {
    const input = parsePolicyInput(JSON.stringify(EXAMPLE), "round.json");
    expect(input).toStrictEqual(EXAMPLE);
  });

  test("params may be left out (every default), and MoM and Proxmox take a null state", () => {
    const input = parsePolicyInput(
      edited((d) => {
        d.policy = "proxmox";
        delete d.params;
        d.host.state = null;
      }),
      "r.json",
    );
    expect(input.params).toStrictEqual({});
    expect(input.host.state).toBeNull();
  });

  test.each<[string, (doc: Record<string, any>) => void, string]>([
    ["a policy we do not know", (d) => (d.policy = "hyperv"), 'r.json: policy: must be one of esx, mom, proxmox, not "hyperv"'],
    ["an unknown top-level key", (d) => (d.seconds = 3), "r.json: seconds: unknown key (expected policy, params, host, vms)"],
    ["a parameter of another policy", (d) => (d.params.targetPercent = 80), "r.json: params.targetPercent: unknown key (expected idleTax, samplePeriod,"],
    ["an idle tax of 1 (k would be infinite)", (d) => (d.params.idleTax = 1), "r.json: params.idleTax: must be a number from 0 to below 1, not 1"],
    ["thresholds out of order", (d) => (d.params.lowPercent = 3), "r.json: params.lowPercent: lowPercent (3) must not be above hardPercent (2)"],
    ["no host", (d) => delete d.host, "r.json: host: must be an object, not nothing"],
    ["an ESX host without a state", (d) => (d.host.state = null), "r.json: host.state: must be one of high, soft, hard, low, not null"],
    ["a host that frees more than it has", (d) => (d.host.free = 5_000_000), "r.json: host.free: must be a whole number ≤ 4194304, not 5000000"],
    ["a fraction of a page", (d) => (d.host.freeSamples = [1.5]), "r.json: host.freeSamples[0]: must be a whole number ≤ 4194304, not 1.5"],
    ["vms not an array", (d) => (d.vms = {}), "r.json: vms: must be an array of VMs, not an object"],
    ["negative shares", (d) => (d.vms[0].shares = -1), "r.json: vms[0].shares: must be a whole number ≥ 0, not -1"],
    ["shares as a string", (d) => (d.vms[0].shares = "high"), 'r.json: vms[0].shares: must be a whole number ≥ 0, not "high"'],
    ["a driver we do not know", (d) => (d.vms[0].driver = "vmmemctl"), 'r.json: vms[0].driver: must be one of seed, modern, none, not "vmmemctl"'],
    [
      "a reservation above the limit",
      (d) => (d.vms[0].reservation = 2_000_000),
      "r.json: vms[0].reservation: must be a whole number from 0 to 1048576, not 2000000",
    ],
    [
      "more backed than the guest has beside its balloon",
      (d) => (d.vms[0].balloon = 500_000),
      "r.json: vms[0].backed: must be a whole number from 0 to 548576, not 900000",
    ],
    ["an estimate above 1", (d) => (d.vms[0].active = 1.5), "r.json: vms[0].active: must be a number from 0 to 1, not 1.5"],
    ["samples of unequal lengths", (d) => (d.vms[0].guestFreeSamples = [1]), "r.json: vms[0].guestFreeSamples: has 1 samples and balloonSamples 2"],
    ["an empty name", (d) => (d.vms[0].name = ""), 'r.json: vms[0].name: must be a name (a string that is not empty), not ""'],
    ["two VMs of one name", (d) => (d.vms as unknown[]).push({ ...VM, backed: 0 }), 'r.json: vms[1].name: "web" is already the name of an earlier VM'],
    ["a key of the host scenario in a VM", (d) => (d.vms[0].memMiB = 4096), "r.json: vms[0].memMiB: unknown key (expected name, pages,"],
  ])("%s: one line naming the file and the field", (_, edit, message) => {
    let caught: unknown;
    try {
      parsePolicyInput(edited(edit), "r.json");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PolicyInputError);
    const error = caught as PolicyInputError;
    expect(error.message.startsWith(message)).toBe(true);
    expect(error.message).not.toContain("\n");
    expect(error.code).toBe("E_POLICY_INPUT");
  });

  test.each([
    ["{", "stdin: not JSON: "],
    ["[]", "stdin: must be a JSON object at the top level, not an array"],
    ["", "stdin: not JSON: "],
  ])("%j is not a round: %s…", (text, start) => {
    expect(() => parsePolicyInput(text, "stdin")).toThrow(PolicyInputError);
    expect(() => parsePolicyInput(text, "stdin")).toThrow(new RegExp(`^${start.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  });
});

describe("parsePolicyParams", () => {
  test("MoM's defvars by their own names; Proxmox's target a whole percent", () => {
    expect(parsePolicyParams("mom", { pressure_threshold: 0.3, historyLength: 4 })).toStrictEqual({ pressure_threshold: 0.3, historyLength: 4 });
    expect(() => parsePolicyParams("proxmox", { targetPercent: 80.5 }, "policy")).toThrow(
      "policy.targetPercent: must be a whole number from 0 to 100, not 80.5",
    );
    expect(() => parsePolicyParams("mom", { pressure_threshold: 0 })).toThrow("params.pressure_threshold: must be a number from");
  });
});
