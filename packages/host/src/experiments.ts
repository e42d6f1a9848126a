/**
 * The built-in host scenarios: a default host worth looking at, and the
 * experiments, each with what it shows. `vmballoon host --scenario NAME`
 * runs one; `--driver` and `--policy` turn one into its other halves.
 */
import { validateHostScenario, type HostScenario } from "./scenario.js";

/** A built-in host scenario and what it shows. */
export interface HostExperiment {
  readonly name: string;
  /** One line. */
  readonly title: string;
  /** What it shows and how to see it, in a few sentences. */
  readonly shows: string;
  readonly scenario: HostScenario;
}

/** A sawtooth-free ramp: 0 until `from`, `mib` from `to` on. */
const ramp = (from: number, to: number, mib: number) =>
  [
    [0, 0],
    [from, 0],
    [to, mib],
  ] as [number, number][];

const overcommit = {
  seconds: 1800,
  unload: true,
  seed: 1,
  host: { memMiB: 10240, swapMiBps: 200 },
  policy: { name: "esx" },
  vms: [
    {
      name: "db",
      memMiB: 4096,
      driver: "modern",
      demand: [
        [0, 0],
        [60, 1000],
        [300, 1000],
        [320, 3000],
      ],
      active: [
        [0, 0],
        [60, 800],
        [300, 800],
        [320, 2500],
      ],
    },
    {
      name: "web",
      memMiB: 4096,
      driver: "modern",
      demand: [
        [0, 0],
        [60, 1000],
        [500, 1000],
        [520, 3000],
      ],
      active: [
        [0, 0],
        [60, 800],
        [500, 800],
        [520, 2500],
      ],
    },
    {
      name: "batch",
      memMiB: 4096,
      driver: "modern",
      demand: [
        [0, 0],
        [60, 3500],
        [120, 3500],
        [180, 300],
      ],
      active: [[0, 100]],
    },
    {
      name: "cache",
      memMiB: 4096,
      driver: "modern",
      demand: [
        [0, 0],
        [60, 3500],
        [150, 3500],
        [200, 300],
      ],
      active: [[0, 100]],
    },
  ],
  events: [],
};

const idleTax = {
  seconds: 3600,
  seed: 1,
  host: { memMiB: 400, overheadMiB: 18 },
  policy: { name: "esx", idleTax: 0, softPercent: 5, hardPercent: 4.5 },
  vms: [
    {
      name: "idle",
      memMiB: 256,
      driver: "modern",
      demand: [
        [0, 0],
        [200, 230],
        [260, 30],
      ],
      active: [[0, 5]],
    },
    { name: "busy", memMiB: 256, driver: "modern", demand: ramp(300, 600, 230), active: ramp(300, 600, 200) },
  ],
  events: [{ second: 1800, policy: { idleTax: 0.75 } }],
};

const slowBalloon = { ...overcommit, vms: overcommit.vms.map((vm) => ({ ...vm, driver: "seed" })) };

/** The built-in scenarios, the default first. */
export const HOST_EXPERIMENTS: readonly HostExperiment[] = [
  {
    name: "overcommit",
    title: "four 4 GiB VMs on a 10 GiB host under ESX, today's driver",
    shows:
      "Two VMs touch 3.5 GiB and go idle, two others grow to 3 GiB later: ESX balloons the idle ones (up to 65 % of their memory) " +
      "and swaps what the balloons cannot reach. The default of `vmballoon host`.",
    scenario: validateHostScenario(overcommit),
  },
  {
    name: "idle-tax",
    title: "Waldspurger's idle memory tax: two 256 MiB VMs, equal shares, a host that can back 358 MiB of them",
    shows:
      "At τ = 0 the shares alone count: each VM is backed by about 179 MiB, idle or not. At second 1800 τ becomes 0.75: " +
      "the idle VM's pages cost four times as much, ESX reclaims them by ballooning, and the busy VM, whose swapped pages " +
      "come back, ends near its whole demand. The host's free-memory band is narrow (soft 5 %, hard 4.5 %) so that the busy VM, " +
      "whose workload holds all its free frames (the balloon cannot reach it), is held by swapping close to its allocation.",
    scenario: validateHostScenario(idleTax),
  },
  {
    name: "slow-balloon",
    title: "the overcommit host with every VM on the seed's driver (run it with --driver modern for today's)",
    shows:
      "The seed's driver is rate-limited: at most 16384 pages a cycle, one LOCK each, and once an allocation fails 512 to 2048 " +
      "a cycle; it deflates from 512 pages a cycle up. Today's locks whole batches and 2 MB pages without a rate. When two VMs " +
      "grow quickly the seed's balloons lag and the host swaps more: compare the swap totals " +
      "of `--scenario slow-balloon` and `--scenario slow-balloon --driver modern`.",
    scenario: validateHostScenario(slowBalloon),
  },
  {
    name: "policies",
    title: "the overcommit host under ESX (run it with --policy mom and --policy proxmox for the others)",
    shows:
      "One workload under three policies: ESX reclaims by free-memory state and shares, and swaps; MoM shrinks guests by their " +
      "free memory when the host is under pressure; Proxmox moves guests toward its ballooning target of host memory. Compare " +
      "each VM's peak balloon, swap and shortfall.",
    scenario: validateHostScenario(overcommit),
  },
];

/** A built-in scenario by name, or undefined. */
export function hostExperiment(name: string): HostExperiment | undefined {
  return HOST_EXPERIMENTS.find((e) => e.name === name);
}

/** The scenario with every VM that has a balloon driver on `driver`, or under another policy (its parameters dropped unless the same policy). */
export function withOverrides(scenario: HostScenario, overrides: { driver?: "seed" | "modern"; policy?: HostScenario["policy"]["name"] }): HostScenario {
  const { driver, policy } = overrides;
  let out = scenario;
  if (driver !== undefined) out = { ...out, vms: out.vms.map((vm) => (vm.driver === "none" ? vm : { ...vm, driver })) };
  if (policy !== undefined && policy !== out.policy.name) {
    out = { ...out, policy: { name: policy, params: {} }, events: out.events.filter((e) => e.vm !== undefined).map(({ policy: _, ...e }) => e) };
  }
  return out;
}
