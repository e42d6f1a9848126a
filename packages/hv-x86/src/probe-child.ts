/*
 * The child process of a probe (see probe.ts): opens the port if the kernel
 * lets it, runs one real backdoor `in eax, dx`, and prints the registers as
 * one JSON line. If nothing emulates the port, the `IN` faults and the kernel
 * kills this process, which is what the parent is there to see. Core dumps
 * are turned off first: a fault is an expected outcome here, not a crash.
 */
import { BACKDOOR_CMD_GETVERSION, COMMANDS, PROTOCOL_VERSION } from "@vmballoon/protocol";
import { PR_SET_DUMPABLE, lastError, native } from "./native.js";
import { BACKDOOR, BALLOON, backdoorCall } from "./trampolines.js";

function say(record: object): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

const kind = process.argv[2];
try {
  if (kind !== "backdoor" && kind !== "balloon") throw new Error(`unknown probe '${kind}' (backdoor or balloon)`);
  const { libc } = native();
  libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  const target = kind === "balloon" ? BALLOON : BACKDOOR;
  const command = kind === "balloon" ? COMMANDS.START : BACKDOOR_CMD_GETVERSION;
  const argument = kind === "balloon" ? PROTOCOL_VERSION : 0xffffffff;

  // VMware opens 0x5658 to user mode by itself; QEMU (TCG) and the balloon port need ioperm.
  const ioperm = libc.ioperm(target.port, 4, 1) === 0 ? "granted" : lastError("ioperm").code;
  const { call, registers } = backdoorCall(target);
  say({ stage: "in", ioperm });
  call(command, argument);
  say({ stage: "done", ioperm, eax: registers[0], ebx: registers[1], ecx: registers[2], edx: registers[3] });
} catch (error) {
  say({ stage: "failed", error: error instanceof Error ? error.message : String(error) });
  process.exitCode = 3;
}
