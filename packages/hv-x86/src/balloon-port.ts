import { HV_PORT } from "@vmballoon/protocol";
import type { Hypervisor, HypervisorReply, ModernHypervisor, ModernHypervisorReply } from "@vmballoon/core";
import { VMWARE_SIGNATURE, cpuIdentity, type DetectionSources } from "./detect.js";
import { HvError, type SystemCallError } from "./errors.js";
import { lastError, native } from "./native.js";
import { BALLOON, backdoorCall, backdoorCall64, cpuid, register64, type BackdoorCall, type BackdoorCall64 } from "./trampolines.js";

/** Opens I/O ports to this process (`ioperm(from, count, 1)`); throws a SystemCallError when refused. */
export type PortOpener = (from: number, count: number) => void;

function ioperm(from: number, count: number): void {
  if (native().libc.ioperm(from, count, 1) !== 0) throw lastError("ioperm");
}

/** What {@link BalloonHypervisor.open} needs from the machine (tests pass fakes). */
export interface BalloonPortSources {
  readonly cpuid: DetectionSources["cpuid"];
  readonly openPorts: PortOpener;
  readonly backdoor: () => BackdoorCall;
  /** The trampoline of today's driver (ESI in, ECX back, 64-bit arguments). */
  readonly backdoor64: () => BackdoorCall64;
}

const machine: BalloonPortSources = {
  cpuid,
  openPorts: ioperm,
  backdoor: () => backdoorCall(BALLOON),
  backdoor64: () => backdoorCall64(BALLOON),
};

/**
 * The checks before any balloon port is built: CPUID says `VMwareVMware`
 * (else HvError E_NOT_VMWARE), and `ioperm(0x5670, 4, 1)` opens the port to
 * this process (refused: E_PORT_DENIED; no ioperm: E_PORT_UNAVAILABLE).
 */
function openBalloonPort(sources: BalloonPortSources): void {
  const found = cpuIdentity(sources.cpuid).hypervisor;
  if (found !== VMWARE_SIGNATURE) {
    const what = found === null ? "no hypervisor signature in CPUID" : `CPUID says '${found}'`;
    throw new HvError("E_NOT_VMWARE", `not a VMware guest (${what}, not '${VMWARE_SIGNATURE}'): the balloon port would fault`);
  }
  try {
    sources.openPorts(HV_PORT, 4);
  } catch (error) {
    const code = (error as SystemCallError).code;
    const port = `0x${HV_PORT.toString(16)}`;
    if (code === "EPERM" || code === "EACCES") {
      throw new HvError("E_PORT_DENIED", `opening the balloon port ${port} needs CAP_SYS_RAWIO (run as root): ioperm was refused`, { cause: error });
    }
    throw new HvError("E_PORT_UNAVAILABLE", `this kernel cannot open the balloon port ${port} to a process (ioperm: ${code})`, { cause: error });
  }
}

/**
 * The engine's {@link Hypervisor} on VMware: each command is one `in eax, dx`
 * on the balloon port 0x5670, as the seed's `VMWARE_BALLOON_CMD`. The reply's
 * status is EAX and its result EBX, as unsigned 32-bit registers (FAILURE
 * reads 0xffffffff; `describeStatus` knows it).
 *
 * It cannot be built off VMware. Build it with {@link BalloonHypervisor.open}.
 */
export class BalloonHypervisor implements Hypervisor {
  private readonly reply: HypervisorReply = { status: 0, result: 0 };

  private constructor(private readonly backdoor: BackdoorCall) {}

  /**
   * Checks that CPUID says `VMwareVMware` (else HvError E_NOT_VMWARE), opens
   * the port to this process with `ioperm(0x5670, 4, 1)` — a 32-bit `IN`
   * touches four ports, and unlike the general backdoor port the balloon's is
   * not open to user mode — (refused: E_PORT_DENIED, needs CAP_SYS_RAWIO; no
   * ioperm in this kernel: E_PORT_UNAVAILABLE), then builds the trampoline.
   * Executes no `IN`.
   */
  static open(sources: BalloonPortSources = machine): BalloonHypervisor {
    openBalloonPort(sources);
    return new BalloonHypervisor(sources.backdoor());
  }

  call(command: number, argument: number): HypervisorReply {
    const reply = this.reply;
    reply.status = this.backdoor.call(command, argument);
    reply.result = this.backdoor.registers[1]!;
    return reply;
  }
}

/**
 * The {@link ModernHypervisor} of today's driver on VMware: each command is
 * one `in eax, dx` on the balloon port 0x5670 with the first argument in RBX
 * and the second in RSI, 64 bits each, as `__vmballoon_cmd`. The reply's
 * status is EAX, its result RBX (64 bits: the targets of
 * `VMW_BALLOON_64_BIT_TARGET`), and its `ecx` ECX (START's capabilities).
 *
 * The same rules as {@link BalloonHypervisor}: built only where CPUID says
 * VMware and the port opens, with {@link ModernBalloonHypervisor.open}.
 */
export class ModernBalloonHypervisor implements ModernHypervisor {
  private readonly reply: ModernHypervisorReply = { status: 0, result: 0, ecx: 0 };

  private constructor(private readonly backdoor: BackdoorCall64) {}

  /** The checks of {@link BalloonHypervisor.open}, then the 64-bit trampoline. Executes no `IN`. */
  static open(sources: BalloonPortSources = machine): ModernBalloonHypervisor {
    openBalloonPort(sources);
    return new ModernBalloonHypervisor(sources.backdoor64());
  }

  call(command: number, argument: number, argument2: number): ModernHypervisorReply {
    const reply = this.reply;
    const registers = this.backdoor.registers;
    reply.status = this.backdoor.call(command, argument, argument2);
    reply.result = register64(registers, "rbx");
    reply.ecx = registers[4]!;
    return reply;
  }
}
