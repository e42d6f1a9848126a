/**
 * The balloon driver's statistics as the kernel gives them: where its debugfs
 * `vmmemctl` file is, reading it (or a saved copy, or stdin), and why it
 * cannot be read, in one line (not there: exit 69; not permitted: 77). The
 * `stats` and `exporter` commands both read through it.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { filesUnder, loadedBalloonDriver, type KernelBalloonDriver } from "@vmballoon/hv-x86";
import { describeFileError } from "./errors.js";
import { VMMEMCTL, inputName, readBounded, readInput } from "./files.js";

/** Where the kernel's driver puts its statistics (debugfs). */
export const DEFAULT_FILE = "/sys/kernel/debug/vmmemctl";

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
