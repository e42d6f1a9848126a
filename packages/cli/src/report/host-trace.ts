/**
 * Reading a host's trace back (HOST.md "Trace (JSON Lines)"), checked record
 * by record as core's TraceReader checks a driver's: a line that is not one
 * JSON object, a record of a kind the host does not write, a missing or
 * mistyped field, seconds that go back, a `vm` or `policy` record that is not
 * in its second's place, anything after the `end` record, or a file that
 * stops before it, is one {@link TraceError} naming the line. What passes
 * is a record as `@vmballoon/host` writes it (its `HostTraceRecord`).
 */
import { TraceError } from "@vmballoon/core/sim";
import { ESX_STATES, type HostTraceRecord } from "@vmballoon/host";

type Json = { readonly [key: string]: unknown };
type Rule = "count" | "integer" | "text" | "state" | "estimate" | "object" | "list";

const COUNTS = (names: string): Record<string, Rule> => Object.fromEntries(names.split(" ").map((n) => [n, "count"]));

const RULES: Readonly<Record<string, Readonly<Record<string, Rule>>>> = {
  host: { second: "count", free: "integer", freeBefore: "integer", state: "state", ...COUNTS("backed balloon swapped swapIn swapOut forced") },
  vm: { second: "count", vm: "text", ...COUNTS("target balloon touched backed swapped guestFree demand active shortfall swapIn"), estimate: "estimate" },
  policy: { second: "count", input: "object", output: "object" },
  end: { seconds: "count", vms: "list" },
};

const WANT: Readonly<Record<Rule, string>> = {
  count: "a whole number, 0 or more",
  integer: "a whole number",
  text: "a string",
  state: `one of ${ESX_STATES.map((s) => `"${s}"`).join(", ")} or null`,
  estimate: "a number from 0 to 1, or null",
  object: "an object",
  list: "a list",
};

const isObject = (value: unknown): value is Json => value !== null && typeof value === "object" && !Array.isArray(value);

function fits(value: unknown, rule: Rule): boolean {
  switch (rule) {
    case "count":
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case "integer":
      return Number.isSafeInteger(value);
    case "text":
      return typeof value === "string";
    case "state":
      return value === null || (ESX_STATES as readonly unknown[]).includes(value);
    case "estimate":
      return value === null || (typeof value === "number" && value >= 0 && value <= 1);
    case "object":
      return isObject(value);
    case "list":
      return Array.isArray(value);
  }
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** Reads a host trace line by line: {@link line} for each, then {@link end}. */
export class HostTraceReader {
  private lineNumber = 0;
  private lastSecond = -1;
  /** The second of the last `host` record: the `vm` and `policy` records that follow belong to it. */
  private hostSecond = -1;
  private endedAt = 0;

  constructor(private readonly onRecord: (record: HostTraceRecord) => void) {}

  /** One line, without its line break; `terminated`: false for a last line that had none. */
  line(text: string, terminated = true): void {
    const n = ++this.lineNumber;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new TraceError(
        n,
        terminated ? "not JSON: a host trace has one JSON object on every line" : "no line break at its end: the file is cut short in the middle of a record",
      );
    }
    if (!terminated) throw new TraceError(n, "no line break at its end: the file is cut short in the middle of a record");
    if (!isObject(value)) throw new TraceError(n, `${quote(value)}, not a host trace record (a JSON object)`);
    const kind = value.t;
    const rules = typeof kind === "string" ? RULES[kind] : undefined;
    if (rules === undefined)
      throw new TraceError(
        n,
        `${typeof kind === "string" ? `a ${quote(kind)} record` : `no "t" field`}: a host trace has "host", "vm", "policy" and "end" records`,
      );
    if (this.endedAt !== 0) throw new TraceError(n, `a ${quote(kind)} record after the trace's end (its "end" record on line ${this.endedAt})`);
    for (const [name, rule] of Object.entries(rules)) {
      if (!(name in value)) throw new TraceError(n, `a "${kind as string}" record without "${name}"`);
      if (!fits(value[name], rule)) throw new TraceError(n, `"${name}" of a "${kind as string}" record should be ${WANT[rule]}, not ${quote(value[name])}`);
    }
    if (kind === "policy") this.checkRound(value, n);
    if (kind === "end") this.endedAt = n;
    else this.checkSecond(kind as string, value.second as number, n);
    this.onRecord(value as unknown as HostTraceRecord);
  }

  private checkSecond(kind: string, second: number, n: number): void {
    if (this.lineNumber === 1 && kind !== "host") throw new TraceError(n, `a host trace begins with its "host" record of second 0, not a "${kind}" record`);
    if (second < this.lastSecond) throw new TraceError(n, `second ${second} after second ${this.lastSecond}: the seconds of a trace never go back`);
    if (kind === "host") {
      if (second === this.hostSecond) throw new TraceError(n, `a second "host" record for second ${second}`);
      this.hostSecond = second;
    } else if (second !== this.hostSecond) {
      throw new TraceError(n, `a "${kind}" record of second ${second} after the "host" record of second ${this.hostSecond}: it follows its own second's`);
    }
    this.lastSecond = second;
  }

  /** What the report reads of a round: the host's pages, the policy's name and parameters, and a list of VMs in and out. */
  private checkRound(record: Json, n: number): void {
    const input = record.input as Json;
    const output = record.output as Json;
    const host = input.host;
    const problem =
      typeof input.policy !== "string"
        ? `"input.policy" should be a string`
        : !isObject(host) || !Number.isSafeInteger(host.pages) || (host.pages as number) <= 0
          ? `"input.host.pages" should be a whole number above 0`
          : input.params !== undefined && !isObject(input.params)
            ? `"input.params" should be an object`
            : !Array.isArray(input.vms) || !input.vms.every((vm) => isObject(vm) && typeof vm.name === "string" && Number.isSafeInteger(vm.target))
              ? `"input.vms" should be a list of VMs, each with its "name" and "target"`
              : !Array.isArray(output.vms) ||
                  output.vms.length !== input.vms.length ||
                  !output.vms.every((vm) => isObject(vm) && Number.isSafeInteger(vm.balloonTarget))
                ? `"output.vms" should list every VM of the input, each with its "balloonTarget"`
                : undefined;
    if (problem !== undefined) throw new TraceError(n, `${problem} in a "policy" record`);
  }

  /** The input ended: throws unless the trace ended with its `end` record. */
  end(): void {
    if (this.lineNumber === 0) throw new TraceError(1, "no records: an empty file is not a trace");
    if (this.endedAt === 0) {
      throw new TraceError(this.lineNumber + 1, `the file ends after second ${this.lastSecond} without the host trace's "end" record: cut short?`);
    }
  }
}

/** A line's JSON object, or undefined when it is not one. */
export function parseObject(text: string): Json | undefined {
  if (!text.trimStart().startsWith("{")) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a trace's first line is a host trace's: a JSON object whose `t` is "host". */
export function isHostTraceLine(text: string): boolean {
  return parseObject(text)?.t === "host";
}
