import { DRIVER_NAMES, driver, formatTraceRecord, runSession, type DriverName } from "./index.js";
import { describeConformance } from "./test-conformance.js";

/** Each driver's public scenarios and the C that produced their traces. */
const SUITES: Record<DriverName, { title: string; folder: string; minimum: number; whose: string }> = {
  seed: { title: "conformance with the seed", folder: "", minimum: 21, whose: "the seed's trace" },
  modern: { title: "conformance with today's driver", folder: "modern/", minimum: 20, whose: "the C's trace" },
};

// Through the session every caller drives: the driver picked by name, its scenario parsed, run in the scenario's time.
for (const name of DRIVER_NAMES) {
  describeConformance({
    ...SUITES[name],
    run(text) {
      const lines: string[] = [];
      const kind = driver(name);
      const scenario = kind.parseScenario(text);
      runSession(kind.simulate(scenario, { onRecord: (record) => lines.push(formatTraceRecord(record)) }), scenario);
      return lines;
    },
  });
}
