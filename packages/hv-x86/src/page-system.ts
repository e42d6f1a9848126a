/*
 * The page source's seam to the kernel: every system call it makes, behind
 * one interface ({@link PageSystem}) that tests replace in part to make the
 * kernel refuse, and the real calls (libc through koffi, and reads of
 * /proc/self/pagemap and /proc/vmstat).
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { SystemCallError } from "./errors.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, SYS_IO_URING_REGISTER, SYS_IO_URING_SETUP, SYS_MEMFD_SECRET, native } from "./native.js";

/**
 * The system calls of the page source: libc's, io_uring's, and reads of
 * /proc/self/pagemap. Each returns what libc does (-1 on failure, the cause
 * in {@link errno}). Tests pass some of them in `PageSourceOptions.system`
 * to make the kernel refuse.
 */
export interface PageSystem {
  mmap(address: number, length: number, protection: number, flags: number, fd: number, offset: number): number;
  munmap(address: number, length: number): number;
  mlock(address: number, length: number): number;
  munlock(address: number, length: number): number;
  madvise(address: number, length: number, advice: number): number;
  /** `memfd_secret(flags)`: a file descriptor, or -1. */
  memfdSecret(flags: number): number;
  ftruncate(fd: number, length: number): number;
  close(fd: number): number;
  /** Faults [address, address + length) in, zeroed, by reading /dev/zero into it: bytes read, or -1. */
  fill(address: number, length: number): number;
  /** `io_uring_setup(entries, params)` with zeroed parameters: the ring's file descriptor, or -1. */
  ringSetup(entries: number): number;
  /** `IORING_REGISTER_BUFFERS2` with `IORING_RSRC_REGISTER_SPARSE`: an empty table of `slots` fixed buffers. 0, or -1. */
  ringSparse(ring: number, slots: number): number;
  /**
   * `IORING_REGISTER_BUFFERS_UPDATE` of one slot: pins [address, address +
   * length) as its buffer (faulting the pages in), or with `length` 0 clears
   * the slot (unpinning what it held). 1 (slots updated), or -1.
   */
  ringUpdate(ring: number, slot: number, address: number, length: number): number;
  /** `IORING_UNREGISTER_BUFFERS`: clears every slot of the ring at once, its pins dropped now (closing a ring drops them later, from a kernel worker). 0, or -1. */
  ringUnregister(ring: number): number;
  /** Reads /proc/self/pagemap at `position` into `buffer`: bytes read, or -1. */
  readPagemap(buffer: Uint8Array, length: number, position: number): number;
  /** The kernel's count of pages migrated so far (`pgmigrate_success` in /proc/vmstat), or -1 when unknown. */
  migratedPages(): number;
  /** The errno of the call that failed last. */
  errno(): number;
  /** RLIMIT_MEMLOCK's soft limit in bytes (Infinity: unlimited), and whether this process has CAP_IPC_LOCK (which lifts it). */
  memlock(): { limitBytes: number; capIpcLock: boolean };
  /** Huge pages free in the hugetlb pool of the default size (HugePages_Free), 0 without a pool. */
  hugePagesFree(): number;
}

// <linux/io_uring.h>
const IORING_UNREGISTER_BUFFERS = 1;
const IORING_REGISTER_BUFFERS2 = 15;
const IORING_REGISTER_BUFFERS_UPDATE = 16;
const IORING_RSRC_REGISTER_SPARSE = 1;
/** sizeof(struct io_uring_rsrc_register) and sizeof(struct io_uring_rsrc_update2): the size argument of both registrations. */
const RSRC_STRUCT_BYTES = 32;
// Where the structures sit in the page of scratch memory the calls share.
const PARAMS_AT = 0; // struct io_uring_params: 120 bytes
const REGISTER_AT = 128; // struct io_uring_rsrc_register
const UPDATE_AT = 160; // struct io_uring_rsrc_update2
const IOVEC_AT = 192; // struct iovec { base, length }

/** A 64-bit little-endian field from a number below 2^53 (an address or a length), without a BigInt. */
function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

