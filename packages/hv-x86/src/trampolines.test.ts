import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BACKDOOR_MAGIC, BACKDOOR_PORT, COMMANDS, HV_MAGIC, HV_PORT, MODERN_COMMANDS } from "@vmballoon/protocol";
import { BACKDOOR, BALLOON, backdoorCall, backdoorCall64, codePage, cpuid, register64 } from "./trampolines.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";
/** Leaf 0xB (topology) echoes its subleaf; CPUs from before 2008 have none. */
const hasLeaf0xB = linuxX64 && cpuid(0).eax >= 0xb;

/** The first processor's fields of /proc/cpuinfo. */
function cpuinfo(): { vendor: string; flags: string[] } {
  const text = readFileSync("/proc/cpuinfo", "utf8");
  const vendor = /^vendor_id\s*:\s*(.*)$/m.exec(text)?.[1] ?? "";
  const flags = (/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? "").split(/\s+/);
  return { vendor, flags };
}

function text(...values: number[]): string {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => bytes.writeUInt32LE(value, i * 4));
  return bytes.toString("latin1");
}

/** The `mov r32, imm32` opcodes (0xb8 + the register's number) of the argument registers. */
const EDI = 0xbf;
const ESI = 0xbe;
const EDX = 0xba;

/** `mov r32, value` (`opcode` one of the above). */
function mov32(opcode: number, value: number): number[] {
  return [opcode, ...new Uint8Array(new Uint32Array([value]).buffer)];
}

/**
 * Calls the trampoline at `address` from a caller in machine code that sets RBX
 * to a pattern, runs `setArguments` (the `mov`s of the arguments), calls the
 * trampoline and returns RBX: the pattern must come back.
 */
function expectRbxKept(address: number, setArguments: readonly number[], name: string): void {
  const caller = Uint8Array.from([
    0x53, // push rbx
    ...[0x48, 0xbb, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], // movabs rbx, 0x1122334455667788
    ...setArguments,
    ...[0x48, 0xb8, ...new Uint8Array(new BigUint64Array([BigInt(address)]).buffer)], // movabs rax, trampoline
    ...[0xff, 0xd0], // call rax
    ...[0x48, 0x89, 0xd8], // mov rax, rbx
    0x5b, // pop rbx
    0xc3, // ret
  ]);
  const { fn } = codePage<() => bigint | number>(caller, `uint64_t ${name}(void)`);
  expect(BigInt(fn())).toBe(0x1122334455667788n);
}

describe.skipIf(!linuxX64)("CPUID through the trampoline (needs Linux on x86-64)", () => {
  it("gives the vendor that /proc/cpuinfo shows", () => {
    const leaf0 = cpuid(0);
    expect(text(leaf0.ebx, leaf0.edx, leaf0.ecx)).toBe(cpuinfo().vendor);
    expect(leaf0.eax).toBeGreaterThanOrEqual(1); // the highest basic leaf
  });

  it("gives the hypervisor-present bit that /proc/cpuinfo shows as the 'hypervisor' flag", () => {
    const bit = (cpuid(1).ecx >>> 31) & 1;
    expect(bit === 1).toBe(cpuinfo().flags.includes("hypervisor"));
  });

  it.skipIf(!hasLeaf0xB)("passes the subleaf in ECX: leaf 0xB echoes it in ECX bits 0-7 (needs a CPU with leaf 0xB)", () => {
    for (const subleaf of [0, 1, 2]) expect(cpuid(0xb, subleaf).ecx & 0xff).toBe(subleaf);
  });

  it("gives leaf 1's family/model (EAX) whatever the subleaf", () => {
    expect(cpuid(1, 5).eax).toBe(cpuid(1, 0).eax);
  });
});

