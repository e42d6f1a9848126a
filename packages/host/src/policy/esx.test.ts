import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { esxNextState, esxRho, esxRound, esxThresholds } from "./esx.js";
import { roundArbitrary } from "./test-arbitraries.js";
import { ESX_DEFAULTS, ESX_STATES, type EsxInput, type EsxState } from "./types.js";

describe("esxThresholds", () => {
  test("floor(H × percent / 100) for each state, with the defaults 6, 4, 2, 1", () => {
    expect(esxThresholds(1_048_576)).toStrictEqual({ high: 62914, soft: 41943, hard: 20971, low: 10485 });
  });

  test("a parameter changes only its own threshold", () => {
    expect(esxThresholds(1000, { highPercent: 10, lowPercent: 0.5 })).toStrictEqual({ high: 100, soft: 40, hard: 20, low: 5 });
  });
});

describe("esxNextState", () => {
  const thr = esxThresholds(10_000); // high 600, soft 400, hard 200, low 100

  test.each<[EsxState, number, EsxState]>([
    // Falling: at once, to the threshold's state.
    ["high", 99, "low"],
    ["high", 150, "hard"],
    ["high", 399, "soft"],
    ["soft", 150, "hard"],
    ["soft", 50, "low"],
    // Never rising below a threshold: low stays low under hard's, hard under soft's.
    ["low", 150, "low"],
    ["low", 399, "low"],
    ["hard", 399, "hard"],
    // Rising: step after step while each threshold is met, in one second.
    ["low", 400, "soft"],
    ["low", 600, "high"],
    ["hard", 599, "soft"],
    ["hard", 600, "high"],
    ["soft", 600, "high"],
    // Between soft's and high's thresholds: soft and high both stay.
    ["soft", 599, "soft"],
    ["high", 400, "high"],
    ["high", -5000, "low"],
  ])("%s with free %i → %s", (state, free, next) => {
    expect(esxNextState(state, free, thr)).toBe(next);
  });
});

describe("esxRho", () => {
  test("S / (P × (f + k(1 − f))), and Infinity for a VM that holds nothing", () => {
    // k = 4 (τ = 0.75): an idle VM's pages cost four times an active one's.
    expect(esxRho(1000, 100, 1, 4)).toBe(10);
    expect(esxRho(1000, 100, 0, 4)).toBe(2.5);
    expect(esxRho(1000, 0, 0.5, 4)).toBe(Infinity);
    expect(esxRho(0, 100, 0.5, 4)).toBe(0);
  });
});

