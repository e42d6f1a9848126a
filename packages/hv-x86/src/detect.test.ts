import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { BACKDOOR_MAGIC } from "@vmballoon/protocol";
import { backdoorVersionOf, detect, detectFrom, filesUnder, loadedBalloonDriver, readText, type DetectionSources } from "./detect.js";
import type { Registers } from "./trampolines.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";

function words(text: string): number[] {
  const bytes = Buffer.alloc(12);
  bytes.write(text, "latin1");
  return [0, 4, 8].map((offset) => bytes.readUInt32LE(offset));
}

/** A machine whose CPUID says `vendor` and `signature` (null: no hypervisor bit). */
function fakeMachine(vendor: string, signature: string | null, files: Record<string, string> = {}) {
  const [b, d, c] = words(vendor); // vendor is EBX, EDX, ECX
  const [sb, sc, sd] = words(signature ?? "");
  const getVersion = vi.fn((): Registers => ({ eax: 6, ebx: BACKDOOR_MAGIC, ecx: 2, edx: 0 }));
  const sources: DetectionSources = {
    cpuid(leaf) {
      if (leaf === 0) return { eax: 0x16, ebx: b!, ecx: c!, edx: d! };
      if (leaf === 1) return { eax: 0x906ea, ebx: 0, ecx: signature === null ? 0x7ffafbff : 0xfffafbff, edx: 0 };
      if (leaf === 0x4000_0000) return { eax: 0x4000_0010, ebx: sb!, ecx: sc!, edx: sd! };
      return { eax: 0, ebx: 0, ecx: 0, edx: 0 };
    },
    getVersion,
    readText: (path) => files[path],
    exists: (path) => path in files,
  };
  return { sources, getVersion };
}

describe("detection", () => {
  it("on VMware: the signature, vmware true, and GETVERSION's version and product type", () => {
    const { sources, getVersion } = fakeMachine("GenuineIntel", "VMwareVMware");
    expect(detectFrom(sources)).toEqual({
      cpuVendor: "GenuineIntel",
      hypervisorPresent: true,
      hypervisor: "VMwareVMware",
      vmware: true,
      backdoor: { version: 6, productType: 2 },
      backdoorCheck: "in-process",
      balloonDriver: null,
    });
    expect(getVersion).toHaveBeenCalledTimes(1);
  });

  it.each(["KVMKVMKVM", "TCGTCGTCGTCG", "Microsoft Hv", "VMwareVMwar"])("under %s: never runs the backdoor, and says so", (signature) => {
    const { sources, getVersion } = fakeMachine("AuthenticAMD", signature);
    const found = detectFrom(sources);
    expect(found).toMatchObject({ cpuVendor: "AuthenticAMD", hypervisor: signature, vmware: false, backdoor: null, backdoorCheck: "skipped" });
    expect(getVersion).not.toHaveBeenCalled();
  });

  it("without the hypervisor-present bit: no hypervisor, whatever leaf 0x40000000 holds", () => {
    const { sources, getVersion } = fakeMachine("GenuineIntel", null);
    const cpuid = sources.cpuid.bind(sources);
    sources.cpuid = (leaf, subleaf) => (leaf === 0x4000_0000 ? { eax: 0, ebx: words("VMwareVMware")[0]!, ecx: 0, edx: 0 } : cpuid(leaf, subleaf));
    expect(detectFrom(sources)).toMatchObject({ hypervisorPresent: false, hypervisor: null, vmware: false });
    expect(getVersion).not.toHaveBeenCalled();
  });

  it("finds the kernel's balloon driver as a module, as the older module, or built in", () => {
    const modules = "virtio_net 57344 0 - Live 0x0\nvmw_balloon 24576 0 - Live 0x0\n";
    expect(loadedBalloonDriver({ readText: (p) => (p === "/proc/modules" ? modules : undefined), exists: () => false })).toBe("vmw_balloon");
    const older = "vmware_balloon 16384 0 - Live 0x0\n";
    expect(loadedBalloonDriver({ readText: () => older, exists: () => false })).toBe("vmware_balloon");
    expect(loadedBalloonDriver({ readText: () => undefined, exists: (p) => p === "/sys/module/vmw_balloon" })).toBe("vmw_balloon");
    // A module whose name merely starts the same is not the driver.
    expect(loadedBalloonDriver({ readText: () => "vmw_balloon_x 1 0 - Live 0x0\n", exists: () => false })).toBeNull();
    expect(loadedBalloonDriver({ readText: () => undefined, exists: () => false })).toBeNull();
  });

  it("reads a machine's files under a root: a module in /proc/modules, a built-in driver in /sys/module, unreadable files as undefined", () => {
    const root = mkdtempSync(join(tmpdir(), "vmballoon-detect-test-"));
    try {
      const files = filesUnder(root);
      expect(files.readText("/proc/modules")).toBeUndefined();
      expect(loadedBalloonDriver(files)).toBeNull();
      mkdirSync(join(root, "sys/module/vmware_balloon"), { recursive: true });
      expect(files.exists("/sys/module/vmware_balloon")).toBe(true);
      expect(loadedBalloonDriver(files)).toBe("vmware_balloon");
      mkdirSync(join(root, "proc"));
      writeFileSync(join(root, "proc/modules"), "vmw_balloon 24576 0 - Live 0x0\n");
      expect(files.readText("/proc/modules")).toBe("vmw_balloon 24576 0 - Live 0x0\n");
      expect(loadedBalloonDriver(files)).toBe("vmw_balloon");
      // A directory is not a text.
      expect(readText(join(root, "proc"))).toBeUndefined();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("takes GETVERSION's answer only with the magic echoed in EBX and a version other than all ones", () => {
    expect(backdoorVersionOf({ eax: 6, ebx: BACKDOOR_MAGIC, ecx: 2, edx: 0 })).toEqual({ version: 6, productType: 2 });
    expect(backdoorVersionOf({ eax: 6, ebx: 0xffffffff, ecx: 2, edx: 0 })).toBeNull();
    expect(backdoorVersionOf({ eax: 0xffffffff, ebx: BACKDOOR_MAGIC, ecx: 0, edx: 0 })).toBeNull();
  });
});

describe.skipIf(!linuxX64)("detect() on this machine (needs Linux on x86-64)", () => {
  it("agrees with /proc/cpuinfo, and runs no backdoor unless it is VMware", () => {
    const found = detect();
    const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
    expect(found.cpuVendor).toBe(/^vendor_id\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]);
    expect(found.hypervisorPresent).toBe(/^flags\s*:.*\bhypervisor\b/m.test(cpuinfo));
    expect(found.vmware).toBe(found.hypervisor === "VMwareVMware");
    if (!found.vmware) expect(found).toMatchObject({ backdoor: null, backdoorCheck: "skipped" });
  });
});
