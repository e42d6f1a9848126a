import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { momDecide, momRound } from "./mom.js";
import { proxmoxRound } from "./proxmox.js";
import { roundArbitrary } from "./test-arbitraries.js";
import { MOM_DEFAULTS, type MomInput, type PolicyInput, type PolicyOutput, type PolicyVm, type PolicyVmOutput, type ProxmoxInput } from "./types.js";

const latestBalloon = (vm: PolicyVm) => vm.balloonSamples[vm.balloonSamples.length - 1]!;

/** Each VM beside its output, once MoM's or Proxmox's allocation target is checked to be its pages less its balloon target. */
function eachVm(input: PolicyInput, out: PolicyOutput, check: (vm: PolicyVm, target: PolicyVmOutput) => void): void {
  input.vms.forEach((vm, i) => {
    const target = out.vms[i]!;
    expect(target.allocationTarget).toBe(vm.pages - target.balloonTarget);
    check(vm, target);
  });
}

describe("momRound, properties over random hosts", () => {
  const rounds = roundArbitrary("mom", ["high"]) as fc.Arbitrary<MomInput>;
  const pressure = (input: MomInput) => {
    const mean = input.host.freeSamples.reduce((s, f) => s + f * 4, 0) / input.host.freeSamples.length;
    return mean / (input.host.pages * 4) < MOM_DEFAULTS.pressure_threshold;
  };

  test("a VM without a balloon driver, and one the rules ask nothing of, keeps its previous target", () => {
    fc.assert(
      fc.property(rounds, (input) => {
        eachVm(input, momRound(input), (vm, { balloonTarget }) => {
          if (vm.driver === "none") expect(balloonTarget).toBe(vm.target);
        });
      }),
    );
  });

  test("under pressure a balloon only grows, by at most max_balloon_change_percent of the guest, and leaves it its reservation", () => {
    fc.assert(
      fc.property(
        rounds.filter((input) => pressure(input)),
        (input) => {
          const out = momRound(input);
          input.vms.forEach((vm, i) => {
            const { balloonTarget } = out.vms[i]!;
            if (balloonTarget === vm.target) return;
            const b = latestBalloon(vm);
            expect(balloonTarget).toBeGreaterThanOrEqual(b);
            expect(balloonTarget - b).toBeLessThanOrEqual(Math.ceil(MOM_DEFAULTS.max_balloon_change_percent * (vm.pages - b)) + 1);
            expect(balloonTarget).toBeLessThanOrEqual(vm.pages - vm.reservation);
          });
          expect(out.vms).toHaveLength(input.vms.length);
        },
      ),
    );
  });

  test("without pressure a balloon only shrinks, never below zero", () => {
    fc.assert(
      fc.property(
        rounds.filter((input) => !pressure(input)),
        (input) => {
          const out = momRound(input);
          input.vms.forEach((vm, i) => {
            const { balloonTarget } = out.vms[i]!;
            if (balloonTarget === vm.target) return;
            expect(balloonTarget).toBeLessThanOrEqual(latestBalloon(vm));
            expect(balloonTarget).toBeGreaterThanOrEqual(0);
          });
          expect(out.vms).toHaveLength(input.vms.length);
        },
      ),
    );
  });

  test("rules that raise (no sample yet: StatAvg has nothing to average) ask nothing: every VM keeps its target", () => {
    const input: MomInput = {
      policy: "mom",
      params: {},
      host: { pages: 1000, overheadPages: 0, free: 10, state: null, freeSamples: [] },
      vms: [
        {
          name: "a",
          pages: 512,
          reservation: 0,
          limit: 512,
          shares: 5120,
          driver: "modern",
          balloon: 0,
          target: 7,
          backed: 500,
          swapped: 0,
          active: 1,
          guestFree: 0,
          balloonSamples: [0],
          guestFreeSamples: [0],
        },
      ],
    };
    const decision = momDecide(input);
    expect(decision.output.vms).toStrictEqual([{ name: "a", allocationTarget: 505, balloonTarget: 7 }]);
    expect(decision.reasons).toStrictEqual(["the rules raise (statistic 'mem_free' not available): the round asks nothing"]);
  });
});

describe("proxmoxRound, properties over random hosts", () => {
  const rounds = roundArbitrary("proxmox", ["high"]) as fc.Arbitrary<ProxmoxInput>;
  const MAX_CHANGE_PAGES = 25600;

  test("a VM left out (no driver, no reservation, no shares) keeps its target; the others move at most 100 MiB, within [their minimum, their memory]", () => {
    fc.assert(
      fc.property(rounds, (input) => {
        eachVm(input, proxmoxRound(input), (vm, { allocationTarget, balloonTarget }) => {
          const leftOut = vm.driver === "none" || vm.reservation === 0 || vm.shares === 0 || vm.balloon === vm.pages;
          if (leftOut || balloonTarget === vm.target) {
            if (leftOut) expect(balloonTarget).toBe(vm.target);
            return;
          }
          expect(Math.abs(balloonTarget - vm.balloon)).toBeLessThanOrEqual(MAX_CHANGE_PAGES);
          expect(balloonTarget).toBeGreaterThanOrEqual(0);
          expect(allocationTarget).toBeGreaterThanOrEqual(Math.min(vm.reservation, vm.pages - vm.balloon));
        });
      }),
    );
  });

  test("a goal within ±10 MiB changes nothing", () => {
    fc.assert(
      fc.property(rounds, fc.integer({ min: -2560, max: 2560 }), (input, off) => {
        // free such that goal = 80% of H − (H − F) = off pages.
        const free = Math.ceil(input.host.pages * 0.2) + off;
        fc.pre(Math.abs(Math.trunc((input.host.pages * 4096 * 80) / 100 - (input.host.pages - free) * 4096)) <= 10 * 2 ** 20);
        const out = proxmoxRound({ ...input, host: { ...input.host, free } });
        expect(out.vms.map((v) => v.balloonTarget)).toStrictEqual(input.vms.map((vm) => vm.target));
      }),
    );
  });
});
