import { readdirSync } from "node:fs";
import { join } from "node:path";
import { filesUnder, loadedBalloonDriver, type KernelBalloonDriver } from "@vmballoon/hv-x86";
import {
  MODERN_COMMANDS,
  MODERN_GENERAL_STATS,
  PAGE_SIZE_NAMES,
  capabilityNames,
  format as formatVmmemctl,
  parse,
  toJson,
  toPrometheus,
  type ModernRecord,
  type SeedRecord,
  type VmmemctlRecord,
} from "@vmballoon/stats";
import { UsageError, describeFileError } from "../errors.js";
import { VMMEMCTL, inputName, readBounded, readInput, writeAtomically } from "../files.js";
import { optionValue, type OptionValue } from "../options.js";
import { colorsFor, mebibytes, styler, type Style } from "../output.js";

export interface StatsOptions {
  readonly file?: OptionValue;
  readonly format?: OptionValue;
  readonly json?: boolean;
  readonly output?: OptionValue;
}

/** Where the kernel's driver puts its statistics (debugfs). */
export const DEFAULT_FILE = "/sys/kernel/debug/vmmemctl";

/** The output formats of `--format`; without one, a summary for people. */
export const FORMATS = ["debugfs", "json", "prometheus"] as const;
export type StatsFormat = (typeof FORMATS)[number];

/** Why the kernel's vmmemctl cannot be read: not there (exit 69) or not permitted (exit 77). */
export class VmmemctlUnavailableError extends Error {
  override readonly name = "VmmemctlUnavailableError";
  constructor(
    message: string,
    readonly code: "E_NO_VMMEMCTL" | "E_VMMEMCTL_DENIED",
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What the machine says about the balloon, read from /proc and /sys. Undefined: could not tell; null: not there. */
export interface HostFacts {
  /** /sys/class/dmi/id/sys_vendor, such as "VMware, Inc.". */
  readonly systemVendor: string | undefined;
  /** The `hypervisor` CPU flag of /proc/cpuinfo. */
  readonly hypervisor: boolean | undefined;
  /** The balloon driver's module when loaded: `vmw_balloon` (or `vmware_balloon` before Linux 3.x); null when it is not (as `detect`'s). */
  readonly balloonDriver: KernelBalloonDriver | null;
  /** Whether debugfs is mounted at /sys/kernel/debug. */
  readonly debugfsMounted: boolean | undefined;
}

/** Reads the facts from a root directory (`/` on a real machine; a tree of files in tests). */
export function gatherFacts(root = "/"): HostFacts {
  const files = filesUnder(root);
  const vendor = files.readText("/sys/class/dmi/id/sys_vendor")?.trim();
  const cpuinfo = files.readText("/proc/cpuinfo");
  const hypervisor = cpuinfo === undefined ? undefined : /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo);
  const balloonDriver = loadedBalloonDriver(files);

  let debugfsMounted: boolean | undefined;
  const mounts = files.readText("/proc/mounts");
  if (mounts !== undefined) {
    debugfsMounted = mounts.split("\n").some((line) => {
      const [, mountPoint, type] = line.split(" ");
      return type === "debugfs" && mountPoint === "/sys/kernel/debug";
    });
  } else {
    try {
      debugfsMounted = readdirSync(join(root, "sys/kernel/debug")).length > 0;
    } catch {
      debugfsMounted = undefined;
    }
  }
  return { systemVendor: vendor || undefined, hypervisor, balloonDriver, debugfsMounted };
}

/**
 * Why the kernel's vmmemctl is missing, and what to do, as one line; the
 * code says whether it is not there (69) or not permitted (77).
 */
export function explainMissing(file: string, errorCode: string | undefined, facts: HostFacts): VmmemctlUnavailableError {
  const prefix = `cannot read ${file}`;
  if (errorCode === "EACCES" || errorCode === "EPERM") {
    return new VmmemctlUnavailableError(`${prefix}: permission denied; debugfs is for root only: run as root (sudo vmballoon stats)`, "E_VMMEMCTL_DENIED");
  }
  const saved = "give --file F to read a saved copy";
  if (facts.systemVendor !== undefined && !/vmware/i.test(facts.systemVendor)) {
    return new VmmemctlUnavailableError(
      `${prefix}: not a VMware guest (system vendor ${JSON.stringify(facts.systemVendor)}), so there is no VMware balloon; ${saved}`,
      "E_NO_VMMEMCTL",
    );
  }
  if (facts.systemVendor === undefined && facts.hypervisor === false) {
    return new VmmemctlUnavailableError(
      `${prefix}: not a virtual machine (no hypervisor flag in /proc/cpuinfo), so there is no VMware balloon; ${saved}`,
      "E_NO_VMMEMCTL",
    );
  }
  const reasons: string[] = [];
  if (facts.balloonDriver === null) {
    reasons.push(
      facts.systemVendor === undefined
        ? "the VMware balloon driver is not loaded ('modprobe vmw_balloon' loads it on a VMware guest, but nothing says this machine is one: it has no DMI system vendor)"
        : "the VMware balloon driver is not loaded (load it with 'modprobe vmw_balloon')",
    );
  }
  if (facts.debugfsMounted === false) {
    reasons.push("debugfs is not mounted (mount it with 'mount -t debugfs none /sys/kernel/debug')");
  }
  if (reasons.length === 0) {
    reasons.push(
      `the balloon driver${facts.balloonDriver ? ` (${facts.balloonDriver})` : ""} is loaded and debugfs is mounted, but there is no vmmemctl (a kernel built without CONFIG_DEBUG_FS?)`,
    );
  }
  return new VmmemctlUnavailableError(`${prefix}: ${reasons.join("; ")}`, "E_NO_VMMEMCTL");
}

/** Where to read from when no --file is given: the kernel's file, and the root to diagnose a missing one. */
export interface DefaultSource {
  readonly file: string;
  readonly root: string;
}

const KERNEL: DefaultSource = { file: DEFAULT_FILE, root: "/" };

/** Reads the text to show: a named file, stdin (`-`), or the kernel's vmmemctl. */
export function readVmmemctl(file: string | undefined, source: DefaultSource = KERNEL): { name: string; text: string } {
  if (file === undefined) {
    try {
      return { name: source.file, text: readBounded(source.file, VMMEMCTL, "read") };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR" || code === "EACCES" || code === "EPERM") {
        throw explainMissing(source.file, code, gatherFacts(source.root));
      }
      throw describeFileError(error, "read", source.file);
    }
  }
  return { name: inputName(file), text: readInput(file, VMMEMCTL, "read") };
}

