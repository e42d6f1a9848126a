import { parseScenario, type Scenario } from "@vmballoon/core/sim";
import { SCENARIO, inputName, readInput } from "./files.js";

/**
 * Reads and validates a scenario file (`-`: stdin), the seed's (by
 * default) or another driver's (`parse`). Its errors name the file,
 * then the field: "churn.json: events[2].cycle: …", "stdin: cycles: …".
 */
export function loadScenario(file: string): Scenario;
export function loadScenario<S>(file: string, parse: (text: string) => S): S;
export function loadScenario(file: string, parse: (text: string) => unknown = parseScenario): unknown {
  const text = readInput(file, SCENARIO, "read the scenario");
  try {
    return parse(text);
  } catch (error) {
    if (error instanceof Error) error.message = `${inputName(file)}: ${error.message}`;
    throw error;
  }
}