/** The real system calls. */
export function realSystem(pagemap: number, zero: number, vmstat: number | undefined): PageSystem {
  const { koffi, libc } = native();
  const text = Buffer.alloc(16384);
  // One page of memory the kernel reads the io_uring structures from, mapped on first use.
  let scratch = 0;
  let view: DataView | undefined;
  const structures = (): DataView => {
    if (view !== undefined) return view;
    scratch = libc.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch === -1) throw new SystemCallError("mmap", koffi.errno(), libc.strerror(koffi.errno()));
    return (view = new DataView(koffi.view(BigInt(scratch), 4096)));
  };
  return {
    migratedPages() {
      if (vmstat === undefined) return -1;
      try {
        const length = readSync(vmstat, text, 0, text.length, 0);
        const at = text.indexOf("\npgmigrate_success ");
        if (at === -1 || at >= length) return -1;
        return Number.parseInt(text.toString("latin1", at + 20, Math.min(length, at + 44)), 10);
      } catch {
        return -1;
      }
    },
    mmap: (address, length, protection, flags, fd, offset) => libc.mmap(address, length, protection, flags, fd, offset),
    munmap: (address, length) => libc.munmap(address, length),
    mlock: (address, length) => libc.mlock(address, length),
    munlock: (address, length) => libc.munlock(address, length),
    madvise: (address, length, advice) => libc.madvise(address, length, advice),
    memfdSecret: (flags) => libc.syscall1(SYS_MEMFD_SECRET, flags),
    ftruncate: (fd, length) => libc.ftruncate(fd, length),
    close: (fd) => libc.close(fd),
    fill: (address, length) => libc.read(zero, address, length),
    ringSetup(entries) {
      const v = structures();
      for (let at = PARAMS_AT; at < PARAMS_AT + 120; at += 4) v.setUint32(at, 0, true);
      return libc.syscall4(SYS_IO_URING_SETUP, entries, scratch + PARAMS_AT, 0, 0);
    },
    ringSparse(ring, slots) {
      const v = structures();
      v.setUint32(REGISTER_AT, slots, true); // nr
      v.setUint32(REGISTER_AT + 4, IORING_RSRC_REGISTER_SPARSE, true); // flags
      v.setBigUint64(REGISTER_AT + 8, 0n, true); // resv2
      v.setBigUint64(REGISTER_AT + 16, 0n, true); // data: none, the table starts empty
      v.setBigUint64(REGISTER_AT + 24, 0n, true); // tags
      return libc.syscall4(SYS_IO_URING_REGISTER, ring, IORING_REGISTER_BUFFERS2, scratch + REGISTER_AT, RSRC_STRUCT_BYTES);
    },
    ringUpdate(ring, slot, address, length) {
      const v = structures();
      setU64(v, IOVEC_AT, address);
      setU64(v, IOVEC_AT + 8, length);
      v.setUint32(UPDATE_AT, slot, true); // offset
      v.setUint32(UPDATE_AT + 4, 0, true); // resv
      setU64(v, UPDATE_AT + 8, scratch + IOVEC_AT); // data: the iovec
      setU64(v, UPDATE_AT + 16, 0); // tags
      v.setUint32(UPDATE_AT + 24, 1, true); // nr
      v.setUint32(UPDATE_AT + 28, 0, true); // resv2
      return libc.syscall4(SYS_IO_URING_REGISTER, ring, IORING_REGISTER_BUFFERS_UPDATE, scratch + UPDATE_AT, RSRC_STRUCT_BYTES);
    },
    ringUnregister: (ring) => libc.syscall4(SYS_IO_URING_REGISTER, ring, IORING_UNREGISTER_BUFFERS, 0, 0),
    readPagemap(buffer, length, position) {
      try {
        return readSync(pagemap, buffer, 0, length, position);
      } catch {
        return -1;
      }
    },
    errno: () => koffi.errno(),
    memlock: () => ({ limitBytes: memlockLimit(), capIpcLock: hasCapability(CAP_IPC_LOCK) }),
    hugePagesFree() {
      try {
        return Number(/^HugePages_Free:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
      } catch {
        return 0;
      }
    },
  };
}

/** The files the real calls read (/proc/self/pagemap, /dev/zero, /proc/vmstat), and the calls. */
export class SystemFiles {
  private constructor(
    private readonly pagemap: number,
    private readonly zero: number,
    private readonly vmstat: number | undefined,
    readonly system: PageSystem,
  ) {}

  /** Opens the files; the real calls, with `overrides` in their place where given. */
  static open(overrides: Partial<PageSystem> | undefined): SystemFiles {
    const pagemap = openSync("/proc/self/pagemap", "r");
    let zero: number;
    try {
      zero = openSync("/dev/zero", "r");
    } catch (error) {
      closeSync(pagemap);
      throw error;
    }
    let vmstat: number | undefined;
    try {
      vmstat = openSync("/proc/vmstat", "r");
    } catch {
      vmstat = undefined; // then every frame check reads pagemap
    }
    return new SystemFiles(pagemap, zero, vmstat, withOverrides(realSystem(pagemap, zero, vmstat), overrides));
  }

  close(): void {
    closeSync(this.zero);
    if (this.vmstat !== undefined) closeSync(this.vmstat);
    closeSync(this.pagemap);
  }
}

/** The real calls, each replaced by the given object's method of the same name where it has one (a class instance too). */
export function withOverrides(real: PageSystem, given: Partial<PageSystem> | undefined): PageSystem {
  if (given === undefined) return real;
  const system = { ...real } as Record<string, unknown>;
  for (const name of Object.keys(real) as (keyof PageSystem)[]) {
    const method = given[name];
    if (typeof method === "function") system[name] = method.bind(given);
  }
  return system as unknown as PageSystem;
}

/** The error of the call through `system` that just failed. */
export function systemError(system: PageSystem, syscall: string): SystemCallError {
  const errno = system.errno();
  return new SystemCallError(syscall, errno, native().libc.strerror(errno));
}

/** Whether this process has a capability now (CapEff of /proc/self/status). */
function hasCapability(bit: number): boolean {
  try {
    const match = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return match !== null && ((BigInt(`0x${match[1]}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}
const CAP_IPC_LOCK = 14;

/** RLIMIT_MEMLOCK's soft limit in bytes (Infinity when unlimited), from /proc/self/limits. */
function memlockLimit(): number {
  try {
    const match = /^Max locked memory\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return match === null || match[1] === "unlimited" ? Infinity : Number(match[1]);
  } catch {
    return Infinity;
  }
}
