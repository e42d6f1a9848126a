import { detect, probeBackdoor, type Detection, type ProbeResult } from "@vmballoon/hv-x86";
import { colorsFor, styler } from "../output.js";

export interface DetectOptions {
  readonly json?: boolean;
  readonly probe?: boolean;
}

/** The `--json` record: the detection, with the probe's findings when one ran. */
export interface DetectRecord extends Omit<Detection, "backdoorCheck"> {
  readonly backdoorCheck: Detection["backdoorCheck"] | "child-process";
  /** What the probe saw, with `--probe`; absent otherwise. */
  readonly probe?: ProbeResult;
}

/**
 * `vmballoon detect [--json] [--probe]`: what this machine is. Exit status 0
 * whatever it is (VMware or not: read `vmware`), 69 where the native layer
 * does not work (not Linux x64).
 */
export async function detectCommand(options: DetectOptions): Promise<number> {
  const found = detect();
  let record: DetectRecord = found;
  // On VMware the backdoor was already asked in-process; a probe would only repeat it.
  if (options.probe && !found.vmware) {
    const { backdoor, probe } = await probeBackdoor();
    record = { ...found, backdoor, backdoorCheck: "child-process", probe };
  }

  if (options.json) {
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(report(record, options.probe === true));
  return 0;
}

function report(record: DetectRecord, probed: boolean): string {
  const paint = styler(colorsFor(process.stdout));
  const yes = (text: string) => paint("green", text);
  const no = (text: string) => paint("yellow", text);
  const hypervisor = record.hypervisor ? `${record.hypervisor}` : record.hypervisorPresent ? "present, without a signature" : "none (CPUID.1:ECX bit 31 clear)";

  let backdoor: string;
  if (record.backdoor) {
    backdoor = yes(`version ${record.backdoor.version}, product type ${record.backdoor.productType}`) + (record.probe ? " (probed in a child process)" : "");
  } else if (record.probe) {
    backdoor = no(`none: ${record.probe.detail}`);
  } else if (record.vmware) {
    backdoor = no("did not answer GETVERSION");
  } else {
    backdoor = `not tried: not VMware${probed ? "" : " (--probe tries it in a child process)"}`;
  }

  const rows: [string, string][] = [
    ["CPU vendor", record.cpuVendor],
    ["hypervisor", hypervisor],
    ["VMware", record.vmware ? yes("yes") : no("no")],
    ["backdoor", backdoor],
    ["balloon driver", record.balloonDriver ? `${record.balloonDriver} is loaded (the kernel owns the balloon)` : "not loaded"],
  ];
  return `${rows.map(([label, value]) => `${paint("bold", label.padEnd(16))}${value}`).join("\n")}\n`;
}
