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
