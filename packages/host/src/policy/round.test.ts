import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { parsePolicyInput } from "./parse.js";
import { policyDecide, policyRound } from "./round.js";
import { POLICY_NAMES, type PolicyInput } from "./types.js";

const ROOT = fileURLToPath(new URL("../../../../__fixtures__/conformance/policy/", import.meta.url));

/** Every fixture of a policy's folder: its name, its input's text, its expected output. */
function fixtures(policy: string): [string, string, unknown][] {
  return readdirSync(`${ROOT}${policy}`)
    .filter((f) => f.endsWith(".input.json"))
    .sort()
    .map((f) => {
      const name = f.slice(0, -".input.json".length);
      const output: unknown = JSON.parse(readFileSync(`${ROOT}${policy}/${name}.output.json`, "utf8"));
      return [name, readFileSync(`${ROOT}${policy}/${f}`, "utf8"), output];
    });
}

/** Freezes a value and everything in it: a round that wrote to its input would throw. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

describe.each(POLICY_NAMES.map((p) => [p]))("the %s fixtures (shared/conformance/policy)", (policy) => {
  const cases = fixtures(policy);

  test("are all there", () => {
    expect(cases.length).toBe({ esx: 21, mom: 19, proxmox: 19 }[policy]);
  });

  test.each(cases)("%s: the output, exactly", (name, text, expected) => {
    const input = deepFreeze(parsePolicyInput(text, `${name}.input.json`));
    expect(input.policy).toBe(policy);
    expect(policyRound(input)).toStrictEqual(expected);
  });
});

describe("the reasons", () => {
  const load = (policy: string, name: string): PolicyInput => parsePolicyInput(readFileSync(`${ROOT}${policy}/${name}.input.json`, "utf8"), name);

  test("ESX: the idle VM gives the pages, at its ρ; the output is the round's", () => {
    const input = load("esx", "idle-tax-75");
    const { output, reasons } = policyDecide(input);
    expect(output).toStrictEqual(policyRound(input));
    expect(reasons[0]).toMatch(/^reclaim: free -33536 is below the high threshold 5852 by 39388 pages \(k = 4\)$/);
    expect(reasons.some((r) => /^idle gives 39388 pages \(ρ /.test(r))).toBe(true);
    expect(reasons.some((r) => r.startsWith("busy "))).toBe(false);
  });

  test("ESX in high: says that no balloon target rises", () => {
    const { reasons } = policyDecide(load("esx", "high-no-reclaim"));
    expect(reasons).toContain("state high: no balloon target above the previous one (no reclamation in high)");
  });

  test("MoM: which rule ran, and what each guest was asked", () => {
    const { reasons } = policyDecide(load("mom", "critical"));
    expect(reasons[0]).toMatch(/< pressure_threshold 0.2: shrink_guest \(critical: ≤ pressure_critical 0.05\)$/);
    expect(reasons).toContain("a: balloon_target 3984588 KiB → balloon 52429 pages");
    expect(reasons.some((r) => r.startsWith("c:"))).toBe(false);
    const relaxed = policyDecide(load("mom", "relaxed")).reasons;
    expect(relaxed[0]).toMatch(/≥ pressure_threshold 0.2: grow_guest$/);
  });

  test("Proxmox: the branch of the algorithm", () => {
    expect(policyDecide(load("proxmox", "deadband")).reasons).toContain("the goal is within ±10 MiB: nothing to do");
    expect(policyDecide(load("proxmox", "grow-pressure-first")).reasons.some((r) => r.startsWith("grow: the VMs under memory pressure first"))).toBe(true);
    expect(policyDecide(load("proxmox", "shrink-free-first")).reasons.some((r) => r.startsWith("shrink: the VMs with enough free memory first"))).toBe(true);
  });
});
