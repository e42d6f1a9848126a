/*
 * The guarded door to koffi and libc. Nothing here runs at import: the
 * platform is checked, koffi is loaded and libc's functions are bound on first
 * use, once. On any platform but Linux x64 the package still imports, and
 * every native entry point throws HvError E_NATIVE_UNAVAILABLE.
 */
import { createRequire } from "node:module";
import { HvError, SystemCallError } from "./errors.js";

type Koffi = typeof import("koffi").default;

/**
 * The libc functions the package uses. Addresses are plain numbers
 * (`uintptr_t`): user-space addresses on x64 stay below 2^47, exact in a
 * double, and numbers spare the BigInt conversions on the page source's paths.
 */
export interface Libc {
  /** Returns the address, or -1 (MAP_FAILED). */
  mmap(address: number, length: number, protection: number, flags: number, fd: number, offset: number): number;
  munmap(address: number, length: number): number;
  mprotect(address: number, length: number, protection: number): number;
  mlock(address: number, length: number): number;
  munlock(address: number, length: number): number;
  madvise(address: number, length: number, advice: number): number;
  /** `syscall(number, arg)`: one-argument system calls glibc has no wrapper for (memfd_secret). */
  syscall1(number: number, argument: number): number;
  /** `syscall(number, a, b, c, d)`: io_uring_setup and io_uring_register, with addresses as numbers. */
  syscall4(number: number, a: number, b: number, c: number, d: number): number;
  ftruncate(fd: number, length: number): number;
  close(fd: number): number;
  /** `read(2)` into memory at an address: bytes read, or -1. */
  read(fd: number, address: number, length: number): number;
  ioperm(from: number, count: number, turnOn: number): number;
  prctl(option: number, arg2: number, arg3: number, arg4: number, arg5: number): number;
  strerror(errno: number): string;
  /** `poll(2)` on an array of `struct pollfd` (8 bytes each: fd, events, revents) in `fds`: ready descriptors, 0, or -1. */
  poll(fds: Uint8Array, count: number, timeoutMs: number): number;
}

export interface Native {
  readonly koffi: Koffi;
  readonly libc: Libc;
}

// Linux x64 values of <sys/mman.h> and <sys/prctl.h>.
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_HUGETLB = 0x40000;
export const MADV_DONTNEED = 4;
export const MADV_DONTFORK = 10;
export const MADV_UNMERGEABLE = 13;
export const MADV_NOHUGEPAGE = 15;
export const MADV_DONTDUMP = 16;
export const PR_SET_DUMPABLE = 4;
/** memfd_secret(2)'s system call number on x86-64 (Linux 5.14). */
export const SYS_MEMFD_SECRET = 447;
/** io_uring_setup(2) and io_uring_register(2) on x86-64 (Linux 5.1). */
export const SYS_IO_URING_SETUP = 425;
export const SYS_IO_URING_REGISTER = 427;

let cached: Native | undefined;
let unavailable: HvError | undefined;

/** Why the native layer cannot work here, or undefined when it can (without loading it). */
function platformProblem(): string | undefined {
  if (process.platform !== "linux" || process.arch !== "x64") {
    return `the native layer (CPUID, the VMware backdoor, the Linux page source) works on Linux x64 only, not on ${process.platform}-${process.arch}`;
  }
  return undefined;
}

/**
 * koffi and libc, loaded on first use and cached. Throws HvError
 * E_NATIVE_UNAVAILABLE off Linux x64 or when koffi cannot be loaded.
 */
export function native(): Native {
  if (cached !== undefined) return cached;
  if (unavailable !== undefined) throw unavailable;

  const problem = platformProblem();
  if (problem !== undefined) throw (unavailable = new HvError("E_NATIVE_UNAVAILABLE", problem));

  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)("koffi") as Koffi;
  } catch (error) {
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw (unavailable = new HvError("E_NATIVE_UNAVAILABLE", `the native layer needs koffi, which did not load: ${why}`, { cause: error }));
  }

  const lib = koffi.load("libc.so.6");
  const libc: Libc = {
    mmap: lib.func("intptr_t mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)"),
    munmap: lib.func("int munmap(uintptr_t addr, size_t length)"),
    mprotect: lib.func("int mprotect(uintptr_t addr, size_t length, int prot)"),
    mlock: lib.func("int mlock(uintptr_t addr, size_t length)"),
    munlock: lib.func("int munlock(uintptr_t addr, size_t length)"),
    madvise: lib.func("int madvise(uintptr_t addr, size_t length, int advice)"),
    // Declared with one fixed argument: on x86-64 a variadic call passes integers as a fixed one does, and glibc's syscall() reads registers.
    syscall1: lib.func("long syscall(long number, long argument)"),
    syscall4: lib.func("long syscall(long number, long a, long b, long c, long d)"),
    ftruncate: lib.func("int ftruncate(int fd, int64_t length)"),
    close: lib.func("int close(int fd)"),
    read: lib.func("intptr_t read(int fd, uintptr_t buffer, size_t count)"),
    ioperm: lib.func("int ioperm(unsigned long from, unsigned long num, int turn_on)"),
    prctl: lib.func("int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)"),
    strerror: lib.func("const char *strerror(int errnum)"),
    poll: lib.func("int poll(void *fds, unsigned long nfds, int timeout)"),
  };
  cached = { koffi, libc };
  return cached;
}

/** Whether the native layer can be used here; loads it (koffi) to find out. */
export function nativeAvailable(): boolean {
  try {
    native();
    return true;
  } catch (error) {
    if (error instanceof HvError) return false;
    throw error;
  }
}

/** The error of the libc call that just failed, as a Node-style error with `code` and `syscall`. */
export function lastError(syscall: string): SystemCallError {
  const { koffi, libc } = native();
  const errno = koffi.errno();
  return new SystemCallError(syscall, errno, libc.strerror(errno));
}
