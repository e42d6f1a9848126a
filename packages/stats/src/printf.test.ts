import { describe, expect, it } from "vitest";
import { compile, failed, render, scan } from "./printf.js";

const C = { hexZero: "0" } as const;
const LINUX = { hexZero: "0x0" } as const;

describe("printf, as C prints", () => {
  it("prints an unsigned int of 2^31 or more with %8d as negative", () => {
    expect(render(compile("%8d"), [2 ** 31], C)).toBe("-2147483648");
    expect(render(compile("%8d"), [2 ** 32 - 1], C)).toBe("      -1");
    expect(render(compile("%8d"), [2 ** 31 - 1], C)).toBe("2147483647");
  });

  it("widens %8u and %4u past their columns and pads shorter values on the left", () => {
    expect(render(compile("%8u (%4u failed)"), [4294967295, 4294967295], C)).toBe("4294967295 (4294967295 failed)");
    expect(render(compile("%8u (%4u failed)"), [7, 1], C)).toBe("       7 (   1 failed)");
  });

  it("prints 64-bit %llu exactly, beyond 2^53", () => {
    expect(render(compile("%16llu"), [18446744073709551615n], C)).toBe("18446744073709551615");
    expect(render(compile("%16llu"), [9007199254740993n], C)).toBe("9007199254740993");
  });

  it("prints %#x of zero as 0 in C and as 0x0 in Linux's vsnprintf", () => {
    expect(render(compile("%#16x"), [0], C)).toBe("               0");
    expect(render(compile("%#16x"), [0], LINUX)).toBe("             0x0");
    expect(render(compile("%#16lx"), [0x3en], C)).toBe("            0x3e");
  });

  it("pads %-22s on the right and %16s on the left", () => {
    expect(render(compile("%-22s: %16s"), ["is resetting", "n"], C)).toBe("is resetting          :                n");
  });
});

describe("scan: reading a printed line back", () => {
  const t = compile("target:             %8d pages");

  it("recovers the unsigned value behind a negative %8d", () => {
    const result = scan(t, "target:             -2147483648 pages");
    expect(failed(result) ? result : result.values).toStrictEqual([2147483648n]);
  });

  it("refuses a line whose padding differs from what printf prints", () => {
    expect(failed(scan(t, "target:       40000 pages"))).toBe(true);
    expect(failed(scan(t, "target:             00040000 pages"))).toBe(true);
  });

  it("refuses a %8d value outside a signed 32-bit int, naming the conversion", () => {
    expect(scan(t, "target:             3000000000 pages")).toStrictEqual({ kind: "range", conversion: "%8d", text: "3000000000" });
  });

  it("refuses a %llu value of 2^64", () => {
    expect(scan(compile("%16llu"), "18446744073709551616")).toMatchObject({ kind: "range", conversion: "%16llu" });
  });

  it("tells how a zero %#x was printed", () => {
    expect(scan(compile("%#16x"), "               0")).toStrictEqual({ values: [0n], hexZero: "0" });
    expect(scan(compile("%#16x"), "             0x0")).toStrictEqual({ values: [0n], hexZero: "0x0" });
  });

  it("refuses a zero %#x printed unlike an earlier line's", () => {
    expect(failed(scan(compile("%#16x"), "             0x0", { hexZero: "0" }))).toBe(true);
  });
});
