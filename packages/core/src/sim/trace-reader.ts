/**
 * Reading a trace back: the JSON Lines of SIMULATION.md ("Trace"), checked
 * record by record, so that a program that draws or compares traces gets
 * records it can trust or one line that says where the file stops being a
 * trace.
 *
 * Tolerant by design: the modern driver's trace (SIMULATION-MODERN.md) is read
 * too, with its `arg2`, `batch`, its nested `stats` (or `null`), its `shrink`,
 * `doorbell` and `migrate` records, its debugfs records at any cycle and its
 * `exitHang`; fields a record does not need are kept as they are, and a kind
 * of record this reader does not know is kept when it carries a cycle (a
 * later engine's events). What it refuses: a line that is not one JSON
 * object, a known record with a missing or mistyped field, cycles that go
 * back, anything after the trace's end, a file that stops before its end.
 */
import { InputError } from "./scenario.js";

/** A trace that breaks a rule: `line` is its 1-based line number. */
export class TraceError extends InputError {
  override readonly name = "TraceError";
  readonly code = "E_TRACE";
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(`line ${line}`, detail);
  }
}

/** A command as it returned; `arg2` and `batch` are the modern driver's. */
export interface ReadCommand {
  readonly t: "cmd";
  readonly cycle: number;
  readonly cmd: string;
  readonly arg: number;
  readonly arg2?: number;
  readonly status: number;
  readonly result: number;
  /** Batched commands: `[pfn, status]` of each entry. */
  readonly batch?: readonly (readonly [number, number])[];
}

/** The driver's state after a cycle: the fields both engines have, the others kept as read. */
export interface ReadCycle {
  readonly t: "cycle";
  readonly cycle: number;
  readonly size: number;
  readonly target: number;
  readonly guestFree?: number;
  /** The seed's rate control. */
  readonly rateAlloc?: number;
  readonly rateFree?: number;
  readonly slowCycles?: number;
  readonly resetRequired?: boolean;
  /** The driver's counters (flat in the seed's trace, nested in the modern one; `null` before statistics are on). */
  readonly stats?: { readonly [name: string]: unknown } | null;
  readonly [field: string]: unknown;
}

export interface ReadDebugfs {
  readonly t: "debugfs";
  /** The modern trace says when it was printed. */
  readonly cycle?: number;
  readonly text: string;
}

/** The unload done (`exit`), or stuck (`exitHang`, the modern driver). */
export interface ReadExit {
  readonly t: "exit" | "exitHang";
  readonly size: number;
  readonly guestFree?: number;
}

export interface ReadInitFailed {
  readonly t: "initFailed";
}

/** Any other record that carries a cycle: the modern `shrink`, `doorbell`, `migrate`, or a kind this reader does not know. */
export interface ReadEvent {
  readonly t: string;
  readonly cycle: number;
  readonly [field: string]: unknown;
}

export type ReadRecord = ReadCommand | ReadCycle | ReadDebugfs | ReadExit | ReadInitFailed | ReadEvent;

type Json = { [key: string]: unknown };

/** How each known kind's fields are checked: a name, and what the value must be. */
type FieldRule = "count" | "integer" | "boolean" | "text" | "optionalCount" | "optionalInteger" | "optionalBoolean";

const COMMON_CYCLE: Readonly<Record<string, FieldRule>> = { cycle: "count" };

const RULES: Readonly<Record<string, Readonly<Record<string, FieldRule>>>> = {
  cmd: { cycle: "count", cmd: "text", arg: "count", arg2: "optionalCount", status: "integer", result: "integer" },
  cycle: {
    cycle: "count",
    size: "count",
    target: "count",
    guestFree: "optionalCount",
    rateAlloc: "optionalCount",
    rateFree: "optionalCount",
    slowCycles: "optionalCount",
    resetRequired: "optionalBoolean",
  },
  debugfs: { cycle: "optionalCount", text: "text" },
  exit: { size: "count", guestFree: "optionalCount" },
  exitHang: { size: "count", guestFree: "optionalCount" },
  initFailed: {},
  // SIMULATION-MODERN.md's events.
  shrink: { cycle: "count", nrToScan: "count", count: "count", freed: "count" },
  doorbell: { cycle: "count", delivered: "boolean" },
  migrate: { cycle: "count", pfn: "count", newPfn: "count", result: "integer" },
};