describe("esxRound, properties over random hosts", () => {
  const rounds = roundArbitrary("esx", ESX_STATES).chain((input) =>
    fc
      .record({
        idleTax: fc.constantFrom(0, 0.5, 0.75, 0.9),
        ctlMaxPercent: fc.constantFrom(50, 65, 100),
        chunkPages: fc.constantFrom(64, 256, 4096),
      })
      .map((params): EsxInput => ({ ...input, params })),
  );

  test("every VM, in file order; the state unchanged", () => {
    fc.assert(
      fc.property(rounds, (input) => {
        const out = esxRound(input);
        expect(out.state).toBe(input.host.state);
        expect(out.vms.map((v) => v.name)).toStrictEqual(input.vms.map((v) => v.name));
      }),
    );
  });

  test("reclaiming: Σ pages taken = min(need, what lies above the reservations); none below its reservation", () => {
    fc.assert(
      fc.property(rounds, (input) => {
        const need = esxThresholds(input.host.pages, input.params).high - input.host.free;
        fc.pre(need > 0);
        const out = esxRound(input);
        let taken = 0;
        let room = 0;
        input.vms.forEach((vm, i) => {
          const a = out.vms[i]!.allocationTarget;
          taken += vm.backed - a;
          room += Math.max(0, vm.backed - vm.reservation);
          expect(a).toBeLessThanOrEqual(vm.backed);
          expect(a).toBeGreaterThanOrEqual(Math.min(vm.backed, vm.reservation));
        });
        expect(taken).toBe(Math.min(need, room));
      }),
    );
  });

  test("giving: Σ pages given = min(surplus, what the VMs can use); none above min(limit, totalPages, P + B + X)", () => {
    fc.assert(
      fc.property(rounds, (input) => {
        const surplus = input.host.free - esxThresholds(input.host.pages, input.params).high;
        fc.pre(surplus >= 0);
        const out = esxRound(input);
        let given = 0;
        let room = 0;
        input.vms.forEach((vm, i) => {
          const a = out.vms[i]!.allocationTarget;
          const cap = Math.min(vm.limit, vm.pages, vm.backed + vm.balloon + vm.swapped);
          given += a - vm.backed;
          room += Math.max(0, cap - vm.backed);
          expect(a).toBeGreaterThanOrEqual(vm.backed);
          expect(a).toBeLessThanOrEqual(Math.max(vm.backed, cap));
        });
        expect(given).toBe(Math.min(surplus, room));
      }),
    );
  });

  test("min-funding: while a VM without shares holds more than its reservation, no VM with shares gives a page", () => {
    fc.assert(
      fc.property(rounds, (input) => {
        const out = esxRound(input);
        const poorLeft = input.vms.some((vm, i) => vm.shares === 0 && out.vms[i]!.allocationTarget > vm.reservation);
        const richGave = input.vms.some((vm, i) => vm.shares > 0 && out.vms[i]!.allocationTarget < vm.backed);
        expect(poorLeft && richGave).toBe(false);
      }),
    );
  });

  test("balloon targets: B + P − a clamped to [0, ctlMax% of the guest]; in high, never above the previous target", () => {
    fc.assert(
      fc.property(rounds, (input) => {
        const out = esxRound(input);
        const ctlMax = input.params.ctlMaxPercent ?? ESX_DEFAULTS.ctlMaxPercent;
        input.vms.forEach((vm, i) => {
          const { allocationTarget, balloonTarget } = out.vms[i]!;
          let expected = Math.min(Math.max(vm.balloon + vm.backed - allocationTarget, 0), Math.floor((vm.pages * ctlMax) / 100));
          if (input.host.state === "high") expected = Math.min(expected, vm.target);
          expect(balloonTarget).toBe(expected);
          expect(balloonTarget).toBeGreaterThanOrEqual(0);
          expect(balloonTarget).toBeLessThanOrEqual(vm.pages);
        });
      }),
    );
  });

  /** The round's allocations as the paper's loop gives them: every VM scanned for each chunk, ties in file order. */
  function scanAllocations(input: EsxInput): number[] {
    const p = { ...ESX_DEFAULTS, ...input.params };
    const k = 1 / (1 - p.idleTax);
    const need = esxThresholds(input.host.pages, p).high - input.host.free;
    const a = input.vms.map((vm) => vm.backed);
    const room = input.vms.map((vm, i) => (need > 0 ? a[i]! - vm.reservation : Math.min(vm.limit, vm.pages, vm.backed + vm.balloon + vm.swapped) - a[i]!));
    for (let left = Math.abs(need); left > 0;) {
      let best = -1;
      let bestRho = 0;
      input.vms.forEach((vm, i) => {
        if (room[i]! <= 0) return;
        const r = esxRho(vm.shares, a[i]!, vm.active, k);
        if (best < 0 || (need > 0 ? r < bestRho : r > bestRho)) [best, bestRho] = [i, r];
      });
      if (best < 0) break;
      const chunk = Math.min(p.chunkPages, room[best]!, left);
      a[best]! += need > 0 ? -chunk : chunk;
      room[best]! -= chunk;
      left -= chunk;
    }
    return a;
  }

  test("the chooser picks as a scan of every VM would, ties (twin VMs) in file order", () => {
    // Each VM twice or more, so that equal ρ are common.
    const twins = rounds.map((input) => ({
      ...input,
      vms: [...input.vms, ...input.vms, ...input.vms.slice(0, 2)].map((vm, i) => ({ ...vm, name: `vm${i}` })),
    }));
    fc.assert(
      fc.property(twins, (input) => {
        expect(esxRound(input).vms.map((v) => v.allocationTarget)).toStrictEqual(scanAllocations(input));
      }),
    );
  });
});
