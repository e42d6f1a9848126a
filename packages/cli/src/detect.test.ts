import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { vmballoon } from "./cli-runner.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";

function cpuinfo() {
  const text = readFileSync("/proc/cpuinfo", "utf8");
  return { vendor: /^vendor_id\s*:\s*(.*)$/m.exec(text)?.[1], hypervisor: /^flags\s*:.*\bhypervisor\b/m.test(text) };
}

/** The modules a built entry imports statically, transitively (its own chunks), with the packages they name. */
function staticImports(file: URL, seen = new Set<string>()): string[] {
  if (seen.has(file.pathname)) return [];
  seen.add(file.pathname);
  const text = readFileSync(file, "utf8");
  const names: string[] = [];
  for (const match of text.matchAll(/^import\s[^;]*?from\s*"([^"]+)"|^import\s*"([^"]+)"/gm)) {
    const name = (match[1] ?? match[2])!;
    names.push(name);
    if (name.startsWith("./")) names.push(...staticImports(new URL(name, file), seen));
  }
  return names;
}

describe("vmballoon detect", () => {
  it.skipIf(!linuxX64)("--json prints only the detection record, which agrees with /proc/cpuinfo (needs Linux on x86-64)", () => {
    const { status, stdout, stderr } = vmballoon(["detect", "--json"]);
    expect(status).toBe(0);
    expect(stderr).toBe("");
    const record = JSON.parse(stdout);
    expect(Object.keys(record)).toStrictEqual(["cpuVendor", "hypervisorPresent", "hypervisor", "vmware", "backdoor", "backdoorCheck", "balloonDriver"]);
    expect(record.cpuVendor).toBe(cpuinfo().vendor);
    expect(record.hypervisorPresent).toBe(cpuinfo().hypervisor);
    expect(record.vmware).toBe(record.hypervisor === "VMwareVMware");
    if (!record.vmware) expect(record).toMatchObject({ backdoor: null, backdoorCheck: "skipped" });
  });

  it.skipIf(!linuxX64)("--probe --json runs GETVERSION in a child: an answer, or null, and exit status 0 either way (needs Linux on x86-64)", () => {
    const { status, stdout, stderr } = vmballoon(["detect", "--probe", "--json"]);
    expect(status).toBe(0);
    expect(stderr).toBe("");
    const record = JSON.parse(stdout);
    if (record.vmware) {
      expect(record.backdoor.version).toBeGreaterThan(0);
    } else {
      expect(record.backdoorCheck).toBe("child-process");
      expect(record.probe).toMatchObject({ port: 0x5658, command: 10 });
      if (record.probe.outcome === "answered") expect(record.backdoor.version).toBeGreaterThan(0);
      else expect(record.backdoor).toBeNull();
      // Where the kernel has no ioperm and nothing emulates the backdoor (this KVM guest), the child faults.
      if (record.probe.ioperm !== "granted") expect(record.probe).toMatchObject({ outcome: "faulted", signal: "SIGSEGV" });
    }
  });

  it.skipIf(!linuxX64)("prints a table for people, without colour when NO_COLOR is set (needs Linux on x86-64)", () => {
    const { status, stdout } = vmballoon(["detect"]);
    expect(status).toBe(0);
    expect(stdout).toMatch(/^CPU vendor\s+\S+/m);
    expect(stdout).toMatch(/^hypervisor\s+\S+/m);
    expect(stdout).toMatch(/^VMware\s+(yes|no)$/m);
    expect(stdout).toMatch(/^balloon driver\s+/m);
    expect(stdout).not.toContain("\u001b[");
  });

  it("rejects an unknown flag with usage and status 2", () => {
    const { status, stderr } = vmballoon(["detect", "--bogus"]);
    expect(status).toBe(2);
    expect(stderr).toMatch(/Unknown option `--bogus`/);
  });

  it("keeps koffi and the native layer out of what --help loads", () => {
    const imports = staticImports(new URL("../dist/cli.js", import.meta.url));
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((name) => /hv-x86|koffi/.test(name))).toStrictEqual([]);
    const help = vmballoon(["--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/detect/);
    expect(help.stdout).toMatch(/run/);
  });
});