/** Kinds a trace may begin with (another kind of JSON Lines, such as `run --json`'s, begins otherwise). */
const FIRST_KINDS = new Set(["cmd", "cycle", "debugfs", "shrink", "doorbell", "migrate"]);

const CUT_SHORT = "no line break at its end: the file is cut short in the middle of a record";

const END_KINDS = new Set(["exit", "exitHang", "initFailed"]);

/** A value as it appears in a message, kept short. */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function checkField(record: Json, kind: string, name: string, rule: FieldRule): string | undefined {
  const value = record[name];
  const optional = rule.startsWith("optional");
  if (value === undefined) return optional ? undefined : `a "${kind}" record without "${name}"`;
  const ok =
    rule === "count" || rule === "optionalCount"
      ? Number.isSafeInteger(value) && (value as number) >= 0
      : rule === "integer" || rule === "optionalInteger"
        ? Number.isSafeInteger(value)
        : rule === "boolean" || rule === "optionalBoolean"
          ? typeof value === "boolean"
          : typeof value === "string" && (name !== "cmd" || value !== "");
  if (ok) return undefined;
  const want =
    rule === "count" || rule === "optionalCount"
      ? "a whole number, 0 or more"
      : rule === "integer" || rule === "optionalInteger"
        ? "a whole number"
        : rule === "boolean" || rule === "optionalBoolean"
          ? "true or false"
          : "a string";
  return `"${name}" of a "${kind}" record should be ${want}, not ${quote(value)}`;
}

/** Why a line that does not parse is not a trace line. */
function notJson(text: string, lineNumber: number, error: unknown): string {
  const trimmed = text.trim();
  if (trimmed === "") return "an empty line: a trace has one JSON object on every line";
  if (trimmed === "{" || trimmed === "[") {
    return `${quote(trimmed)} alone: one JSON document over several lines (a scenario?), not a trace, which has one JSON object on each line`;
  }
  if (lineNumber === 1 && /^[A-Za-z][A-Za-z ]*:/.test(trimmed)) return `${quote(trimmed)}: a text of "name: value" lines (a vmmemctl text?), not a trace`;
  const why = error instanceof Error ? error.message.replace(/^Unexpected token .*? in JSON/, "unexpected character").split("\n")[0] : String(error);
  return `not JSON (${why}): a trace has one JSON object on every line`;
}

/**
 * Reads a trace line by line: {@link line} for each line (without its line
 * break), then {@link end}. Each record is checked, then handed to
 * `onRecord`; the first line that breaks a rule throws a {@link TraceError}.
 */
export class TraceReader {
  private lineNumber = 0;
  /** The last cycle any record named, and the last cycle record's. */
  private lastCycle = 0;
  private lastCycleRecord = -1;
  private records = 0;
  /** The last record's kind, and whether it closed the trace. */
  private lastKind = "";
  private endedAt = 0;
  private endedBy = "";
  private finalDebugfs = false;

  constructor(private readonly onRecord: (record: ReadRecord, line: number) => void) {}

  /** The number of lines read so far. */
  get lines(): number {
    return this.lineNumber;
  }

