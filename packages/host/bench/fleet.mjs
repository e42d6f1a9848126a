// The fleet of issue 17's bench: 100 VMs of 4–16 GiB (seeded, the same on
// every run), the host's memory their sum over 1.5, today's driver. Each
// VM's workload is a daily cycle: demand = base + swing × sin(2π (t − peak
// hour) / 1 day) + noise, a point every 10 minutes (linear in between, as
// HOST.md's series are), active memory a fixed share of it with noise of its
// own. Prints nothing itself.
import { mulberry32, validateHostScenario } from "../dist/index.js";

export const FLEET_WORKLOAD =
  "demand a daily cycle (base 40–60 % of the guest, swing ±10–25 %, peak hour seeded, noise ±3 %), " +
  "active 30–70 % of demand (±5 %), a point every 10 minutes";

const DAY = 86400;
const STEP = 600;

/** The fleet as a host scenario: `vms` VMs, `seconds` long, under `policy`, with `overcommit` (Σ guests / host). */
export function fleetScenario({ vms = 100, seconds = DAY, policy = "esx", overcommit = 1.5, seed = 17 } = {}) {
  const random = mulberry32(seed);
  const list = [];
  let total = 0;
  for (let i = 0; i < vms; i++) {
    const memMiB = 1024 * (4 + Math.floor(random() * 13));
    total += memMiB;
    const usable = memMiB - Math.floor(memMiB / 16);
    const base = memMiB * (0.4 + 0.2 * random());
    const swing = memMiB * (0.1 + 0.15 * random());
    const peak = random() * DAY;
    const activeShare = 0.3 + 0.4 * random();
    // The noise from a generator of the VM's own: the fleet is the same whatever its length.
    const noisy = mulberry32(seed * 1000 + i);
    const demand = [];
    const active = [];
    for (let t = 0; t <= seconds + STEP - 1; t += STEP) {
      const cycle = Math.sin((2 * Math.PI * (t - peak)) / DAY + Math.PI / 2);
      const noise = memMiB * 0.03 * (2 * noisy() - 1);
      const d = Math.round(Math.min(0.9 * usable, Math.max(0.05 * memMiB, base + swing * cycle + noise)));
      demand.push([t, d]);
      active.push([t, Math.round(d * Math.min(1, Math.max(0, activeShare + 0.05 * (2 * noisy() - 1))))]);
    }
    list.push({ name: `vm${String(i).padStart(3, "0")}`, memMiB, driver: "modern", demand, active });
  }
  return validateHostScenario({
    seconds,
    seed,
    host: { memMiB: Math.floor(total / overcommit), swapMiBps: 200 },
    policy: { name: policy },
    vms: list,
    events: [],
  });
}
