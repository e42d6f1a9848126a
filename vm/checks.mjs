// The checks that `npm run test:vm` runs inside the QEMU guest — the only file
// to edit when a check changes. Read by the host (vm/test-vm.mjs, to know the
// boots and to report) and by the guest (vm/guest/runner.mjs, to run them).
//
// A check:
//   name     unique, short
//   boot     a key of BOOTS (or an array of them): which boot(s) it runs in
//   group    "harness" | "probe" (throwaway, vm/probe/) | "final" (issue 5's
//            acceptance checks through the packed CLI)
//   command  argv run in the guest with cwd /app (no shell); "node" is the
//            machine's own node copied into the initramfs
//   expect   every key must hold (see vm/guest/expect.mjs):
//              exit: N            exit status N (and no signal)
//              signal: "SIGSEGV"  killed by this signal
//              json: {path: v}    stdout's last line parsed as JSON; each dotted
//                                 path equals v (deep equality; v may be null)
//              stdout / stderr: "regex"   the text matches (JavaScript RegExp, flag i)
//   pending  (final checks) reported as PENDING, not run, unless final checks
//            are enabled — see FINAL below.

/** The boots: one QEMU run each, with the same kernel and initramfs. */
export const BOOTS = {
  "vmport-on": { machine: "pc,vmport=on", about: "QEMU's VMware backdoor on port 0x5658, nothing on 0x5670" },
  "vmport-off": { machine: "pc,vmport=off", about: "no backdoor at all" },
};

/**
 * Whether issue 5's final checks (through the packed `vmballoon` CLI) run:
 *   VMTEST_FINAL=auto (default): on when the packed CLI's `--help` lists a
 *     `detect` command, else reported as PENDING;
 *   VMTEST_FINAL=1: always (fails until the CLI has them);
 *   VMTEST_FINAL=0: never.
 * The host decides and tells the guest on the kernel command line.
 */
export const FINAL_DEFAULT = "auto";

/** The packed CLI, as installed in the initramfs. */
export const CLI = ["node", "/app/node_modules/vmballoon/bin/vmballoon.js"];

/** THROWAWAY: the stand-in for @vmballoon/hv-x86 until it lands (delete with vm/probe/). */
const PROBE = ["node", "/app/vm/probe/x86-probe.mjs"];

const MAGIC = "0x564d5868";

export const CHECKS = [
  // --- the harness itself -------------------------------------------------
  {
    name: "node runs",
    group: "harness",
    boot: ["vmport-on", "vmport-off"],
    command: ["node", "-e", "console.log(JSON.stringify({ arch: process.arch, platform: process.platform, uid: process.getuid() }))"],
    expect: { exit: 0, json: { arch: "x64", platform: "linux", uid: 0 } },
  },
  {
    name: "packed CLI loads",
    group: "harness",
    boot: "vmport-on",
    command: [...CLI, "--version"],
    expect: { exit: 0, stdout: "^vmballoon/\\d" },
  },

  // --- THROWAWAY probe checks (vm/probe/x86-probe.mjs) ---------------------
  // Replace with the final checks below once @vmballoon/hv-x86 and the CLI land.
  {
    name: "probe: CPUID 0x40000000 signature",
    group: "probe",
    boot: "vmport-on",
    command: [...PROBE, "cpuid", "0x40000000"],
    expect: { exit: 0, json: { signature: "TCGTCGTCGTCG" } },
  },
  {
    name: "probe: iopl(3) as root",
    group: "probe",
    boot: "vmport-on",
    command: [...PROBE, "iopl", "3"],
    expect: { exit: 0, json: { ok: true } },
  },
  {
    name: "probe: ioperm(0x5658, 4, 1) as root",
    group: "probe",
    boot: "vmport-on",
    command: [...PROBE, "ioperm", "0x5658", "4"],
    expect: { exit: 0, json: { ok: true } },
  },
  {
    name: "probe: backdoor GETVERSION (after ioperm)",
    group: "probe",
    boot: "vmport-on",
    command: [...PROBE, "getversion"],
    expect: { exit: 0, json: { "ioperm.ok": true, "regs.eax": "0x00000006", "regs.ebx": MAGIC, "backdoor.version": 6 } },
  },
  {
    name: "probe: balloon START on 0x5670 (after ioperm) reads 0xFFFFFFFF",
    group: "probe",
    boot: "vmport-on",
    command: [...PROBE, "balloon-start"],
    expect: { exit: 0, json: { "ioperm.ok": true, status: "0xffffffff" } },
  },
  {
    // TCG, unlike VMware and KVM's enable_vmware_backdoor, applies the TSS I/O
    // bitmap to 0x5658 too: from CPL3 without ioperm the IN faults even though
    // the backdoor is there. The final `detect --probe` must open the port first.
    name: "probe: GETVERSION without ioperm faults under TCG (contained)",
    group: "probe",
    boot: "vmport-on",
    command: [...PROBE, "contained", "getversion", "--no-ioperm"],
    expect: { exit: 0, json: { "child.signal": "SIGSEGV", "child.status": null, "parent.survived": true } },
  },
  {
    name: "probe: GETVERSION in a child faults (SIGSEGV), parent survives",
    group: "probe",
    boot: "vmport-off",
    command: [...PROBE, "contained", "getversion", "--no-ioperm"],
    expect: { exit: 0, json: { "child.signal": "SIGSEGV", "child.status": null, "parent.survived": true } },
  },
  {
    name: "probe: GETVERSION with ioperm, no backdoor: reads 0xFFFFFFFF, no magic",
    group: "probe",
    boot: "vmport-off",
    command: [...PROBE, "getversion"],
    expect: { exit: 0, json: { "ioperm.ok": true, "regs.eax": "0xffffffff", backdoor: null } },
  },

  // --- issue 5's final checks, through the packed CLI ----------------------
  // PENDING until the CLI has `detect` (see FINAL_DEFAULT). The JSON paths
  // follow issue 4/5's wording (`hypervisor`, `vmware`, `backdoor.version`);
  // adjust them here if the CLI's record differs.
  {
    name: "detect --json: hypervisor TCGTCGTCGTCG, not VMware",
    group: "final",
    pending: true,
    boot: "vmport-on",
    command: [...CLI, "detect", "--json"],
    expect: { exit: 0, json: { hypervisor: "TCGTCGTCGTCG", vmware: false } },
  },
  {
    name: "detect --probe --json: backdoor version 6",
    group: "final",
    pending: true,
    boot: "vmport-on",
    command: [...CLI, "detect", "--probe", "--json"],
    expect: { exit: 0, json: { "backdoor.version": 6 } },
  },
  {
    name: "run --host vmware --probe: exits 69 naming the balloon port",
    group: "final",
    pending: true,
    boot: "vmport-on",
    command: [...CLI, "run", "--host", "vmware", "--probe"],
    expect: { exit: 69, stderr: "0x5670|balloon port" },
  },
  {
    name: "detect --probe --json without a backdoor: backdoor null, exit 0",
    group: "final",
    pending: true,
    boot: "vmport-off",
    command: [...CLI, "detect", "--probe", "--json"],
    expect: { exit: 0, json: { backdoor: null } },
  },
];

/** The checks of one boot, in order. */
export function checksFor(boot) {
  return CHECKS.filter((c) => (Array.isArray(c.boot) ? c.boot : [c.boot]).includes(boot));
}
