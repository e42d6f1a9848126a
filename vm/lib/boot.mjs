// One QEMU boot: TCG, the VMware backdoor on or off, serial console on stdio.
// Streams the guest's progress lines, keeps the whole console in a log file,
// and returns the parsed `VMTEST-RESULT {json}` line (or why there is none).
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";

const MARK = "VMTEST-RESULT ";

/** A console line without its CR and the terminal escapes SeaBIOS and the kernel emit. */
const clean = (line) => line.replace(/\r/g, "").replace(/\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])/g, "");

export function qemuArgs({ machine, kernel, initrd, append }) {
  return [
    "-machine",
    machine,
    "-accel",
    "tcg",
    "-m",
    "1536",
    "-nographic",
    "-no-reboot",
    "-nic",
    "none", // no NIC, so no iPXE option ROM: about 1.5 s less per boot
    "-kernel",
    kernel,
    "-initrd",
    initrd,
    "-append",
    append,
  ];
}

/**
 * @returns {Promise<{ seconds: number, result: object | null, problem: string | null, console: string, log: string, argv: string[] }>}
 */
export function boot({ qemu, name, machine, kernel, initrd, timeoutS, log, onLine }) {
  const append = `console=ttyS0 panic=-1 quiet vmtest_boot=${name}`;
  const args = qemuArgs({ machine, kernel, initrd, append });
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(qemu, args, { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    let pending = "";
    let timedOut = false;
    const onData = (chunk) => {
      const s = chunk.toString("utf8");
      text += s;
      pending += s;
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const line of lines) onLine?.(clean(line));
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutS * 1000);
    let finished = false;
    const finish = (code, signal, spawnError) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const consoleText = text.split("\n").map(clean).join("\n");
      writeFileSync(log, `$ ${[qemu, ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ")}\n${consoleText}`);
      let result = null;
      let problem = null;
      const line = consoleText.split("\n").find((l) => l.includes(MARK));
      if (line) {
        try {
          result = JSON.parse(line.slice(line.indexOf(MARK) + MARK.length));
        } catch (e) {
          problem = `the result line is not valid JSON (${e.message}): ${line.slice(0, 300)}`;
        }
      }
      if (spawnError) problem = `QEMU did not start: ${spawnError.message}`;
      else if (timedOut) problem = `timed out after ${timeoutS} s${result ? "" : " with no result line"}`;
      else if (!result && !problem) problem = `QEMU exited (${signal ? `signal ${signal}` : `status ${code}`}) with no result line`;
      else if (result && code !== 0) problem = `QEMU exited with status ${code}`;
      resolve({ seconds, result, problem, console: consoleText, log, argv: [qemu, ...args] });
    };
    child.on("error", (e) => finish(null, null, e));
    child.on("close", (code, signal) => finish(code, signal));
  });
}
