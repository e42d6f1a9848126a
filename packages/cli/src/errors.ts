/**
 * Exit statuses (DESIGN.md) and the one place that maps errors to them.
 * Libraries throw errors with a machine `code`; this table decides what a
 * user sees. Nothing else in the CLI calls `process.exit` with a number.
 */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** Failed while running. */
  FAILURE: 1,
  /** Bad usage or bad input. */
  USAGE: 2,
  /** The service is not there: not a VMware guest, no backdoor, the kernel's driver owns the balloon. */
  UNAVAILABLE: 69,
  /** Try again later: another `vmballoon run` owns the balloon (EX_TEMPFAIL). */
  TEMPFAIL: 75,
  /** Not permitted (needs root or a capability). */
  NO_PERMISSION: 77,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/** An expected failure of the CLI: a message for the user and an exit status. */
export class CliError extends Error {
  override readonly name: string = "CliError";
  constructor(
    message: string,
    readonly exitStatus: ExitStatus,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Bad usage: an unknown command or flag, a bad flag value. */
export class UsageError extends CliError {
  override readonly name = "UsageError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT.USAGE, options);
  }
}

/** Exit statuses of errors thrown by the libraries, by their `code`. */
const BY_CODE: Readonly<Record<string, ExitStatus>> = {
  // @vmballoon/core/sim: a scenario that breaks a rule of SIMULATION.md.
  E_SCENARIO: EXIT.USAGE,
  // @vmballoon/core/sim: a file that is not a whole trace.
  E_TRACE: EXIT.USAGE,
  // @vmballoon/host: a policy round's input that breaks a rule of HOST.md.
  E_POLICY_INPUT: EXIT.USAGE,
  // @vmballoon/stats: a vmmemctl text that no driver would print.
  E_STATS_PARSE: EXIT.USAGE,
  // vmballoon stats: the kernel's vmmemctl is not there (no VMware guest, no driver, no debugfs) or is root's only.
  E_NO_VMMEMCTL: EXIT.UNAVAILABLE,
  E_VMMEMCTL_DENIED: EXIT.NO_PERMISSION,
  // @vmballoon/hv-x86: the native layer, the backdoor and the page source.
  /** Not Linux x64, or koffi did not load. */
  E_NATIVE_UNAVAILABLE: EXIT.UNAVAILABLE,
  /** CPUID does not say VMwareVMware: no balloon port to talk to. */
  E_NOT_VMWARE: EXIT.UNAVAILABLE,
  /** ioperm refused for the balloon port: needs CAP_SYS_RAWIO. */
  E_PORT_DENIED: EXIT.NO_PERMISSION,
  /** The kernel has no ioperm: the balloon port cannot be reached from user mode. */
  E_PORT_UNAVAILABLE: EXIT.UNAVAILABLE,
  /** /proc/self/pagemap hides frame numbers: needs CAP_SYS_ADMIN. */
  E_FRAMES_HIDDEN: EXIT.NO_PERMISSION,
  /** No PSI in this kernel (/proc/pressure/memory missing), for run --shrinker. */
  E_NO_PRESSURE: EXIT.UNAVAILABLE,
  // Node's file system, for files the user named.
  ENOENT: EXIT.USAGE,
  EISDIR: EXIT.USAGE,
  ENOTDIR: EXIT.USAGE,
  ELOOP: EXIT.USAGE,
  ENAMETOOLONG: EXIT.USAGE,
  EACCES: EXIT.NO_PERMISSION,
  EPERM: EXIT.NO_PERMISSION,
  EROFS: EXIT.FAILURE,
  ENOSPC: EXIT.FAILURE,
};

/** The exit status for an error, or undefined when it is not an expected failure (a bug). */
export function exitStatusOf(error: unknown): ExitStatus | undefined {
  if (error instanceof CliError) return error.exitStatus;
  if (error instanceof Error) {
    // cac's own errors: unknown option, missing value.
    if (error.name === "CACError") return EXIT.USAGE;
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && Object.hasOwn(BY_CODE, code)) return BY_CODE[code];
  }
  return undefined;
}

/** Reasons for the file-system errors a user is most likely to meet, in their own words. */
const FILE_ERROR_REASONS: Readonly<Record<string, string>> = {
  ENOENT: "no such file or directory",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
};

/**
 * A file-system error as one line: what was being done, to which file, and
 * why. Any error of the system (one with an errno code, such as EIO from
 * `/proc/self/mem` or ELOOP from a loop of links) is described, with the
 * system's own words where the table above has none; anything else is
 * returned as it is.
 */
export function describeFileError(error: unknown, doing: string, file: string): unknown {
  if (error instanceof CliError || !(error instanceof Error)) return error;
  const { code, errno } = error as NodeJS.ErrnoException;
  if (typeof code !== "string" || typeof errno !== "number") return error;
  // Node's message: "EIO: i/o error, read" or "ELOOP: too many symbolic links encountered, open '…'".
  const why = FILE_ERROR_REASONS[code] ?? /^[A-Z0-9_]+: ([^,]+)/.exec(error.message)?.[1] ?? code;
  return new CliError(`cannot ${doing} ${file}: ${why}`, exitStatusOf(error) ?? EXIT.FAILURE, { cause: error });
}
