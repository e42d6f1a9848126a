import { describe, expect, it, vi } from "vitest";
import { COMMANDS, HV_MAGIC, HV_PORT, MODERN_COMMANDS, PROTOCOL_VERSION } from "@vmballoon/protocol";
import { BalloonHypervisor, ModernBalloonHypervisor, type BalloonPortSources } from "./balloon-port.js";
import { detect } from "./detect.js";
import { HvError, SystemCallError } from "./errors.js";
import { BALLOON, backdoorCall, backdoorCall64, type Registers } from "./trampolines.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
const vmware = linuxX64 && detect().vmware;

function signatureWords(text: string): [number, number, number] {
  const bytes = Buffer.alloc(12);
  bytes.write(text, "latin1");
  return [bytes.readUInt32LE(0), bytes.readUInt32LE(4), bytes.readUInt32LE(8)];
}

function cpuidSaying(signature: string) {
  const [ebx, ecx, edx] = signatureWords(signature);
  return (leaf: number): Registers => {
    if (leaf === 1) return { eax: 0, ebx: 0, ecx: 0x8000_0000, edx: 0 };
    if (leaf === 0x4000_0000) return { eax: 0, ebx, ecx, edx };
    return { eax: 0, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 };
  };
}

function sources(signature: string, openPorts: BalloonPortSources["openPorts"] = () => {}) {
  const backdoor = vi.fn(() => backdoorCall({ ...BALLOON, harmless: true }));
  const backdoor64 = vi.fn(() => backdoorCall64({ ...BALLOON, harmless: true }));
  const opened = vi.fn(openPorts);
  return { sources: { cpuid: cpuidSaying(signature), openPorts: opened, backdoor, backdoor64 }, opened, backdoor, backdoor64 };
}

function codeOf(thunk: () => unknown): string | undefined {
  try {
    thunk();
  } catch (error) {
    expect(error).toBeInstanceOf(HvError);
    return (error as HvError).code;
  }
  return undefined;
}

describe("the balloon port", () => {
  it("cannot be opened off VMware: no port opened, no trampoline built", () => {
    const { sources: kvm, opened, backdoor } = sources("KVMKVMKVM");
    expect(codeOf(() => BalloonHypervisor.open(kvm))).toBe("E_NOT_VMWARE");
    expect(opened).not.toHaveBeenCalled();
    expect(backdoor).not.toHaveBeenCalled();
  });

  it("opens the four ports of a 32-bit IN at 0x5670 before building the call", () => {
    const { sources: vmware, opened, backdoor } = sources("VMwareVMware");
    BalloonHypervisor.open(vmware);
    expect(opened).toHaveBeenCalledWith(HV_PORT, 4);
    expect(opened.mock.invocationCallOrder[0]!).toBeLessThan(backdoor.mock.invocationCallOrder[0]!);
  });

  it("refused ioperm (EPERM) is E_PORT_DENIED; a kernel without ioperm (ENOSYS) is E_PORT_UNAVAILABLE", () => {
    const refuse = (errno: number) => () => {
      throw new SystemCallError("ioperm", errno, "refused");
    };
    const denied = sources("VMwareVMware", refuse(1));
    expect(codeOf(() => BalloonHypervisor.open(denied.sources))).toBe("E_PORT_DENIED");
    expect(denied.backdoor).not.toHaveBeenCalled();
    const missing = sources("VMwareVMware", refuse(38));
    expect(codeOf(() => BalloonHypervisor.open(missing.sources))).toBe("E_PORT_UNAVAILABLE");
  });

  it.skipIf(!linuxX64)("answers the engine from EAX (status) and EBX (result), through the test build of the trampoline (needs Linux on x86-64)", () => {
    const hypervisor = BalloonHypervisor.open(sources("VMwareVMware").sources);
    // The test build exchanges EAX with EBX: the status is the argument, the result the magic.
    const reply = hypervisor.call(COMMANDS.START, PROTOCOL_VERSION);
    expect(reply).toEqual({ status: PROTOCOL_VERSION, result: HV_MAGIC });
    expect(hypervisor.call(COMMANDS.LOCK, 0xfffffffe)).toEqual({ status: 0xfffffffe, result: HV_MAGIC });
  });

  it.skipIf(!linuxX64 || vmware)("on this machine: opens only if CPUID says VMware (only off VMware, on Linux x86-64)", () => {
    expect(codeOf(() => BalloonHypervisor.open())).toBe("E_NOT_VMWARE");
  });
});

describe("today's driver's balloon port", () => {
  it("cannot be opened off VMware or without the port: no trampoline built", () => {
    const kvm = sources("KVMKVMKVM");
    expect(codeOf(() => ModernBalloonHypervisor.open(kvm.sources))).toBe("E_NOT_VMWARE");
    expect(kvm.opened).not.toHaveBeenCalled();
    expect(kvm.backdoor64).not.toHaveBeenCalled();
    const denied = sources("VMwareVMware", () => {
      throw new SystemCallError("ioperm", 1, "refused");
    });
    expect(codeOf(() => ModernBalloonHypervisor.open(denied.sources))).toBe("E_PORT_DENIED");
    expect(denied.backdoor64).not.toHaveBeenCalled();
  });

  it("opens the four ports at 0x5670, then builds the 64-bit trampoline (not the seed's)", () => {
    const vmware = sources("VMwareVMware");
    ModernBalloonHypervisor.open(vmware.sources);
    expect(vmware.opened).toHaveBeenCalledWith(HV_PORT, 4);
    expect(vmware.backdoor64).toHaveBeenCalledTimes(1);
    expect(vmware.backdoor).not.toHaveBeenCalled();
    expect(vmware.opened.mock.invocationCallOrder[0]!).toBeLessThan(vmware.backdoor64.mock.invocationCallOrder[0]!);
  });

  it.skipIf(!linuxX64)("answers from EAX (status), RBX (64-bit result) and ECX, through the test build of the trampoline", () => {
    const hypervisor = ModernBalloonHypervisor.open(sources("VMwareVMware").sources);
    // The test build exchanges RAX with RBX and RCX with RDX: the status is the first argument's low half,
    // the result the magic, ECX the port; the command went in ECX (now EDX), the second argument in RSI.
    expect(hypervisor.call(MODERN_COMMANDS.START, 0x3e, 0)).toEqual({ status: 0x3e, result: HV_MAGIC, ecx: HV_PORT });
    const frame = 2 ** 40 + 5;
    expect(hypervisor.call(MODERN_COMMANDS.BATCHED_LOCK, frame, 512)).toEqual({ status: 5, result: HV_MAGIC, ecx: HV_PORT });
  });
});
