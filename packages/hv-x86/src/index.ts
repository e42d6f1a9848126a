/**
 * The VMware balloon's x86 side, through koffi: CPUID, the backdoor call, and
 * real Linux guest pages — the implementations of `@vmballoon/core`'s
 * `Hypervisor` and `PageSource` ports for a real guest.
 *
 * Linux x64 only. Anywhere else this module still imports, and every native
 * entry point throws `HvError` with code `E_NATIVE_UNAVAILABLE`. Nothing
 * native is loaded until first use.
 *
 * @packageDocumentation
 */
export { BalloonHypervisor, ModernBalloonHypervisor } from "./balloon-port.js";
export type { BalloonPortSources, PortOpener } from "./balloon-port.js";
export { KERNEL_BALLOON_DRIVERS, VMWARE_SIGNATURE, detect, filesUnder, loadedBalloonDriver, readText } from "./detect.js";
export type { BackdoorVersion, Detection, FileSources, KernelBalloonDriver } from "./detect.js";
export { hex } from "./hex.js";
export { HV_ERROR_CODES, HvError, SystemCallError } from "./errors.js";
export type { HvErrorCode } from "./errors.js";
export { nativeAvailable } from "./native.js";
export { isHeld, tryLock } from "./lock.js";
export type { HeldLock, LockTaken } from "./lock.js";
export { LinuxPageSource } from "./page-source.js";
export type { MovedPage, PageMemory, PageSourceOptions, PageSystem } from "./page-source.js";
export { parseMeminfo } from "./meminfo.js";
export type { CgroupLevel, MemoryFigures } from "./meminfo.js";
export { probeBackdoor, probeBalloon } from "./probe.js";
export type { ProbeOptions, ProbeResult } from "./probe.js";
export { cpuid } from "./trampolines.js";
export type { Registers } from "./trampolines.js";
export { DEFAULT_PRESSURE_TRIGGER, MEMORY_PRESSURE_FILE, MemoryPressure, checkPressureTrigger } from "./pressure.js";
export type { PressureSystem } from "./pressure.js";
export { balloonFramesOf, lockedFramesOf } from "./locked-frames.js";
