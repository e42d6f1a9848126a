import { DRIVER_NAMES, type DriverName } from "@vmballoon/core/sim";
import { UsageError } from "./errors.js";

/** What the argument parser gives for an option: absent, a flag without its value, or the value (a number when it looks like one). */
export type OptionValue = string | number | boolean | undefined;

/**
 * An option that takes a value, as text; undefined when the option is absent.
 * Given without a value (or an empty one), it is bad usage: `flag` needs `what`.
 */
export function optionValue(value: OptionValue, flag: string, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "boolean" || String(value) === "") throw new UsageError(`${flag} needs ${what}`);
  return String(value);
}

/** A lone `-` given as an argument (not an option's value), which the argument parser would drop: stdin or stdout. */
export const STDIN_ARGUMENT = "\u0000-";

/** An argument as the user typed it: `-` for {@link STDIN_ARGUMENT}. */
export function argumentValue(value: string | undefined): string | undefined {
  return value === STDIN_ARGUMENT ? "-" : value;
}

/** `--driver`: seed (the default) or modern (core's DRIVER_NAMES); anything else is bad usage, in one line. */
export function driverOf(value: OptionValue): DriverName {
  const driver = optionValue(value, "--driver", "seed or modern") ?? "seed";
  if (!(DRIVER_NAMES as readonly string[]).includes(driver)) {
    throw new UsageError(`--driver must be seed or modern, not ${JSON.stringify(driver)}`);
  }
  return driver as DriverName;
}
