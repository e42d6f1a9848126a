/** `run --host vmware`: the checks before the real balloon port is opened, and the port of each driver. */
import { CAPABILITIES } from "@vmballoon/protocol";
import type { Hypervisor, ModernHypervisor, ModernHypervisorReply } from "@vmballoon/core";
import type { DriverName } from "@vmballoon/core/sim";
import { BalloonHypervisor, ModernBalloonHypervisor, detect, hex, probeBalloon, type ProbeResult } from "@vmballoon/hv-x86";
import { CliError, EXIT } from "../errors.js";

/** Why there is no balloon to drive here, from a probe of the balloon port. */
function probeVerdict(probe: ProbeResult, cpu: string): string {
  const port = `port ${hex(probe.port)}`;
  switch (probe.outcome) {
    case "answered":
      return `${probe.detail}, but ${cpu}, not VMwareVMware: vmballoon runs the backdoor in-process only where CPUID says VMware`;
    case "silent":
      return `nothing speaks the balloon protocol on ${port}: START read ${hex(probe.registers!.eax)} (${cpu})`;
    case "faulted": {
      const ioperm = probe.ioperm === "granted" || probe.ioperm === null ? "" : `; ioperm: ${probe.ioperm}`;
      return `nothing speaks the balloon protocol on ${port}: the IN faulted in the probe (${probe.signal}${ioperm}) (${cpu})`;
    }
    default:
      return `${probe.detail} (${cpu})`;
  }
}

/**
 * Today's driver on VMware, from user mode: there is no VMCI doorbell to
 * register (that needs the kernel's VMCI driver), so SIGNALLED_WAKEUP_CMD is
 * taken out of what START grants, and the driver never sends a doorbell
 * handle; it wakes once a cycle, as without the capability.
 */
export class WithoutDoorbell implements ModernHypervisor {
  constructor(private readonly inner: ModernHypervisor) {}
  call(command: number, argument: number, argument2: number): ModernHypervisorReply {
    const reply = this.inner.call(command, argument, argument2);
    reply.ecx = (reply.ecx & ~CAPABILITIES.SIGNALLED_WAKEUP_CMD) >>> 0;
    return reply;
  }
}

/** Each driver's port: the seed's 32-bit trampoline; today's 64-bit one, without the doorbell. */
const PORTS: Readonly<Record<DriverName, () => Hypervisor | ModernHypervisor>> = {
  seed: () => BalloonHypervisor.open(),
  modern: () => new WithoutDoorbell(ModernBalloonHypervisor.open()),
};

/** `--host vmware`: the checks of DESIGN.md, each failing with one line (exit status 69), then the driver's port. */
export async function openVmware(driver: DriverName, options: { readonly probe: boolean; readonly force: boolean }): Promise<Hypervisor | ModernHypervisor> {
  const found = detect();
  if (!found.vmware) {
    const cpu = found.hypervisor ? `CPUID says '${found.hypervisor}'` : "CPUID shows no hypervisor";
    if (!options.probe) {
      throw new CliError(
        `not a VMware guest (${cpu}): there is no balloon to drive here (--probe tries the balloon port in a child process)`,
        EXIT.UNAVAILABLE,
      );
    }
    throw new CliError(probeVerdict(await probeBalloon(), cpu), EXIT.UNAVAILABLE);
  }
  if (found.balloonDriver !== null && !options.force) {
    throw new CliError(
      `the kernel's balloon driver ${found.balloonDriver} is loaded and owns the balloon: unload it (modprobe -r ${found.balloonDriver}) or pass --force`,
      EXIT.UNAVAILABLE,
    );
  }
  return PORTS[driver]();
}
