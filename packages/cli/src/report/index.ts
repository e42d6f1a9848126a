/**
 * The report of a run, from its trace: a driver's trace (SIMULATION.md's) or
 * a host's (HOST.md's), told apart by the first record (a host trace begins
 * with a `host` record). The trace's lines go through the reader of their
 * kind (which checks them), the records into the report's model, the model
 * into the page. `vmballoon report` feeds it a trace file's lines;
 * `vmballoon simulate --report` and `vmballoon host --report` the lines of
 * the run they do, as they would write them with `--trace`: one path, the
 * same page.
 */
import { TraceError, TraceReader } from "@vmballoon/core/sim";
import { writeAtomically } from "../files.js";
import { HostReportBuilder } from "./host-model.js";
import { renderHostPage } from "./host-page.js";
import { HostTraceReader, isHostTraceLine, parseObject } from "./host-trace.js";
import { ReportBuilder } from "./model.js";
import { renderPage } from "./page.js";

/** A trace's reader and the page of what it read. */
interface Report {
  line(text: string, terminated: boolean): void;
  page(): string;
}

/** A report of one kind of trace: its reader checks each line and hands the records to its model's builder; the page is drawn from the model. */
function reportWith<R, M>(
  builder: { add(record: R): void; finish(): M },
  readerOf: (onRecord: (record: R) => void) => { line(text: string, terminated: boolean): void; end(): void },
  render: (model: M) => string,
): Report {
  const reader = readerOf((record) => builder.add(record));
  return {
    line: (text, terminated) => reader.line(text, terminated),
    page: () => {
      reader.end();
      return render(builder.finish());
    },
  };
}

const driverReport = () => reportWith(new ReportBuilder(), (onRecord) => new TraceReader(onRecord), renderPage);
const hostReport = () => reportWith(new HostReportBuilder(), (onRecord) => new HostTraceReader(onRecord), renderHostPage);

export class ReportWriter {
  /** The report of the trace's kind, from its first line. */
  private report: Report | undefined;

  /** One line of the trace, without its line break; `terminated`: false for a last line that had none. */
  line(text: string, terminated = true): void {
    if (this.report !== undefined) return this.report.line(text, terminated);
    this.report = isHostTraceLine(text) ? hostReport() : driverReport();
    try {
      this.report.line(text, terminated);
    } catch (error) {
      // A first record of a kind neither trace begins with: say what both begin with.
      if (error instanceof TraceError && typeof parseObject(text)?.t === "string") error.message += ` (a host's trace begins with a "host" record)`;
      throw error;
    }
  }

  /** The page, once every line is in; throws when the trace stopped before its end. */
  page(): string {
    return (this.report ?? driverReport()).page();
  }
}

/** The page for a whole trace's text; a TraceError names the first line that is wrong. Lines end at `\n`. */
export function reportOf(text: string): string {
  const writer = new ReportWriter();
  let start = 0;
  for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
    writer.line(text.slice(start, end));
    start = end + 1;
  }
  if (start < text.length) writer.line(text.slice(start), false);
  return writer.page();
}

/** Writes the page to a file, whole or not at all, or to stdout (`-`): `report --output`, `simulate --report` and `host --report`. */
export function writePage(file: string, page: string): void {
  if (file === "-") process.stdout.write(page);
  else writeAtomically(file, page, "write the report to");
}
