import { constants } from "node:os";

/**
 * Machine codes of the failures this package expects. The CLI maps each to an
 * exit status (`packages/cli/src/errors.ts`); a library user can switch on it.
 */
export const HV_ERROR_CODES = {
  /** Not Linux x64, or koffi could not be loaded: there is no native layer here. */
  E_NATIVE_UNAVAILABLE: "E_NATIVE_UNAVAILABLE",
  /** CPUID does not say `VMwareVMware`: the backdoor would fault, so it is not used. */
  E_NOT_VMWARE: "E_NOT_VMWARE",
  /** The kernel refused to open an I/O port to this process (`ioperm`: needs CAP_SYS_RAWIO). */
  E_PORT_DENIED: "E_PORT_DENIED",
  /** The kernel cannot open I/O ports to a process at all (`ioperm` is not built in). */
  E_PORT_UNAVAILABLE: "E_PORT_UNAVAILABLE",
  /** `/proc/self/pagemap` hides frame numbers from this process (needs CAP_SYS_ADMIN). */
  E_FRAMES_HIDDEN: "E_FRAMES_HIDDEN",
  /** The page source was used after {@link LinuxPageSource.close}. */
  E_CLOSED: "E_CLOSED",
  /** The kernel has no memory pressure information (PSI: /proc/pressure/memory is missing), or its trigger broke. */
  E_NO_PRESSURE: "E_NO_PRESSURE",
} as const;

/** One of {@link HV_ERROR_CODES}. */
export type HvErrorCode = keyof typeof HV_ERROR_CODES;

/** An expected failure of the native layer, with a machine {@link HvErrorCode}. */
export class HvError extends Error {
  override readonly name = "HvError";
  constructor(
    readonly code: HvErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * A failed system call, shaped like Node's own (`fs`) errors: `code` such as
 * `"ENOMEM"`, a negative `errno`, and `syscall`; the message is
 * `"ENOMEM: Cannot allocate memory, mlock"`.
 */
export class SystemCallError extends Error {
  override readonly name = "SystemCallError";
  /** The errno's name, such as `"EPERM"` (`"E<number>"` when the name is unknown). */
  readonly code: string;
  /** Negative, as Node's errors have it. */
  readonly errno: number;
  constructor(
    readonly syscall: string,
    errno: number,
    description: string,
  ) {
    const code = errnoName(errno);
    super(`${code}: ${description}, ${syscall}`);
    this.code = code;
    this.errno = -errno;
  }
}

let namesByNumber: Map<number, string> | undefined;

/** The name of an errno number, such as `"ENOSYS"` for 38 on Linux. */
export function errnoName(errno: number): string {
  if (namesByNumber === undefined) {
    namesByNumber = new Map();
    for (const [name, number] of Object.entries(constants.errno)) {
      // EWOULDBLOCK is EAGAIN and EDEADLOCK is EDEADLK: keep the first, usual name.
      if (!namesByNumber.has(number)) namesByNumber.set(number, name);
    }
  }
  return namesByNumber.get(errno) ?? `E${errno}`;
}
