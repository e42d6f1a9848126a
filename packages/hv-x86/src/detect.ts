import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BACKDOOR_CMD_GETVERSION, BACKDOOR_MAGIC } from "@vmballoon/protocol";
import { BACKDOOR, backdoorCall, cpuid, type Registers } from "./trampolines.js";

/** The hypervisor signature of VMware, in CPUID leaf 0x40000000. */
export const VMWARE_SIGNATURE = "VMwareVMware";

/** Names the kernel's balloon driver goes by: today's, and the older one. */
export const KERNEL_BALLOON_DRIVERS = ["vmw_balloon", "vmware_balloon"] as const;

/** One of {@link KERNEL_BALLOON_DRIVERS}. */
export type KernelBalloonDriver = (typeof KERNEL_BALLOON_DRIVERS)[number];

/** What the backdoor's GETVERSION answered. */
export interface BackdoorVersion {
  /** EAX: the backdoor version (QEMU's vmport says 6). */
  readonly version: number;
  /** ECX: the product type (VMware's VMX type; QEMU's vmport says 2). */
  readonly productType: number;
}

/** What {@link detect} found. */
export interface Detection {
  /** CPUID leaf 0's vendor string, such as `"GenuineIntel"` or `"AuthenticAMD"`. */
  readonly cpuVendor: string;
  /** CPUID.1:ECX bit 31, set by hypervisors for their guests. */
  readonly hypervisorPresent: boolean;
  /** The signature of CPUID leaf 0x40000000 (`"VMwareVMware"`, `"KVMKVMKVM"`…), or null without a hypervisor. */
  readonly hypervisor: string | null;
  /** The signature is VMware's: the only case where the backdoor is used without a probe. */
  readonly vmware: boolean;
  /** GETVERSION's answer on VMware; null elsewhere or when it did not answer. */
  readonly backdoor: BackdoorVersion | null;
  /** How the backdoor was looked at: in this process (VMware only), or not at all. */
  readonly backdoorCheck: "in-process" | "skipped";
  /** The kernel's own balloon driver when it is loaded (`vmw_balloon` or `vmware_balloon`), else null. */
  readonly balloonDriver: KernelBalloonDriver | null;
}

/** Where detection reads from: the real machine, or a fake in tests. */
export interface DetectionSources {
  cpuid(leaf: number, subleaf?: number): Registers;
  /** The backdoor's GETVERSION; only ever called when the signature is VMware's. */
  getVersion(): Registers;
  readText(path: string): string | undefined;
  exists(path: string): boolean;
}

/** Four little-endian registers as text, with the trailing NULs cut. */
function registerText(...values: number[]): string {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => bytes.writeUInt32LE(value >>> 0, i * 4));
  return bytes.toString("latin1").replace(/\0+$/, "");
}

/** GETVERSION's registers as a version, or null when they are not the backdoor's answer. */
export function backdoorVersionOf(registers: Registers): BackdoorVersion | null {
  // A backdoor echoes the magic in EBX and never says version 0xffffffff (an unassigned port's read).
  if (registers.ebx >>> 0 !== BACKDOOR_MAGIC || registers.eax >>> 0 === 0xffffffff) return null;
  return { version: registers.eax >>> 0, productType: registers.ecx >>> 0 };
}

/** The files detection reads: `readText` and `exists` of {@link DetectionSources}. */
export type FileSources = Pick<DetectionSources, "readText" | "exists">;

/** A file's text as UTF-8, or undefined when it cannot be read (missing, not permitted, a directory). */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * The files of a machine whose root is `root`: `/` for this one, a tree of
 * files in tests. Absolute paths (`/proc/modules`) are read under it.
 */
export function filesUnder(root: string): FileSources {
  const at = (path: string) => join(root, path);
  return { readText: (path) => readText(at(path)), exists: (path) => existsSync(at(path)) };
}

/**
 * The kernel's balloon driver, when loaded (as a module in /proc/modules, or
 * built in: /sys/module); null when it is not. The one detection of the
 * kernel's driver, for `detect` and for `stats`' diagnosis alike.
 */
export function loadedBalloonDriver(sources: FileSources): KernelBalloonDriver | null {
  const modules = sources.readText("/proc/modules");
  for (const name of KERNEL_BALLOON_DRIVERS) {
    if (modules !== undefined && modules.split("\n").some((line) => line.startsWith(`${name} `))) return name;
    if (sources.exists(`/sys/module/${name}`)) return name;
  }
  return null;
}

/** What CPUID alone says: the vendor, the hypervisor-present bit, the hypervisor's signature. */
export function cpuIdentity(cpuidOf: DetectionSources["cpuid"]): Pick<Detection, "cpuVendor" | "hypervisorPresent" | "hypervisor"> {
  const leaf0 = cpuidOf(0);
  const cpuVendor = registerText(leaf0.ebx, leaf0.edx, leaf0.ecx);
  const hypervisorPresent = (cpuidOf(1).ecx & 0x8000_0000) !== 0;
  let hypervisor: string | null = null;
  if (hypervisorPresent) {
    // Without the bit, leaf 0x40000000 is not a hypervisor's (bare metal answers with other leaves' data).
    const leaf = cpuidOf(0x4000_0000);
    hypervisor = registerText(leaf.ebx, leaf.ecx, leaf.edx) || null;
  }
  return { cpuVendor, hypervisorPresent, hypervisor };
}

/** Detection from explicit sources (tests pass fakes). */
export function detectFrom(sources: DetectionSources): Detection {
  const { cpuVendor, hypervisorPresent, hypervisor } = cpuIdentity(sources.cpuid.bind(sources));
  const vmware = hypervisor === VMWARE_SIGNATURE;

  // The safety rule: the backdoor `IN` runs in this process only where CPUID says VMware.
  const backdoor = vmware ? backdoorVersionOf(sources.getVersion()) : null;

  return {
    cpuVendor,
    hypervisorPresent,
    hypervisor,
    vmware,
    backdoor,
    backdoorCheck: vmware ? "in-process" : "skipped",
    balloonDriver: loadedBalloonDriver(sources),
  };
}

/** The real machine's sources. */
export const machineSources: DetectionSources = {
  cpuid,
  getVersion() {
    const { call, registers } = backdoorCall(BACKDOOR);
    call(BACKDOOR_CMD_GETVERSION, 0xffffffff);
    return { eax: registers[0]!, ebx: registers[1]!, ecx: registers[2]!, edx: registers[3]! };
  },
  readText,
  exists: existsSync,
};

/**
 * What this machine is: CPU vendor, hypervisor and its signature, VMware or
 * not, the backdoor's version (on VMware only: elsewhere the backdoor is not
 * touched; see {@link probeBackdoor}), and whether the kernel's balloon driver
 * is loaded. Throws HvError E_NATIVE_UNAVAILABLE off Linux x64.
 */
export function detect(): Detection {
  return detectFrom(machineSources);
}
