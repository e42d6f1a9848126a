import { formatTraceRecord, parseScenario, runScenario } from "./index.js";
import { describeConformance } from "./test-conformance.js";

describeConformance({
  title: "conformance with the seed",
  folder: "",
  minimum: 21,
  whose: "the seed's trace",
  run(text) {
    const lines: string[] = [];
    runScenario(parseScenario(text), { onRecord: (record) => lines.push(formatTraceRecord(record)) });
    return lines;
  },
});
