import { parseScenario, type Scenario } from "@vmballoon/core/sim";
import { SCENARIO, readInput } from "./files.js";

/**
 * Reads and validates a scenario file. Its errors name the file, then the
 * field: "churn.json: events[2].cycle: …".
 */
export function loadScenario(file: string): Scenario {
  const text = readInput(file, SCENARIO, "read the scenario");
  try {
    return parseScenario(text);
  } catch (error) {
    if (error instanceof Error) error.message = `${file}: ${error.message}`;
    throw error;
  }
}
