import { parseScenario, type Scenario } from "@vmballoon/core/sim";
import { SCENARIO, inputName, readInput } from "./files.js";

/**
 * Reads and validates a scenario file (`-`: stdin). Its errors name the file,
 * then the field: "churn.json: events[2].cycle: …", "stdin: cycles: …".
 */
export function loadScenario(file: string): Scenario {
  const text = readInput(file, SCENARIO, "read the scenario");
  try {
    return parseScenario(text);
  } catch (error) {
    if (error instanceof Error) error.message = `${inputName(file)}: ${error.message}`;
    throw error;
  }
}
