import { describe, expect, it } from "vitest";
import { hex } from "./hex.js";

describe("hex", () => {
  it.each([
    [0x5670, "0x5670"],
    [0, "0x0"],
    [-1, "0xffffffff"],
    [0x8000_0000 | 0, "0x80000000"],
  ])("%d is %s (a negative number as its unsigned 32 bits)", (value, text) => {
    expect(hex(value)).toBe(text);
  });
});
