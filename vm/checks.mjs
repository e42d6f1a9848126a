// The checks that `npm run test:vm` runs inside the QEMU guest — the only file
// to edit when a check changes. Read by the host (vm/test-vm.mjs, to know the
// boots and to report) and by the guest (vm/guest/runner.mjs, to run them).
//
// A check:
//   name     unique, short
//   boot     a key of BOOTS (or an array of them): which boot(s) it runs in
//   group    "harness" | "cli" (issue 5's checks through the packed CLI)
//   command  argv run in the guest with cwd /app (no shell); "node" is the
//            machine's own node copied into the initramfs
//   expect   every key must hold (see vm/guest/expect.mjs):
//              exit: N            exit status N (and no signal)
//              signal: "SIGSEGV"  killed by this signal
//              json: {path: v}    stdout's last line parsed as JSON; each dotted
//                                 path equals v (deep equality; v may be null)
//              stdout / stderr: "regex"   the text matches (JavaScript RegExp, flag i)

/** The boots: one QEMU run each, with the same kernel and initramfs. */
export const BOOTS = {
  "vmport-on": { machine: "pc,vmport=on", about: "QEMU's VMware backdoor on port 0x5658, nothing on 0x5670" },
  "vmport-off": { machine: "pc,vmport=off", about: "no backdoor at all" },
};

/** The packed CLI, as installed in the initramfs. */
export const CLI = ["node", "/app/node_modules/vmballoon/bin/vmballoon.js"];

/** Runs a command as nobody (uid and gid 65534), with its exit status. */
const AS_NOBODY = ["node", "/app/vm/guest/as-nobody.mjs"];

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

  // --- issue 5's checks, through the packed CLI ----------------------------
  {
    name: "detect --json: hypervisor TCGTCGTCGTCG, not VMware",
    group: "cli",
    boot: "vmport-on",
    command: [...CLI, "detect", "--json"],
    expect: { exit: 0, json: { hypervisor: "TCGTCGTCGTCG", vmware: false } },
  },
  {
    name: "detect --probe --json: backdoor version 6",
    group: "cli",
    boot: "vmport-on",
    command: [...CLI, "detect", "--probe", "--json"],
    expect: { exit: 0, json: { "backdoor.version": 6 } },
  },
  {
    name: "run --host vmware --probe: exits 69 naming the balloon port",
    group: "cli",
    boot: "vmport-on",
    command: [...CLI, "run", "--host", "vmware", "--probe"],
    expect: { exit: 69, stderr: "0x5670|balloon port" },
  },
  {
    name: "detect --probe --json without a backdoor: backdoor null, exit 0",
    group: "cli",
    boot: "vmport-off",
    command: [...CLI, "detect", "--probe", "--json"],
    expect: { exit: 0, json: { backdoor: null, "probe.outcome": "silent" } },
  },
  {
    // Without ioperm (not root) the IN faults: the probe's child dies, the command does not.
    name: "detect --probe --json as nobody without a backdoor: the child's fault contained",
    group: "cli",
    boot: "vmport-off",
    command: [...AS_NOBODY, ...CLI, "detect", "--probe", "--json"],
    expect: { exit: 0, json: { backdoor: null, "probe.outcome": "faulted", "probe.signal": "SIGSEGV" } },
  },
  {
    name: "detect --probe --json as nobody with the backdoor: TCG faults it too, contained",
    group: "cli",
    boot: "vmport-on",
    command: [...AS_NOBODY, ...CLI, "detect", "--probe", "--json"],
    expect: { exit: 0, json: { backdoor: null, "probe.outcome": "faulted" } },
  },
];

/** The checks of one boot, in order. */
export function checksFor(boot) {
  return CHECKS.filter((c) => (Array.isArray(c.boot) ? c.boot : [c.boot]).includes(boot));
}
