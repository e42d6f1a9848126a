/** fast-check arbitraries of a round's input, for the policies' property tests. */
import fc from "fast-check";
import type { DriverName, EsxState, PolicyHost, PolicyName, PolicyVm } from "./types.js";

/** A fraction from 0 to 1 in thousandths: fast-check's doubles crowd at 0 and at the smallest numbers, which would leave most VMs empty. */
const share = fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000);

/** A VM whose numbers keep HOST.md's rules: B + P + X ≤ totalPages, reservation ≤ limit ≤ totalPages. */
export function vmArbitrary(name: string): fc.Arbitrary<PolicyVm> {
  return fc
    .record({
      mib: fc.integer({ min: 1, max: 8192 }),
      parts: fc.tuple(share, share, share),
      limitShare: share,
      reservationShare: fc.oneof(fc.constant(0), share),
      shares: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200_000 })),
      driver: fc.constantFrom<DriverName>("seed", "modern", "none"),
      targetShare: share,
      active: share,
      freeShare: share,
      history: fc.integer({ min: 1, max: 10 }),
      jitter: fc.array(fc.integer({ min: -2000, max: 2000 }), { minLength: 20, maxLength: 20 }),
    })
    .map((r) => {
      const pages = r.mib * 256;
      const balloon = Math.floor(pages * r.parts[0] * 0.7);
      const backed = Math.floor((pages - balloon) * r.parts[1]);
      const swapped = Math.floor((pages - balloon - backed) * r.parts[2]);
      const limit = Math.floor(pages * r.limitShare);
      const reservation = Math.floor(limit * r.reservationShare);
      const guestFree = Math.floor(pages * r.freeShare * 0.5);
      const clamp = (v: number) => Math.min(Math.max(v, 0), pages);
      const balloonSamples = Array.from({ length: r.history }, (_, i) => (i === r.history - 1 ? balloon : clamp(balloon + r.jitter[i]!)));
      const guestFreeSamples = Array.from({ length: r.history }, (_, i) => (i === r.history - 1 ? guestFree : clamp(guestFree + r.jitter[10 + i]!)));
      return {
        name,
        pages,
        reservation,
        limit,
        shares: r.shares,
        driver: r.driver,
        balloon,
        target: Math.floor(pages * r.targetShare * 0.65),
        backed,
        swapped,
        active: r.active,
        guestFree,
        balloonSamples,
        guestFreeSamples,
      };
    });
}

/** A host of 1 to 12 such VMs, its free memory from a fifth of it below zero to nearly half of it. */
export function roundArbitrary<P extends PolicyName>(policy: P, states: readonly EsxState[]) {
  return fc
    .record({
      vms: fc.integer({ min: 1, max: 12 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => vmArbitrary(`vm${i + 1}`)))),
      hostScale: fc.integer({ min: 800, max: 1600 }).map((n) => n / 1000),
      overheadShare: fc.integer({ min: 0, max: 50 }).map((n) => n / 1000),
      state: fc.constantFrom(...states),
      samples: fc.array(
        fc.integer({ min: -200, max: 1000 }).map((n) => n / 1000),
        { minLength: 1, maxLength: 10 },
      ),
    })
    .map((r) => {
      const vms = r.vms;
      // The host: its VMs' backed pages (and a little more) times 0.8 to 1.6, so that free memory falls as often below the thresholds as above.
      const backed = vms.reduce((s, vm) => s + vm.backed, 0);
      const pages = Math.max(1, Math.floor((backed + 256) * r.hostScale));
      const overheadPages = Math.floor(pages * r.overheadShare);
      const free = pages - overheadPages - vms.reduce((s, vm) => s + vm.backed, 0);
      const freeSamples = r.samples.map((s, i) => (i === r.samples.length - 1 ? free : Math.min(Math.floor(pages * s), pages - overheadPages)));
      const host: PolicyHost = { pages, overheadPages, free, state: policy === "esx" ? r.state : null, freeSamples };
      return { policy, params: {}, host, vms };
    });
}
