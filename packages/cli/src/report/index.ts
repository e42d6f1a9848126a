/**
 * The report of a run, from its trace: the trace's lines go through the one
 * trace reader of `@vmballoon/core/sim` (which checks them), the records into
 * the report's model, the model into the page. `vmballoon report` feeds it a
 * trace file's lines; `vmballoon simulate --report` the lines of the run it
 * does, as it would write them with `--trace`: one path, the same page.
 */
import { TraceReader, readTrace } from "@vmballoon/core/sim";
import { writeAtomically } from "../files.js";
import { ReportBuilder } from "./model.js";
import { renderPage } from "./page.js";

export class ReportWriter {
  private readonly builder = new ReportBuilder();
  private readonly reader = new TraceReader((record) => this.builder.add(record));

  /** One line of the trace, without its line break; `terminated`: false for a last line that had none. */
  line(text: string, terminated = true): void {
    this.reader.line(text, terminated);
  }

  /** The page, once every line is in; throws when the trace stopped before its end. */
  page(): string {
    this.reader.end();
    return renderPage(this.builder.finish());
  }
}

/** The page for a whole trace's text; a TraceError names the first line that is wrong. */
export function reportOf(text: string): string {
  const builder = new ReportBuilder();
  readTrace(text, (record) => builder.add(record));
  return renderPage(builder.finish());
}

/** Writes the page to a file, whole or not at all, or to stdout (`-`): `report --output` and `simulate --report`. */
export function writePage(file: string, page: string): void {
  if (file === "-") process.stdout.write(page);
  else writeAtomically(file, page, "write the report to");
}