describe.skipIf(!linuxX64)("the backdoor trampoline, test build: the IN replaced by xchg eax,ebx; xchg ecx,edx (needs Linux on x86-64)", () => {
  it.each([
    ["balloon", BALLOON, HV_MAGIC, HV_PORT],
    ["general backdoor", BACKDOOR, BACKDOOR_MAGIC, BACKDOOR_PORT],
  ])("%s: magic to EAX, argument to EBX, command to ECX, port to EDX, and back", (_name, target, magic, port) => {
    const { call, registers } = backdoorCall({ ...target, harmless: true });
    const status = call(COMMANDS.LOCK, 0x0012_3456);
    // After the exchange: EAX had the argument, EBX the magic, ECX the port, EDX the command.
    expect(status).toBe(0x0012_3456);
    expect([...registers]).toEqual([0x0012_3456, magic, port, COMMANDS.LOCK]);
  });

  it("carries any 32-bit command and argument, unsigned, call after call", () => {
    const { call, registers } = backdoorCall({ ...BALLOON, harmless: true });
    fc.assert(
      fc.property(fc.nat({ max: 0xffff_ffff }), fc.nat({ max: 0xffff_ffff }), (command, argument) => {
        expect(call(command, argument)).toBe(argument);
        expect(registers[0]).toBe(argument);
        expect(registers[1]).toBe(HV_MAGIC);
        expect(registers[2]).toBe(HV_PORT);
        expect(registers[3]).toBe(command);
      }),
      { numRuns: 2000 },
    );
  });

  it("leaves RBX (callee-saved) as the caller had it", () => {
    const { address } = backdoorCall({ ...BALLOON, harmless: true });
    expectRbxKept(address, [...mov32(EDI, 2), ...mov32(ESI, 12345)], "vmballoon_test_rbx_caller"); // command, argument
  });

  it("caches one trampoline per port, magic and build", () => {
    expect(backdoorCall({ ...BALLOON, harmless: true })).toBe(backdoorCall({ ...BALLOON, harmless: true }));
    expect(backdoorCall({ ...BALLOON, harmless: true })).not.toBe(backdoorCall({ ...BACKDOOR, harmless: true }));
  });
});

describe.skipIf(!linuxX64)("today's driver's backdoor trampoline, test build (the IN replaced by xchg rax,rbx; xchg rcx,rdx; needs Linux on x86-64)", () => {
  it("passes the second argument in RSI and gives back RCX: magic to EAX, argument to RBX, command to ECX, port to EDX", () => {
    const { call, registers } = backdoorCall64({ ...BALLOON, harmless: true });
    const status = call(MODERN_COMMANDS.BATCHED_LOCK, 0x1234, 512);
    // After the exchanges: RAX had the argument, RBX the magic, RCX the port, RDX the command; RSI kept argument2.
    expect(status).toBe(0x1234);
    expect([
      register64(registers, "rax"),
      register64(registers, "rbx"),
      register64(registers, "rcx"),
      register64(registers, "rdx"),
      register64(registers, "rsi"),
    ]).toEqual([0x1234, HV_MAGIC, HV_PORT, MODERN_COMMANDS.BATCHED_LOCK, 512]);
  });

  it("carries 64-bit arguments whole (frames and targets above 2^32), call after call", () => {
    const { call, registers } = backdoorCall64({ ...BALLOON, harmless: true });
    const big = fc.oneof(fc.nat({ max: 0xffff_ffff }), fc.integer({ min: 2 ** 32, max: Number.MAX_SAFE_INTEGER }));
    fc.assert(
      fc.property(fc.nat({ max: 0xffff_ffff }), big, big, (command, argument, argument2) => {
        expect(call(command, argument, argument2)).toBe(argument % 2 ** 32);
        expect(register64(registers, "rax")).toBe(argument);
        expect(register64(registers, "rbx")).toBe(HV_MAGIC);
        expect(register64(registers, "rcx")).toBe(HV_PORT);
        expect(register64(registers, "rdx")).toBe(command);
        expect(register64(registers, "rsi")).toBe(argument2);
      }),
      { numRuns: 2000 },
    );
  });

  it("leaves RBX (callee-saved) as the caller had it", () => {
    const { address } = backdoorCall64({ ...BALLOON, harmless: true });
    expectRbxKept(address, [...mov32(EDI, 6), ...mov32(ESI, 12345), ...mov32(EDX, 512)], "vmballoon_test_rbx_caller64"); // command, argument, argument2
  });

  it("caches one trampoline per port, magic and build, apart from the seed's", () => {
    expect(backdoorCall64({ ...BALLOON, harmless: true })).toBe(backdoorCall64({ ...BALLOON, harmless: true }));
    expect(backdoorCall64({ ...BALLOON, harmless: true }).address).not.toBe(backdoorCall({ ...BALLOON, harmless: true }).address);
  });
});

describe.skipIf(!linuxX64)("code pages (need Linux on x86-64)", () => {
  it("are mapped read+execute, never writable and executable at once", () => {
    const before = new Set(readFileSync("/proc/self/maps", "utf8").split("\n"));
    backdoorCall({ magic: 0x1234_5678, port: 0x99, harmless: true });
    const added = readFileSync("/proc/self/maps", "utf8")
      .split("\n")
      .filter((line) => !before.has(line));
    const executable = added.filter((line) => /^\S+ ..x/.test(line));
    expect(executable.length).toBeGreaterThanOrEqual(1);
    for (const line of executable) expect(line).toMatch(/^\S+ r-xp /);
  });
});
