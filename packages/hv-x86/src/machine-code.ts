/*
 * The machine code of the trampolines, as bytes (x86-64, System V calling
 * convention). Pure functions: nothing here maps or runs anything.
 *
 * Every trampoline saves and restores RBX (callee-saved in the System V ABI,
 * and CPUID and the backdoor both write it), and stores the four registers
 * EAX, EBX, ECX, EDX it ends with into a 16-byte block of memory whose address
 * is baked into the code: reading them back from JavaScript is then a typed
 * array read, not an out-parameter for koffi to marshal.
 */

/** `in eax, dx`: the backdoor instruction (a 32-bit read of the port in DX). */
export const IN_EAX_DX = 0xed;

/**
 * The four bytes where the backdoor instruction sits: `in eax, dx` and three
 * NOPs. The NOPs make room for {@link HARMLESS_SLOT}.
 */
export const BACKDOOR_SLOT: readonly number[] = [IN_EAX_DX, 0x90, 0x90, 0x90];

/**
 * What the test build of the same code has instead of `in eax, dx`:
 * `xchg eax, ebx; xchg ecx, edx; nop`. Harmless anywhere, and observable:
 * every input register comes back in a different output register, so a wrong
 * register in the marshalling shows.
 */
export const HARMLESS_SLOT: readonly number[] = [0x93, 0x87, 0xca, 0x90];

/** Byte offset of the backdoor slot in {@link backdoorCode}'s output. */
export const BACKDOOR_SLOT_OFFSET = 15;

/** Size in bytes of the register block a trampoline writes (EAX, EBX, ECX, EDX). */
export const REGISTER_BLOCK_SIZE = 16;

function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

