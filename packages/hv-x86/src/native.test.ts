import { describe, expect, it, vi } from "vitest";
import { SystemCallError, errnoName, type HvError } from "./errors.js";
import { lastError, native } from "./native.js";

const linuxX64 = process.platform === "linux" && process.arch === "x64";

describe("the native layer's door", () => {
  it("the package imports on another platform, and says plainly that the native layer is unavailable", async () => {
    const arch = Object.getOwnPropertyDescriptor(process, "arch")!;
    Object.defineProperty(process, "arch", { ...arch, value: "arm64" });
    try {
      vi.resetModules();
      const hv = await import("./index.js");
      expect(hv.nativeAvailable()).toBe(false);
      for (const attempt of [() => hv.detect(), () => hv.cpuid(0), () => hv.LinuxPageSource.open(), () => hv.BalloonHypervisor.open()]) {
        expect(attempt).toThrow(hv.HvError);
        expect(attempt).toThrow(/works on Linux x64 only, not on linux-arm64/);
        try {
          attempt();
        } catch (error) {
          expect((error as HvError).code).toBe("E_NATIVE_UNAVAILABLE");
        }
      }
    } finally {
      Object.defineProperty(process, "arch", arch);
      vi.resetModules();
    }
  });

  it.skipIf(!linuxX64)("loads once and caches the bindings (needs Linux on x86-64)", () => {
    expect(native()).toBe(native());
  });

  it.skipIf(!linuxX64)("turns errno into a Node-style error with code, negative errno and syscall (needs Linux on x86-64)", () => {
    const { libc } = native();
    expect(libc.mprotect(1, 4096, 1)).toBe(-1); // an unaligned address: EINVAL
    const error = lastError("mprotect");
    expect(error).toBeInstanceOf(SystemCallError);
    expect(error).toMatchObject({ code: "EINVAL", errno: -22, syscall: "mprotect", message: "EINVAL: Invalid argument, mprotect" });
  });

  it("names errno numbers as Node does, and unknown ones plainly", () => {
    expect(errnoName(1)).toBe("EPERM");
    expect(errnoName(11)).toBe("EAGAIN");
    expect(errnoName(9999)).toBe("E9999");
  });
});
