import { gunzipSync } from "node:zlib";
import { CliError, EXIT, UsageError } from "../errors.js";
import { TRACE, inputName, readInputBytes } from "../files.js";
import { argumentValue, optionValue, type OptionValue } from "../options.js";
import { isTerminal } from "../output.js";
import { reportOf, writePage } from "../report/index.js";

export interface ReportOptions {
  readonly output?: OptionValue;
}

/** A trace file's text: plain, or gzipped (as the conformance traces are), read up to {@link TRACE}'s limit either way. */
function readTraceFile(file: string): string {
  const bytes = readInputBytes(file, TRACE, "read the trace");
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes.toString("utf8");
  try {
    return gunzipSync(bytes, { maxOutputLength: TRACE.limit }).toString("utf8");
  } catch (error) {
    const why =
      (error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE"
        ? `more than ${TRACE.limit / 2 ** 20} MiB once unpacked, too much for a trace`
        : `a broken gzip file (${(error as Error).message})`;
    throw new CliError(`cannot read the trace ${inputName(file)}: ${why}`, EXIT.USAGE);
  }
}

/** Names the file in a trace's errors: "run.jsonl: line 3: …". */
export function inFile<T>(file: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    if (error instanceof Error && (error as { code?: unknown }).code === "E_TRACE") error.message = `${inputName(file)}: ${error.message}`;
    throw error;
  }
}

export function report(argument: string | undefined, options: ReportOptions): number {
  const trace = argumentValue(argument);
  if (trace === undefined || trace === "") throw new UsageError("report needs a trace file ('-' for stdin)");
  const output = optionValue(options.output, "--output", "a file name ('-' for stdout)");
  if (output === undefined && isTerminal(process.stdout)) {
    throw new UsageError("report needs --output F.html: the page is HTML ('--output -' writes it to stdout)");
  }
  const page = inFile(trace, () => reportOf(readTraceFile(trace)));
  writePage(output ?? "-", page);
  return 0;
}
