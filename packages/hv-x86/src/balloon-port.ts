import { HV_PORT } from "@vmballoon/protocol";
import type { Hypervisor, HypervisorReply } from "@vmballoon/core";
import { VMWARE_SIGNATURE, cpuIdentity, type DetectionSources } from "./detect.js";
import { HvError, type SystemCallError } from "./errors.js";
import { lastError, native } from "./native.js";
import { BALLOON, backdoorCall, cpuid, type BackdoorCall } from "./trampolines.js";

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
}

const machine: BalloonPortSources = {
  cpuid,
  openPorts: ioperm,
  backdoor: () => backdoorCall(BALLOON),
};

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
    return new BalloonHypervisor(sources.backdoor());
  }

  call(command: number, argument: number): HypervisorReply {
    const reply = this.reply;
    reply.status = this.backdoor.call(command, argument);
    reply.result = this.backdoor.registers[1]!;
    return reply;
  }
}