  /** One line, without its line break; `terminated`: false for a last line that had none. */
  line(text: string, terminated = true): void {
    const n = ++this.lineNumber;
    if (text.includes("\u0000") || text.includes("\ufffd")) throw new TraceError(n, "binary data, not a trace (JSON Lines text)");
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new TraceError(n, n > 1 && !terminated ? CUT_SHORT : notJson(text, n, error));
    }
    // Every writer of traces ends each line: a last line without its line
    // break is a file cut short, even where the cut left valid JSON ("size":12 of "size":1234).
    if (!terminated) throw new TraceError(n, CUT_SHORT);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new TraceError(n, `${Array.isArray(value) ? "an array" : quote(value)}, not a trace record (a JSON object)`);
    }
    const record = value as Json;
    const kind = record.t;
    if (typeof kind !== "string") {
      const scenario = "cycles" in record && "guest" in record ? " (this is a scenario: `vmballoon simulate --scenario F --report F.html` runs it)" : "";
      throw new TraceError(n, `no "t" field: not a trace record${scenario}`);
    }
    if (this.endedAt !== 0) throw new TraceError(n, `a ${quote(kind)} record after the trace's end (its "${this.endedBy}" record on line ${this.endedAt})`);
    if (this.records === 0 && !FIRST_KINDS.has(kind)) {
      const hint = kind === "start" ? " (the output of `vmballoon run --json`?)" : "";
      throw new TraceError(n, `a trace cannot begin with a ${quote(kind)} record${hint}: it begins with the load's commands`);
    }
    const rules = RULES[kind] ?? COMMON_CYCLE;
    for (const [name, rule] of Object.entries(rules)) {
      const problem = checkField(record, kind, name, rule);
      if (problem !== undefined) throw new TraceError(n, problem);
    }
    if (kind === "cmd" && record.batch !== undefined) this.checkBatch(record.batch, n);
    if (kind === "cycle" && record.stats !== undefined && record.stats !== null && (typeof record.stats !== "object" || Array.isArray(record.stats))) {
      throw new TraceError(n, `"stats" of a "cycle" record should be an object or null, not ${quote(record.stats)}`);
    }
    this.checkOrder(record, kind, n);
    this.records++;
    this.lastKind = kind;
    if (END_KINDS.has(kind)) {
      this.endedAt = n;
      this.endedBy = kind;
    }
    this.onRecord(record as unknown as ReadRecord, n);
  }

  private checkBatch(batch: unknown, n: number): void {
    const ok =
      Array.isArray(batch) &&
      batch.every((entry) => Array.isArray(entry) && entry.length === 2 && entry.every((x) => Number.isSafeInteger(x) && (x as number) >= 0));
    if (!ok) throw new TraceError(n, `"batch" of a "cmd" record should be a list of [pfn, status] pairs`);
  }

  private checkOrder(record: Json, kind: string, n: number): void {
    const cycle = record.cycle as number | undefined;
    if (cycle !== undefined) {
      if (cycle < this.lastCycle) throw new TraceError(n, `cycle ${cycle} after cycle ${this.lastCycle}: the cycles of a trace never go back`);
      this.lastCycle = cycle;
    }
    if (kind === "cycle") {
      if (cycle === this.lastCycleRecord) throw new TraceError(n, `a second "cycle" record for cycle ${cycle}`);
      this.lastCycleRecord = cycle!;
    }
    if (kind === "initFailed" && this.lastCycleRecord >= 0)
      throw new TraceError(n, `"initFailed" after cycle ${this.lastCycleRecord} ran: a failed load ends the trace before any cycle`);
    // The debugfs record after the last cycle (SIMULATION.md's has no cycle; the
    // modern one names the last cycle) may end a trace; one printed by an event
    // before its cycle ran does not.
    if (kind === "debugfs") this.finalDebugfs = cycle === undefined || cycle === this.lastCycleRecord;
  }

  /**
   * The input ended. Throws unless the trace
   * ended as a trace does: with its final debugfs record, `exit`, `exitHang`
   * or `initFailed`.
   */
  end(): void {
    if (this.records === 0) throw new TraceError(1, "no records: an empty file is not a trace");
    if (this.endedAt !== 0 || (this.lastKind === "debugfs" && this.finalDebugfs)) return;
    const after = this.lastCycleRecord >= 0 ? ` after cycle ${this.lastCycleRecord}` : "";
    throw new TraceError(this.lineNumber + 1, `the file ends${after} without the trace's end (its final "debugfs", "exit" or "initFailed" record): cut short?`);
  }
}

/**
 * Reads a whole trace from its text, calling `onRecord` for each record; throws
 * a {@link TraceError} at the first line that is wrong. Returns the number
 * of lines. Lines end at `\n` (a `\r` before it is JSON's whitespace).
 */
export function readTrace(text: string, onRecord: (record: ReadRecord, line: number) => void = () => {}): number {
  const reader = new TraceReader(onRecord);
  let start = 0;
  for (;;) {
    const end = text.indexOf("\n", start);
    if (end === -1) break;
    reader.line(text.slice(start, end));
    start = end + 1;
  }
  if (start < text.length) reader.line(text.slice(start), false);
  reader.end();
  return reader.lines;
}
