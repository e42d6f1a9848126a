/*
 * The userspace stand-in for the kernel's shrinker: a PSI trigger on
 * /proc/pressure/memory (Documentation/accounting/psi.rst). A trigger
 * `some|full THRESHOLD WINDOW` (microseconds) makes the kernel raise POLLPRI
 * on the file descriptor when tasks stalled on memory for THRESHOLD within
 * WINDOW. Node has no watcher for POLLPRI, so the runner asks: `poll(2)` with
 * a timeout of 0, through koffi, once a cycle and every few milliseconds
 * between cycles. No thread, no native add-on; one system call a check.
 */
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { HvError, SystemCallError } from "./errors.js";
import { native } from "./native.js";

/** 150 ms of stall in 2 s: a window of 2 s is the shortest the kernel allows without CAP_SYS_RESOURCE (any multiple of 2 s). */
export const DEFAULT_PRESSURE_TRIGGER = "some 150000 2000000";
/** Where the whole machine's memory pressure is. */
export const MEMORY_PRESSURE_FILE = "/proc/pressure/memory";

const POLLPRI = 0x2;
const POLLERR = 0x8;

/** What {@link MemoryPressure} needs from the system (tests replace it). */
export interface PressureSystem {
  /** Opens the file O_RDWR | O_NONBLOCK: a descriptor; throws as `fs.openSync`. */
  open(path: string): number;
  /** Writes the trigger (NUL-terminated, as the kernel wants it); throws as `fs.writeSync`. */
  write(fd: number, trigger: string): void;
  /** `poll` with a timeout of 0 for POLLPRI: the revents, 0 when nothing, -1 when poll failed. */
  poll(fd: number): number;
  close(fd: number): void;
}

const realSystem = (): PressureSystem => {
  const { libc } = native();
  const fds = new Uint8Array(8);
  const view = new DataView(fds.buffer);
  return {
    open: (path) => openSync(path, constants.O_RDWR | constants.O_NONBLOCK),
    write: (fd, trigger) => void writeSync(fd, Buffer.from(`${trigger}\0`, "latin1")),
    poll(fd) {
      view.setInt32(0, fd, true);
      view.setInt16(4, POLLPRI, true);
      view.setInt16(6, 0, true);
      const ready = libc.poll(fds, 1, 0);
      return ready < 0 ? -1 : ready === 0 ? 0 : view.getInt16(6, true);
    },
    close: (fd) => closeSync(fd),
  };
};

/**
 * Checks a PSI trigger for the kernel's syntax and limits: `some` or `full`,
 * then the threshold and the window in microseconds, the window from 500 ms
 * to 10 s and the threshold from 1 µs to the window. The reason it is not
 * one, or undefined.
 */
export function checkPressureTrigger(trigger: string): string | undefined {
  const match = /^(some|full) (\d{1,9}) (\d{1,9})$/.exec(trigger);
  if (match === null) return "a PSI trigger is 'some|full THRESHOLD_US WINDOW_US', such as 'some 150000 2000000'";
  const threshold = Number(match[2]);
  const window = Number(match[3]);
  if (window < 500_000 || window > 10_000_000) return `the window must be from 500000 to 10000000 microseconds, not ${window}`;
  if (threshold < 1 || threshold > window) return `the threshold must be from 1 microsecond to the window (${window}), not ${threshold}`;
  return undefined;
}

/**
 * A PSI trigger on the machine's memory pressure. {@link MemoryPressure.open}
 * registers it; {@link fired} says, without waiting, whether the kernel
 * raised it since the last call (each event is reported once).
 */
export class MemoryPressure {
  private closed = false;
  /** Events seen so far. */
  events = 0;

  private constructor(
    private readonly system: PressureSystem,
    private readonly fd: number,
    readonly trigger: string,
  ) {}

  /**
   * Opens {@link MEMORY_PRESSURE_FILE} and writes `trigger`. Throws a
   * RangeError for a trigger the kernel would refuse by its form, HvError
   * E_NO_PRESSURE where the kernel has no PSI (the file is missing), and the
   * system's error otherwise (EINVAL: a window that is not a multiple of 2 s
   * without CAP_SYS_RESOURCE; EACCES/EPERM: not permitted).
   */
  static open(trigger: string = DEFAULT_PRESSURE_TRIGGER, options: { system?: PressureSystem; path?: string } = {}): MemoryPressure {
    const problem = checkPressureTrigger(trigger);
    if (problem !== undefined) throw new RangeError(problem);
    const system = options.system ?? realSystem();
    const path = options.path ?? MEMORY_PRESSURE_FILE;
    let fd: number;
    try {
      fd = system.open(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new HvError(
          "E_NO_PRESSURE",
          `${path} is missing: this kernel has no PSI (CONFIG_PSI=y, and psi=1 on the kernel command line where it is off by default)`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    try {
      system.write(fd, trigger);
    } catch (error) {
      system.close(fd);
      throw error;
    }
    return new MemoryPressure(system, fd, trigger);
  }

  /** Whether the trigger fired since the last call: one `poll` with a timeout of 0. Throws a SystemCallError when poll fails or the trigger broke (POLLERR). */
  fired(): boolean {
    if (this.closed) return false;
    const revents = this.system.poll(this.fd);
    if (revents === 0) return false;
    if (revents < 0) throw new SystemCallError("poll", native().koffi.errno(), "poll on the PSI trigger failed");
    if ((revents & POLLERR) !== 0) throw new HvError("E_NO_PRESSURE", `the PSI trigger on ${MEMORY_PRESSURE_FILE} broke (POLLERR)`);
    if ((revents & POLLPRI) === 0) return false;
    this.events++;
    return true;
  }

  /** Unregisters the trigger (closes the descriptor). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.system.close(this.fd);
  }
}