function chooseFormat(options: StatsOptions): StatsFormat | undefined {
  const format = optionValue(options.format, "--format", `a value: ${FORMATS.join(", ")}`);
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be ${FORMATS.slice(0, -1).join(", ")} or ${FORMATS.at(-1)}, not '${format}'`);
  }
  if (options.json) {
    if (format !== undefined && format !== "json") throw new UsageError(`--json and --format ${format} disagree; give one`);
    return "json";
  }
  return format as StatsFormat | undefined;
}

export function stats(options: StatsOptions): number {
  const file = optionValue(options.file, "--file", "a file name ('-' for stdin)");
  const format = chooseFormat(options);
  const output = optionValue(options.output, "--output", "a file name");
  const { name, text } = readVmmemctl(file);

  let record: VmmemctlRecord;
  try {
    record = parse(text);
  } catch (error) {
    // Name the file, then the line: "saved.txt: line 7: expected ...".
    if (error instanceof Error) error.message = `${name}: ${error.message}`;
    throw error;
  }

  if (output === undefined || output === "-") {
    process.stdout.write(render(format, name, record, styler(colorsFor(process.stdout))));
  } else {
    // Whole or not at all: node_exporter's textfile collector may read it at any moment.
    writeAtomically(output, render(format, name, record), "write");
  }
  return 0;
}

function render(format: StatsFormat | undefined, name: string, record: VmmemctlRecord, paint?: Paint): string {
  switch (format) {
    case "debugfs":
      return formatVmmemctl(record);
    case "json":
      return `${JSON.stringify(toJson(record), null, 2)}\n`;
    case "prometheus":
      return toPrometheus(record);
    default:
      return summary(name, record, paint);
  }
}

// ---------------------------------------------------------------------------
// The summary for people: sizes in pages and MiB (vmware-toolbox-cmd's
// `stat balloon` prints MB), failures in yellow on a terminal.
// ---------------------------------------------------------------------------

type Paint = (style: Style, text: string) => string;

function counted(paint: Paint, total: number | bigint, failed: number | bigint): string {
  return `${total}${failed ? paint("yellow", ` (${failed} failed)`) : ""}`;
}

/** A summary of a record, for a terminal or a log. */
export function summary(name: string, record: VmmemctlRecord, paint: Paint = (_s, text) => text): string {
  const lines = record.layout === "seed" ? seedSummary(record, paint) : modernSummary(record, paint);
  const layout = record.layout === "seed" ? "seed layout: vmw_balloon 1.2.1.3-k" : "modern layout: Linux 4.20 and later";
  return `${paint("bold", `vmmemctl`)} ${name} (${layout})\n${lines.map(([label, text]) => `  ${paint("dim", label.padEnd(9))} ${text}`).join("\n")}\n`;
}

function seedSummary(r: SeedRecord, paint: Paint): [string, string][] {
  const s = r.stats;
  return [
    ["balloon", `${r.size} pages (${mebibytes(r.size)}), target ${r.target} pages (${mebibytes(r.target)})`],
    [
      "rates",
      `non-sleeping allocations ${r.rateNosleepAlloc} pages/s, sleeping ${r.rateAlloc} pages/s (${mebibytes(r.rateAlloc)}/s), releases ${r.rateFree} pages/s (${mebibytes(r.rateFree)}/s)`,
    ],
    [
      "commands",
      `LOCK ${counted(paint, s.lock, s.lockFail)}, UNLOCK ${counted(paint, s.unlock, s.unlockFail)}, GET_TARGET ${counted(paint, s.target, s.targetFail)}, START ${counted(paint, s.start, s.startFail)}, GUEST_ID ${counted(paint, s.guestType, s.guestTypeFail)}`,
    ],
    [
      "pages",
      `allocated non-sleeping ${counted(paint, s.alloc, s.allocFail)}, sleeping ${counted(paint, s.sleepAlloc, s.sleepAllocFail)}; freed ${s.free}; refused by the host ${s.refusedAlloc}, of them released ${s.refusedFree}`,
    ],
    ["timer", `${s.timer} runs`],
  ];
}

function modernSummary(r: ModernRecord, paint: Paint): [string, string][] {
  const caps = (mask: bigint) => `0x${mask.toString(16)}${mask ? ` (${capabilityNames(mask).join(", ")})` : ""}`;
  const pages = PAGE_SIZE_NAMES.map((size): [string, string] => [
    `pages ${size}`,
    `allocated ${counted(paint, r.pages.alloc[size], r.pages.allocFail[size])}, freed ${r.pages.free[size]}, refused by the host ${r.pages.refusedAlloc[size]}, of them released ${r.pages.refusedFree[size]}`,
  ]);
  return [
    [
      "balloon",
      `${r.size} pages (${mebibytes(r.size)}), target ${r.target} pages (${mebibytes(r.target)})${r.resetRequired ? paint("yellow", "; resetting") : ""}`,
    ],
    ["caps", `used ${caps(r.usedCapabilities)} of ${caps(r.balloonCapabilities)}`],
    ["commands", MODERN_COMMANDS.map((name) => `${name} ${counted(paint, r.commands[name].total, r.commands[name].failed)}`).join(", ")],
    ...pages,
    [
      "general",
      MODERN_GENERAL_STATS.filter((name) => r.general[name] !== undefined)
        .map((name) => `${name} ${r.general[name]}`)
        .join(", "),
    ],
  ];
}
