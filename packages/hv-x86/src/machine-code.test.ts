import { describe, expect, it } from "vitest";
import {
  BACKDOOR_SLOT,
  BACKDOOR_SLOT_64,
  BACKDOOR_SLOT_64_OFFSET,
  BACKDOOR_SLOT_OFFSET,
  HARMLESS_SLOT,
  HARMLESS_SLOT_64,
  IN_EAX_DX,
  backdoorCode,
  backdoorCode64,
  cpuidCode,
} from "./machine-code.js";

const block = 0x7f12_3456_7000;
const blockBytes = [0x00, 0x70, 0x56, 0x34, 0x12, 0x7f, 0x00, 0x00];

function indexOfBytes(code: Uint8Array, bytes: number[]): number {
  outer: for (let i = 0; i + bytes.length <= code.length; i++) {
    for (let j = 0; j < bytes.length; j++) if (code[i + j] !== bytes[j]) continue outer;
    return i;
  }
  return -1;
}

describe("the trampolines' machine code", () => {
  it.each([
    ["cpuid", cpuidCode(block)],
    ["backdoor", backdoorCode({ magic: 0x456c6d6f, port: 0x5670, block })],
    ["today's driver's backdoor", backdoorCode64({ magic: 0x456c6d6f, port: 0x5670, block })],
  ])("%s saves RBX first and restores it just before returning", (_name, code) => {
    expect(code[0]).toBe(0x53); // push rbx
    expect([...code.slice(-2)]).toEqual([0x5b, 0xc3]); // pop rbx; ret
    expect(code.filter((byte) => byte === 0x53).length).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ["cpuid", cpuidCode(block)],
    ["backdoor", backdoorCode({ magic: 0x456c6d6f, port: 0x5670, block })],
    ["today's driver's backdoor", backdoorCode64({ magic: 0x456c6d6f, port: 0x5670, block })],
  ])("%s bakes in the register block's address as movabs r8", (_name, code) => {
    expect(indexOfBytes(code, [0x49, 0xb8, ...blockBytes])).toBeGreaterThan(0);
  });

  it("puts `in eax, dx` in the slot, with magic in EAX and port in EDX as immediates before it", () => {
    const code = backdoorCode({ magic: 0x564d5868, port: 0x5658, block });
    expect([...code.slice(BACKDOOR_SLOT_OFFSET, BACKDOOR_SLOT_OFFSET + 4)]).toEqual(BACKDOOR_SLOT);
    expect(code[BACKDOOR_SLOT_OFFSET]).toBe(IN_EAX_DX);
    expect(indexOfBytes(code, [0xb8, 0x68, 0x58, 0x4d, 0x56])).toBeLessThan(BACKDOOR_SLOT_OFFSET); // mov eax, "VMXh"
    expect(indexOfBytes(code, [0xba, 0x58, 0x56, 0x00, 0x00])).toBeLessThan(BACKDOOR_SLOT_OFFSET); // mov edx, 0x5658
    expect(code.filter((byte) => byte === IN_EAX_DX).length).toBe(1);
  });

  it("the test build differs from the real one in the slot only, and has no IN at all", () => {
    const real = backdoorCode({ magic: 0x456c6d6f, port: 0x5670, block });
    const test = backdoorCode({ magic: 0x456c6d6f, port: 0x5670, block, harmless: true });
    expect(test.length).toBe(real.length);
    const differing = [...real.keys()].filter((i) => real[i] !== test[i]);
    expect(Math.min(...differing)).toBeGreaterThanOrEqual(BACKDOOR_SLOT_OFFSET);
    expect(Math.max(...differing)).toBeLessThan(BACKDOOR_SLOT_OFFSET + 4);
    expect([...test.slice(BACKDOOR_SLOT_OFFSET, BACKDOOR_SLOT_OFFSET + 4)]).toEqual(HARMLESS_SLOT);
    expect(test.includes(IN_EAX_DX)).toBe(false);
  });

  it("refuses an address that is not one", () => {
    expect(() => cpuidCode(-1)).toThrow(RangeError);
    expect(() => backdoorCode({ magic: 1, port: 1, block: 2 ** 60 })).toThrow(RangeError);
  });

  it("today's driver's: RSI takes the second argument before EDX takes the port, then `in eax, dx`; its test build differs in the slot only", () => {
    const real = backdoorCode64({ magic: 0x456c6d6f, port: 0x5670, block });
    const test = backdoorCode64({ magic: 0x456c6d6f, port: 0x5670, block, harmless: true });
    expect([...real.slice(BACKDOOR_SLOT_64_OFFSET, BACKDOOR_SLOT_64_OFFSET + 6)]).toEqual(BACKDOOR_SLOT_64);
    expect(real.filter((byte) => byte === IN_EAX_DX).length).toBe(1);
    const movRsiRdx = indexOfBytes(real, [0x48, 0x89, 0xd6]);
    const movEdxPort = indexOfBytes(real, [0xba, 0x70, 0x56, 0x00, 0x00]);
    expect(movRsiRdx).toBeGreaterThan(0);
    expect(movRsiRdx).toBeLessThan(movEdxPort);
    expect(movEdxPort).toBeLessThan(BACKDOOR_SLOT_64_OFFSET);
    // RCX and RSI are stored, 8 bytes each, after the slot.
    expect(indexOfBytes(real, [0x49, 0x89, 0x48, 0x10])).toBeGreaterThan(BACKDOOR_SLOT_64_OFFSET);
    expect(indexOfBytes(real, [0x49, 0x89, 0x70, 0x20])).toBeGreaterThan(BACKDOOR_SLOT_64_OFFSET);
    const differing = [...real.keys()].filter((i) => real[i] !== test[i]);
    expect(Math.min(...differing)).toBeGreaterThanOrEqual(BACKDOOR_SLOT_64_OFFSET);
    expect(Math.max(...differing)).toBeLessThan(BACKDOOR_SLOT_64_OFFSET + 6);
    expect([...test.slice(BACKDOOR_SLOT_64_OFFSET, BACKDOOR_SLOT_64_OFFSET + 6)]).toEqual(HARMLESS_SLOT_64);
    expect(test.includes(IN_EAX_DX)).toBe(false);
  });
});
