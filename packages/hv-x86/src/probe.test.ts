import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BACKDOOR_MAGIC } from "@vmballoon/protocol";
import { detect } from "./detect.js";
import { probeBackdoor, probeBalloon } from "./probe.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const vmware = linuxX64 && detect().vmware;
const folder = mkdtempSync(join(tmpdir(), "vmballoon-probe-"));

/** A stand-in child that behaves as the real one would on some machine. */
function child(name: string, body: string): string {
  const file = join(folder, `${name}.mjs`);
  writeFileSync(file, `const say = (r) => process.stdout.write(JSON.stringify(r) + "\\n");\n${body}\n`);
  return file;
}

describe("reading a probe's child", () => {
  it("QEMU with vmport=on: GETVERSION answers version 6, the magic in EBX, product type 2 in ECX", async () => {
    const script = child(
      "qemu-vmport",
      `say({ stage: "in", ioperm: "granted" }); say({ stage: "done", ioperm: "granted", eax: 6, ebx: ${BACKDOOR_MAGIC}, ecx: 2, edx: 0 });`,
    );
    const { backdoor, probe } = await probeBackdoor({ childScript: script });
    expect(backdoor).toEqual({ version: 6, productType: 2 });
    expect(probe).toMatchObject({ outcome: "answered", port: 0x5658, command: 10, ioperm: "granted", signal: null });
    expect(probe.detail).toMatch(/version 6/);
  });

  it("QEMU with vmport=off, as root: the IN reads all ones and nothing answers", async () => {
    const script = child(
      "qemu-no-vmport",
      `say({ stage: "in", ioperm: "granted" }); say({ stage: "done", ioperm: "granted", eax: 0xffffffff, ebx: 0xffffffff, ecx: 10, edx: 0x5658 });`,
    );
    const { backdoor, probe } = await probeBackdoor({ childScript: script });
    expect(backdoor).toBeNull();
    expect(probe.outcome).toBe("silent");
  });

  it("no backdoor and no ioperm: the IN faults, the child dies of SIGSEGV, the caller carries on", async () => {
    const script = child("fault", `say({ stage: "in", ioperm: "EPERM" }); process.kill(process.pid, "SIGSEGV");`);
    const { backdoor, probe } = await probeBackdoor({ childScript: script });
    expect(backdoor).toBeNull();
    expect(probe).toMatchObject({ outcome: "faulted", signal: "SIGSEGV", ioperm: "EPERM", registers: null });
    expect(probe.detail).toMatch(/^the IN on port 0x5658 faulted \(SIGSEGV; ioperm: EPERM\)/);
  });

  it("the balloon port in QEMU: START reads 0xffffffff, nothing speaks the protocol", async () => {
    const script = child(
      "qemu-balloon",
      `say({ stage: "in", ioperm: "granted" }); say({ stage: "done", ioperm: "granted", eax: 0xffffffff, ebx: 2, ecx: 0, edx: 0x5670 });`,
    );
    const probe = await probeBalloon({ childScript: script });
    expect(probe).toMatchObject({ outcome: "silent", port: 0x5670, command: 0 });
    expect(probe.detail).toBe("nothing speaks the balloon protocol on port 0x5670: START read 0xffffffff");
  });

  it("a balloon that answers START with a status of the protocol has answered", async () => {
    const script = child(
      "vmware-balloon",
      `say({ stage: "in", ioperm: "granted" }); say({ stage: "done", ioperm: "granted", eax: 0, ebx: 0, ecx: 0, edx: 0 });`,
    );
    const probe = await probeBalloon({ childScript: script });
    expect(probe.outcome).toBe("answered");
    expect(probe.detail).toMatch(/answered START with SUCCESS/);
  });

  it("a child that fails before the IN, or hangs, is a failed probe, not a fault", async () => {
    const failing = child("fails", `say({ stage: "failed", error: "the native layer works on Linux x64 only" }); process.exitCode = 3;`);
    expect(await probeBalloon({ childScript: failing })).toMatchObject({
      outcome: "failed",
      detail: "could not probe port 0x5670: the native layer works on Linux x64 only",
    });
    const hanging = child("hangs", `say({ stage: "in", ioperm: "granted" }); setInterval(() => {}, 1000);`);
    const probe = await probeBalloon({ childScript: hanging, timeoutMs: 300 });
    expect(probe).toMatchObject({ outcome: "failed", detail: "could not probe port 0x5670: the probe timed out" });
  });
});

describe.skipIf(!linuxX64)("probing this machine for real, the built child (needs Linux on x86-64)", () => {
  it("GETVERSION in a child: an answer on VMware, else null, and this process is still here", async () => {
    const { backdoor, probe } = await probeBackdoor();
    if (vmware) {
      expect(probe.outcome).toBe("answered");
      expect(backdoor?.version).toBeGreaterThan(0);
    } else {
      expect(backdoor).toBeNull();
      expect(["faulted", "silent"]).toContain(probe.outcome);
    }
  });

  it.skipIf(vmware)("START on the balloon port in a child: faulted or silent (only off VMware: START would reset a live balloon)", async () => {
    const probe = await probeBalloon();
    expect(["faulted", "silent"]).toContain(probe.outcome);
  });
});
