import { readFileSync } from "node:fs";
import { parseScenario, type Scenario } from "@vmballoon/core/sim";
import { describeFileError } from "./errors.js";

/**
 * Reads and validates a scenario file. Its errors name the file, then the
 * field: "churn.json: events[2].cycle: …".
 */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw describeFileError(error, "read the scenario", file);
  }
  try {
    return parseScenario(text);
  } catch (error) {
    if (error instanceof Error) error.message = `${file}: ${error.message}`;
    throw error;
  }
}