function u64(value: number): number[] {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not an address: ${value}`);
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value), true);
  return [...bytes];
}

/** Register numbers in ModRM's reg field. */
const RAX = 0;
const RCX = 1;
const RDX = 2;
const RBX = 3;
const RSI = 6;

/**
 * `movabs r8, block`, then each register stored in turn at `[r8]`, `[r8+width]`, …
 * (`mov [r8+i*width], reg`: 32-bit with REX.B, 64-bit with REX.WB), then
 * `pop rbx; ret`.
 */
function storeRegistersAndReturn(block: number, registers: readonly number[], width: 4 | 8): number[] {
  const rex = width === 8 ? 0x49 : 0x41;
  const stores = registers.flatMap(
    (register, i) => (i === 0 ? [rex, 0x89, register << 3] : [rex, 0x89, 0x40 | (register << 3), i * width]), // mov [r8(+disp8)], reg
  );
  return [
    0x49,
    0xb8,
    ...u64(block), // movabs r8, block
    ...stores,
    0x5b, // pop rbx
    0xc3, // ret
  ];
}

/** EAX, EBX, ECX, EDX at `[r8]`, `[r8+4]`, `[r8+8]`, `[r8+12]`. */
const REGISTERS_32 = [RAX, RBX, RCX, RDX];

/** RAX, RBX, RCX, RDX, RSI at `[r8]`, `[r8+8]`, … `[r8+32]`. */
const REGISTERS_64 = [RAX, RBX, RCX, RDX, RSI];

/**
 * `uint32_t cpuid(uint32_t leaf, uint32_t subleaf)`: CPUID with EAX = leaf
 * and ECX = subleaf; returns EAX and stores EAX, EBX, ECX, EDX at `block`.
 */
export function cpuidCode(block: number): Uint8Array {
  return Uint8Array.from([
    0x53, // push rbx
    0x89,
    0xf8, // mov eax, edi   (leaf)
    0x89,
    0xf1, // mov ecx, esi   (subleaf)
    0x0f,
    0xa2, // cpuid
    ...storeRegistersAndReturn(block, REGISTERS_32, 4),
  ]);
}

export interface BackdoorCodeOptions {
  /** Magic in EAX (the balloon's 0x456c6d6f, or the backdoor's "VMXh"). */
  readonly magic: number;
  /** I/O port in DX (0x5670 for the balloon, 0x5658 for the backdoor). */
  readonly port: number;
  /** Address of the 16-byte register block the code writes. */
  readonly block: number;
  /** The test build: {@link HARMLESS_SLOT} where `in eax, dx` would be. */
  readonly harmless?: boolean;
}

/** `mov eax, magic; mov edx, port`, then `slot`: `in eax, dx` and its NOPs (or the test build's exchanges). */
function backdoorIn(options: BackdoorCodeOptions, slot: readonly number[]): number[] {
  return [
    0xb8,
    ...u32(options.magic), // mov eax, magic
    0xba,
    ...u32(options.port), // mov edx, port
    ...slot, // in eax, dx  (or the harmless instructions)
  ];
}

/**
 * `uint32_t call(uint32_t command, uint32_t argument)`: the seed's
 * `VMWARE_BALLOON_CMD` — EAX = magic, EBX = argument, ECX = command,
 * EDX = port, `in eax, dx` — then returns EAX (the status) and stores EAX,
 * EBX (the result), ECX, EDX at `block`. Magic and port are immediates, so a
 * call passes two arguments, not four.
 */
export function backdoorCode(options: BackdoorCodeOptions): Uint8Array {
  const slot = options.harmless ? HARMLESS_SLOT : BACKDOOR_SLOT;
  const code = Uint8Array.from([
    0x53, // push rbx
    0x89,
    0xf9, // mov ecx, edi   (command)
    0x89,
    0xf3, // mov ebx, esi   (argument)
    ...backdoorIn(options, slot),
    ...storeRegistersAndReturn(options.block, REGISTERS_32, 4),
  ]);
  return code;
}

/**
 * The four-byte slots of {@link backdoorCode} are too short for 64-bit
 * exchanges: today's driver's trampoline has six bytes there, `in eax, dx`
 * and five NOPs.
 */
export const BACKDOOR_SLOT_64: readonly number[] = [IN_EAX_DX, 0x90, 0x90, 0x90, 0x90, 0x90];

/**
 * The test build of {@link backdoorCode64}'s slot: `xchg rax, rbx; xchg rcx,
 * rdx; nop`, whole 64-bit registers, so that a 64-bit argument shows whole.
 */
export const HARMLESS_SLOT_64: readonly number[] = [0x48, 0x93, 0x48, 0x87, 0xca, 0x90];

/** Byte offset of the slot in {@link backdoorCode64}'s output. */
export const BACKDOOR_SLOT_64_OFFSET = 19;

/** Size in bytes of the register block {@link backdoorCode64} writes (RAX, RBX, RCX, RDX, RSI). */
export const REGISTER_BLOCK_64_SIZE = 40;

/**
 * `uint32_t call(uint32_t command, uint64_t argument, uint64_t argument2)`:
 * today's driver's `__vmballoon_cmd` — EAX = magic, RBX = argument, ECX =
 * command, EDX = port, RSI = argument2, `in eax, dx` — then returns EAX (the
 * status) and stores RAX, RBX (the result, 64-bit for 64-bit targets), RCX
 * (START's capabilities), RDX and RSI at `block`, 8 bytes each.
 */
export function backdoorCode64(options: BackdoorCodeOptions): Uint8Array {
  const slot = options.harmless ? HARMLESS_SLOT_64 : BACKDOOR_SLOT_64;
  return Uint8Array.from([
    0x53, // push rbx
    0x89,
    0xf9, // mov ecx, edi   (command)
    0x48,
    0x89,
    0xf3, // mov rbx, rsi   (argument)
    0x48,
    0x89,
    0xd6, // mov rsi, rdx   (argument2, before EDX takes the port)
    ...backdoorIn(options, slot),
    ...storeRegistersAndReturn(options.block, REGISTERS_64, 8),
  ]);
}
