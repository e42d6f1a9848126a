import type { Scenario } from "./scenario.js";

/**
 * The scenario `vmballoon simulate` runs when given none: the whole story on
 * a 1 GiB guest. The monitor asks for 600 MiB; the balloon inflates at the
 * non-sleeping rate (16,385 pages a cycle: the seed's rate + 1); the guest's
 * workload then takes memory, so non-sleeping allocations fail, the balloon
 * falls back to sleeping ones and slows down; the workload lets go and the
 * balloon reaches its target; the monitor resets, the balloon is popped and
 * inflated again; the target drops and the balloon deflates; the driver is
 * unloaded.
 */
export const builtinScenario: Scenario = {
  cycles: 48,
  unload: true,
  guest: { totalPages: 262144, freePages: 245760, firstPfn: 4096, nosleepReserve: 16384, sleepReserve: 4096 },
  events: [
    { cycle: 1, setTarget: 153600 },
    { cycle: 4, guestUse: 80000 },
    { cycle: 14, guestRelease: 80000 },
    { cycle: 24, reset: true },
    { cycle: 36, setTarget: 25600 },
  ],
};
