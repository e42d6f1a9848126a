/*
 * Trampolines: machine code written into a fresh anonymous page, then made
 * read+execute (never writable and executable at once), and called through
 * koffi. Each trampoline has its own register block in a separate read+write
 * page, read from JavaScript through a koffi view.
 */
import { BACKDOOR_MAGIC, BACKDOOR_PORT, HV_MAGIC, HV_PORT } from "@vmballoon/protocol";
import { REGISTER_BLOCK_64_SIZE, REGISTER_BLOCK_SIZE, backdoorCode, backdoorCode64, cpuidCode } from "./machine-code.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE, lastError, native } from "./native.js";

const PAGE = 4096;

/** The four registers a trampoline ended with. */
export interface Registers {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

interface Trampoline<F> {
  readonly fn: F;
  /** EAX, EBX, ECX, EDX as the code left them; rewritten by every call. */
  readonly registers: Uint32Array;
}

/** Maps a read+write page for register blocks. */
function dataPage(): { address: number; view: ArrayBuffer } {
  const { koffi, libc } = native();
  const address = libc.mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address === -1) throw lastError("mmap");
  return { address, view: koffi.view(BigInt(address), PAGE) };
}

/**
 * Writes `code` into a new page, makes it read+execute, and returns it as a
 * function of type `prototype`. The page is never writable and executable at
 * once; it lives as long as the process (trampolines are few and cached).
 */
export function codePage<F>(code: Uint8Array, prototype: string): { fn: F; address: number } {
  const { koffi, libc } = native();
  if (code.length > PAGE) throw new RangeError("a trampoline fits in one page");
  const address = libc.mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address === -1) throw lastError("mmap");
  new Uint8Array(koffi.view(BigInt(address), PAGE)).set(code);
  if (libc.mprotect(address, PAGE, PROT_READ | PROT_EXEC) !== 0) {
    const error = lastError("mprotect");
    libc.munmap(address, PAGE);
    throw error;
  }
  return { fn: koffi.decode(BigInt(address), koffi.proto(prototype)) as F, address };
}

let blocks: { address: number; view: ArrayBuffer; used: number } | undefined;

/** A fresh register block of `size` bytes (16 by default: four 32-bit registers). */
function registerBlock(size = REGISTER_BLOCK_SIZE): { address: number; registers: Uint32Array } {
  if (blocks === undefined || blocks.used + size > PAGE) blocks = { ...dataPage(), used: 0 };
  const offset = blocks.used;
  blocks.used += size;
  return { address: blocks.address + offset, registers: new Uint32Array(blocks.view, offset, size / 4) };
}

type CpuidFunction = (leaf: number, subleaf: number) => number;
let cpuidTrampoline: Trampoline<CpuidFunction> | undefined;

/**
 * CPUID, run for real through a trampoline: EAX = `leaf`, ECX = `subleaf`.
 * Works on every x64 machine (under a hypervisor it traps to it, which costs
 * microseconds: call it to detect, not in a loop).
 */
export function cpuid(leaf: number, subleaf = 0): Registers {
  if (cpuidTrampoline === undefined) {
    const { address, registers } = registerBlock();
    cpuidTrampoline = {
      fn: codePage<CpuidFunction>(cpuidCode(address), "uint32_t vmballoon_cpuid(uint32_t leaf, uint32_t subleaf)").fn,
      registers,
    };
  }
  const { fn, registers } = cpuidTrampoline;
  fn(leaf >>> 0, subleaf >>> 0);
  return { eax: registers[0]!, ebx: registers[1]!, ecx: registers[2]!, edx: registers[3]! };
}

/**
 * One backdoor command: `call(command, argument)` returns EAX (the status);
 * `registers` then holds EAX, EBX (the result), ECX and EDX.
 */
export interface BackdoorCall {
  readonly call: (command: number, argument: number) => number;
  readonly registers: Uint32Array;
  /** Where the code is. */
  readonly address: number;
}

const backdoors = new Map<string, BackdoorCall>();

export interface BackdoorCallOptions {
  readonly magic: number;
  readonly port: number;
  /** The test build: a harmless instruction instead of `in eax, dx`. */
  readonly harmless?: boolean;
}

/**
 * A trampoline for the backdoor on `port` with `magic`, cached. Building it
 * executes nothing; calling the real one (not `harmless`) executes `in eax,
 * dx`, which faults and kills the process anywhere but on VMware (or a
 * monitor that emulates it, such as QEMU's vmport). Callers check first.
 */
export function backdoorCall(options: BackdoorCallOptions): BackdoorCall {
  const key = `${options.magic}:${options.port}:${options.harmless === true}`;
  let trampoline = backdoors.get(key);
  if (trampoline === undefined) {
    const { address, registers } = registerBlock();
    const code = backdoorCode({ magic: options.magic, port: options.port, block: address, harmless: options.harmless === true });
    const { fn: call, address: codeAddress } = codePage<(command: number, argument: number) => number>(
      code,
      `uint32_t vmballoon_backdoor_${backdoors.size}(uint32_t command, uint32_t argument)`,
    );
    trampoline = { call, registers, address: codeAddress };
    backdoors.set(key, trampoline);
  }
  return trampoline;
}

/**
 * One command of today's driver: `call(command, argument, argument2)`
 * returns EAX (the status); `registers` then holds RAX, RBX (the result),
 * RCX (START's capabilities), RDX and RSI, each as two 32-bit words, low
 * first ({@link register64} reads one).
 */
export interface BackdoorCall64 {
  readonly call: (command: number, argument: number, argument2: number) => number;
  readonly registers: Uint32Array;
  /** Where the code is. */
  readonly address: number;
}

/** Index of each register of {@link BackdoorCall64.registers}, in 64-bit words. */
export const REGISTER_64 = { rax: 0, rbx: 1, rcx: 2, rdx: 3, rsi: 4 } as const;

/** A 64-bit register of a {@link BackdoorCall64}'s block as a number (exact up to 2^53). */
export function register64(registers: Uint32Array, register: keyof typeof REGISTER_64): number {
  const at = REGISTER_64[register] * 2;
  return registers[at + 1]! * 4294967296 + registers[at]!;
}

const backdoors64 = new Map<string, BackdoorCall64>();

/**
 * The trampoline of today's driver for the backdoor on `port` with `magic`,
 * cached: a second argument in RSI, 64-bit arguments, and ECX back (START's
 * answer). The same rules as {@link backdoorCall}: the real one executes `in
 * eax, dx`.
 */
export function backdoorCall64(options: BackdoorCallOptions): BackdoorCall64 {
  const key = `${options.magic}:${options.port}:${options.harmless === true}`;
  let trampoline = backdoors64.get(key);
  if (trampoline === undefined) {
    const { address, registers } = registerBlock(REGISTER_BLOCK_64_SIZE);
    const code = backdoorCode64({ magic: options.magic, port: options.port, block: address, harmless: options.harmless === true });
    const { fn: call, address: codeAddress } = codePage<(command: number, argument: number, argument2: number) => number>(
      code,
      `uint32_t vmballoon_backdoor64_${backdoors64.size}(uint32_t command, uint64_t argument, uint64_t argument2)`,
    );
    trampoline = { call, registers, address: codeAddress };
    backdoors64.set(key, trampoline);
  }
  return trampoline;
}

/** The balloon's port and magic (0x5670, 0x456c6d6f). */
export const BALLOON = { magic: HV_MAGIC, port: HV_PORT } as const;
/** The general backdoor's port and magic (0x5658, "VMXh"). */
export const BACKDOOR = { magic: BACKDOOR_MAGIC, port: BACKDOOR_PORT } as const;
