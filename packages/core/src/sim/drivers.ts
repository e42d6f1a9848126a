import { builtinModernScenario, builtinScenario } from "./builtin.js";
import type { ModernGuestSpec } from "./modern-guest.js";
import { parseModernScenario, type ModernScenario } from "./modern-scenario.js";
import { modernMachineSession, modernSimSession } from "./modern-session.js";
import { parseScenario, type Scenario } from "./scenario.js";
import { seedMachineSession, seedSimSession } from "./seed-session.js";
import type { DriverName, DriverSession, MachineOptions, MachinePageSource, SessionOptions } from "./session.js";

/** Either driver's scenario. */
export type AnyScenario = Scenario | ModernScenario;

/**
 * A driver: its scenarios, and sessions of it on the reference guest and
 * monitor or on this machine. {@link driver} is the one place that picks one
 * by name; every caller then drives a {@link DriverSession}.
 */
export interface Driver {
  readonly name: DriverName;
  /** How messages name it: "the seed's driver", "today's driver". */
  readonly title: string;
  /** What it is, in a line: "vmw_balloon 1.2.1.3-k (protocol 2)", "today's Linux driver". */
  readonly description: string;
  /** Whether it has a shrinker (today's driver's `vmwballoon_shrinker_enable`). */
  readonly shrinker: boolean;
  /** The scenario `simulate` runs when given none. */
  readonly builtin: AnyScenario;
  /** A guest as this driver's scenarios describe it: today's keeps `huge`, the seed's has no 2 MB pages and leaves it out. */
  scenarioGuest(guest: ModernGuestSpec): AnyScenario["guest"];
  /** A scenario file's text, checked (a ScenarioError names what is wrong). */
  parseScenario(text: string): AnyScenario;
  /** A session against the reference guest and monitor of a scenario of this driver, its events scheduled. */
  simulate(scenario: AnyScenario, options?: SessionOptions): DriverSession;
  /** A session on this machine's memory, for `vmballoon run`. */
  onMachine(source: MachinePageSource, options: MachineOptions<AnyScenario>): DriverSession;
}

// Each driver's scenario is the kind its own parser and built-in give: the casts below only restate that.
const DRIVERS: Readonly<Record<DriverName, Driver>> = {
  seed: {
    name: "seed",
    title: "the seed's driver",
    description: "vmw_balloon 1.2.1.3-k (protocol 2)",
    shrinker: false,
    builtin: builtinScenario,
    scenarioGuest: ({ totalPages, freePages, firstPfn, nosleepReserve, sleepReserve }) => ({ totalPages, freePages, firstPfn, nosleepReserve, sleepReserve }),
    parseScenario,
    simulate: (scenario, options) => seedSimSession(scenario as Scenario, options),
    onMachine: (source, options) => seedMachineSession(source, options as MachineOptions<Scenario>),
  },
  modern: {
    name: "modern",
    title: "today's driver",
    description: "today's Linux driver",
    shrinker: true,
    builtin: builtinModernScenario,
    scenarioGuest: (guest) => ({ ...guest }),
    parseScenario: parseModernScenario,
    simulate: (scenario, options) => modernSimSession(scenario as ModernScenario, options),
    onMachine: (source, options) => modernMachineSession(source, options as MachineOptions<ModernScenario>),
  },
};

/** The driver of that name: the one place a caller's choice of driver is looked at. */
export function driver(name: DriverName): Driver {
  return DRIVERS[name];
}
