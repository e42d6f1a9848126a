import { formatTraceRecord, parseModernScenario, runModernScenario } from "./index.js";
import { describeConformance } from "./test-conformance.js";

describeConformance({
  title: "conformance with today's driver",
  folder: "modern/",
  minimum: 20,
  whose: "the C's trace",
  run(text) {
    const lines: string[] = [];
    runModernScenario(parseModernScenario(text), { onRecord: (record) => lines.push(formatTraceRecord(record)) });
    return lines;
  },
});
