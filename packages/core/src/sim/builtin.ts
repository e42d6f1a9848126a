import type { ModernScenario } from "./modern-scenario.js";
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

/**
 * The scenario `vmballoon simulate --driver modern` runs when given none: the
 * same 1 GiB guest with today's driver. The host offers everything (0x3e):
 * the balloon inflates in 2 MB pages, 512 a command; a frame the host refuses
 * costs its 2 MB page; the workload takes memory, 2 MB allocations fail and
 * the balloon goes on in 4 KB pages; the shrinker deflates under memory
 * pressure and holds inflation back for five seconds; the host resets and
 * rings the doorbell; the target drops and the balloon deflates; unloaded.
 */
export const builtinModernScenario: ModernScenario = {
  cycles: 48,
  unload: true,
  capabilities: 0x3e,
  startReply: "offered",
  shrinker: true,
  statsOn: true,
  guest: { totalPages: 262144, freePages: 245760, firstPfn: 4096, nosleepReserve: 16384, sleepReserve: 4096, huge: true },
  events: [
    { cycle: 1, setTarget: 65536 },
    { cycle: 1, refuse: { pfn: 4096 + 512 * 40 + 7, status: 5 } },
    { cycle: 4, guestUse: 120000 },
    { cycle: 6, setTarget: 153600 },
    { cycle: 14, guestRelease: 120000 },
    { cycle: 20, shrink: 4096 },
    { cycle: 28, reset: true },
    { cycle: 30, doorbell: true },
    { cycle: 36, setTarget: 25600 },
  ],
};
