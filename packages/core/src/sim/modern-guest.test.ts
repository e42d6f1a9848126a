import { ALLOC } from "@vmballoon/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NO_PAGE } from "../ports.js";
import { ModernSimGuest, type ModernGuestSpec } from "./modern-guest.js";

/**
 * SIMULATION-MODERN.md's guest written the plain way: an array of free
 * frames, top last; a 2 MB allocation takes the lowest aligned block of
 * free frames out of it wherever they sit.
 */
class PlainGuest {
  readonly free: number[];
  readonly workload: number[] = [];
  constructor(private readonly spec: ModernGuestSpec) {
    this.free = Array.from({ length: spec.freePages }, (_, i) => spec.firstPfn + spec.freePages - 1 - i);
  }
  allocate(nosleep: boolean): number | undefined {
    if (this.free.length <= (nosleep ? this.spec.nosleepReserve : this.spec.sleepReserve)) return undefined;
    return this.free.pop();
  }
  allocateHuge(huge: boolean): number | undefined {
    if (!huge || this.free.length < 512 + this.spec.nosleepReserve) return undefined;
    const free = new Set(this.free);
    const end = this.spec.firstPfn + this.spec.freePages;
    for (let p = Math.ceil(this.spec.firstPfn / 512) * 512; p + 512 <= end; p += 512) {
      let all = true;
      for (let i = 0; i < 512 && all; i++) all = free.has(p + i);
      if (!all) continue;
      this.free.splice(0, this.free.length, ...this.free.filter((f) => f < p || f >= p + 512));
      return p;
    }
    return undefined;
  }
  freeHuge(p: number): void {
    for (let i = 511; i >= 0; i--) this.free.push(p + i);
  }
}

type Op =
  | { readonly kind: "alloc"; readonly nosleep: boolean }
  | { readonly kind: "huge" }
  | { readonly kind: "free"; readonly pick: number }
  | { readonly kind: "freeHuge"; readonly pick: number }
  | { readonly kind: "split"; readonly pick: number }
  | { readonly kind: "use"; readonly count: number }
  | { readonly kind: "release"; readonly count: number }
  | { readonly kind: "hugeOff"; readonly on: boolean };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("alloc" as const), nosleep: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("huge" as const) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("free" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("freeHuge" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("split" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("use" as const), count: fc.nat(600) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), count: fc.nat(600) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("hugeOff" as const), on: fc.boolean() }) },
);

describe("the reference guest of today's driver", () => {
  it("hands out the same frames as the plain reading of the spec, through 2 MB pages, splits, stale entries and compactions", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1100 }),
        fc.integer({ min: 1024, max: 5000 }),
        fc.nat(600),
        fc.array(op, { minLength: 50, maxLength: 400 }),
        (firstPfn, freePages, nosleepReserve, ops) => {
          const spec = { totalPages: freePages, freePages, firstPfn, nosleepReserve, sleepReserve: nosleepReserve >> 1, huge: true };
          const guest = new ModernSimGuest(spec);
          const plain = new PlainGuest(spec);
          const small: number[] = [];
          const huge: number[] = [];
          let hugeOn = true;
          for (const o of ops) {
            if (o.kind === "alloc") {
              const page = guest.allocate(o.nosleep ? ALLOC.NOSLEEP : ALLOC.CANSLEEP);
              expect(page === NO_PAGE ? undefined : guest.frameNumber(page)).toBe(plain.allocate(o.nosleep));
              if (page !== NO_PAGE) small.push(page);
            } else if (o.kind === "huge") {
              const page = guest.allocateHuge();
              expect(page === NO_PAGE ? undefined : guest.frameNumber(page)).toBe(plain.allocateHuge(hugeOn));
              if (page !== NO_PAGE) huge.push(page);
            } else if (o.kind === "free" && small.length > 0) {
              const [page] = small.splice(o.pick % small.length, 1);
              guest.free(page!);
              plain.free.push(guest.frameNumber(page!));
            } else if (o.kind === "freeHuge" && huge.length > 0) {
              const [page] = huge.splice(o.pick % huge.length, 1);
              guest.freeHuge(page!);
              plain.freeHuge(guest.frameNumber(page!));
            } else if (o.kind === "split" && huge.length > 0) {
              const [page] = huge.splice(o.pick % huge.length, 1);
              small.push(...guest.splitHugePage(page!));
            } else if (o.kind === "use") {
              guest.use(o.count);
              for (let n = 0; n < o.count && plain.free.length > 0; n++) plain.workload.push(plain.free.pop()!);
            } else if (o.kind === "release") {
              guest.release(o.count);
              for (let n = 0; n < o.count && plain.workload.length > 0; n++) plain.free.push(plain.workload.pop()!);
            } else if (o.kind === "hugeOff") {
              guest.huge = hugeOn = o.on;
            }
            expect(guest.freeCount).toBe(plain.free.length);
          }
          expect(guest.freeFrames()).toEqual(plain.free);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("takes the lowest whole free block for a 2 MB page, and none when huge is off or the reserve would be touched", () => {
    const guest = new ModernSimGuest({ totalPages: 4096, freePages: 2048, firstPfn: 100, nosleepReserve: 0, sleepReserve: 0, huge: true });
    // Blocks inside [100, 2148): 512, 1024, 1536 (2048 would end past the guest).
    expect(guest.frameNumber(guest.allocateHuge())).toBe(512);
    guest.allocate(ALLOC.NOSLEEP); // frame 100, outside every block
    expect(guest.frameNumber(guest.allocateHuge())).toBe(1024);
    guest.huge = false;
    expect(guest.allocateHuge()).toBe(NO_PAGE);
    guest.huge = true;
    expect(guest.frameNumber(guest.allocateHuge())).toBe(1536);
    expect(guest.allocateHuge()).toBe(NO_PAGE);
    expect(guest.freeCount).toBe(2048 - 3 * 512 - 1);
  });

  it("gives the host the batch page's memory only while the page is allocated", () => {
    const guest = new ModernSimGuest({ totalPages: 64, freePages: 64, firstPfn: 4096, nosleepReserve: 0, sleepReserve: 0, huge: true });
    const page = guest.allocate(ALLOC.CANSLEEP);
    const words = guest.pageWords(page);
    words[0] = 7;
    expect(guest.memoryAt(4096)).toBe(words);
    expect(guest.memoryAt(4097)).toBeUndefined();
    guest.free(page);
    expect(guest.memoryAt(4096)).toBeUndefined();
    expect(guest.pageWords(guest.allocate(ALLOC.CANSLEEP))[0]).toBe(0); // zeroed, as __GFP_ZERO
  });
});
