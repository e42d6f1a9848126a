/** `vmballoon run`'s options, checked into a plan before anything runs. */
import { MAX_PFN } from "@vmballoon/protocol";
import { driver, type AnyScenario, type Driver } from "@vmballoon/core/sim";
import { DEFAULT_PRESSURE_TRIGGER, checkPressureTrigger, type PageMemory } from "@vmballoon/hv-x86";
import { UsageError } from "../errors.js";
import { driverOf, optionValue, type OptionValue } from "../options.js";
import { loadScenario } from "../scenario-file.js";

export interface RunOptions {
  readonly host?: OptionValue;
  readonly target?: OptionValue;
  readonly scenario?: OptionValue;
  readonly statsFile?: OptionValue;
  readonly trace?: OptionValue;
  readonly lockFile?: OptionValue;
  readonly interval?: OptionValue;
  readonly force?: boolean;
  readonly probe?: boolean;
  readonly json?: boolean;
  readonly driver?: OptionValue;
  readonly shrinker?: boolean;
  readonly pressure?: OptionValue;
  readonly memory?: OptionValue;
}

/** The run, as the options describe it, checked before anything runs. */
export interface Plan {
  readonly driver: Driver;
  readonly host: "vmware" | "simulated";
  readonly intervalMs: number;
  readonly target: number | undefined;
  /** A scenario of the driver's kind (`--driver modern`: today's keys and events). */
  readonly scenario: { readonly file: string; readonly scenario: AnyScenario } | undefined;
  /** The module parameter `vmwballoon_shrinker_enable` (today's driver): `--shrinker`, or the scenario's `shrinker`. */
  readonly shrinker: boolean;
  /** The PSI trigger of the shrinker (with `shrinker`). */
  readonly pressure: string;
  /** `--memory`: the page source's memory; undefined for the default (pinned, else secret, else mlock, each fall-back said). */
  readonly memory: PageMemory | undefined;
  readonly statsFile: string | undefined;
  readonly trace: string | undefined;
  readonly lockFile: string;
  readonly force: boolean;
  readonly probe: boolean;
  readonly json: boolean;
}

/** The lock that makes one run the balloon's only owner (DESIGN.md, "One owner"). */
export const DEFAULT_LOCK_FILE = "/run/vmballoon.lock";

/**
 * What `run` writes to /proc/self/oom_score_adj: the first process the OOM
 * killer takes. Its locked pages are the memory the guest wants back first,
 * and its death gives them back; the unload it loses is made good by the next
 * START (DESIGN.md, "oom_score_adj").
 */
export const OOM_SCORE_ADJ = 1000;

/** The signals that unload and end the run, each with exit status 0. */
export const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] as const;

/** `1s`, `250ms`, `2` (seconds), `0.5s`, `1m` → milliseconds. */
export function parseInterval(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  const unit = match?.[2] ?? "s";
  const ms = match ? Number(match[1]) * (unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000) : Number.NaN;
  if (!(ms >= 1 && ms <= 86_400_000)) {
    throw new UsageError(`--interval must be a duration from 1ms to 24h such as 1s, 250ms or 2, not '${value}'`);
  }
  return Math.round(ms);
}

/** `--target N`: a whole number of pages, or undefined. */
function targetOf(value: OptionValue): number | undefined {
  if (value === undefined) return undefined;
  const target = typeof value === "number" ? value : Number.NaN;
  if (!Number.isInteger(target) || target < 0 || target > MAX_PFN) {
    throw new UsageError(`--target must be a whole number of pages from 0 to ${MAX_PFN}, not '${String(value)}'`);
  }
  return target;
}

/** The options, checked: a {@link UsageError} names the first that is wrong. */
export function plan(options: RunOptions): Plan {
  const kind = driver(driverOf(options.driver));
  const host = options.host === undefined ? "vmware" : String(options.host);
  if (host !== "vmware" && host !== "simulated") throw new UsageError(`--host must be vmware or simulated, not '${host}'`);
  const intervalMs = options.interval === undefined ? 1000 : parseInterval(String(options.interval));
  const scenarioFile = optionValue(options.scenario, "--scenario", "a file name");
  const statsFile = optionValue(options.statsFile, "--stats-file", "a file name");
  const trace = optionValue(options.trace, "--trace", "a file name ('-' for stdout)");
  const lockFile = optionValue(options.lockFile, "--lock-file", "a file name") ?? DEFAULT_LOCK_FILE;
  if (options.json && trace === "-") throw new UsageError("--json and --trace - both want stdout; give --trace a file");
  const target = targetOf(options.target);
  const memory = optionValue(options.memory, "--memory", "pinned, secret or mlock");
  if (memory !== undefined && memory !== "pinned" && memory !== "secret" && memory !== "mlock") {
    throw new UsageError(`--memory must be pinned, secret or mlock, not '${memory}'`);
  }

  if (host === "vmware") {
    if (target !== undefined || scenarioFile !== undefined) {
      throw new UsageError("--target and --scenario are for --host simulated: on VMware the host sets the target");
    }
  } else {
    if (options.force || options.probe) throw new UsageError("--force and --probe are for --host vmware");
    if ((target === undefined) === (scenarioFile === undefined)) {
      throw new UsageError("--host simulated needs either --target N (pages) or --scenario FILE");
    }
  }
  const pressureOption = optionValue(options.pressure, "--pressure", "a PSI trigger such as 'some 150000 2000000'");
  if (!kind.shrinker && (options.shrinker || pressureOption !== undefined)) {
    throw new UsageError(`--shrinker and --pressure are for --driver modern: the seed has no shrinker`);
  }
  if (pressureOption !== undefined && !options.shrinker) throw new UsageError("--pressure sets the trigger of --shrinker: give --shrinker too");
  const pressure = pressureOption ?? DEFAULT_PRESSURE_TRIGGER;
  const pressureProblem = checkPressureTrigger(pressure);
  if (pressureProblem !== undefined) throw new UsageError(`--pressure: ${pressureProblem}, not '${pressure}'`);
  const scenario = scenarioFile === undefined ? undefined : { file: scenarioFile, scenario: loadScenario(scenarioFile, (text) => kind.parseScenario(text)) };
  const scenarioShrinker = scenario !== undefined && "shrinker" in scenario.scenario && scenario.scenario.shrinker;
  return {
    driver: kind,
    host,
    shrinker: options.shrinker === true || scenarioShrinker,
    pressure,
    intervalMs,
    target,
    scenario,
    memory,
    statsFile,
    trace,
    lockFile,
    force: options.force === true,
    probe: options.probe === true,
    json: options.json === true,
  };
}
