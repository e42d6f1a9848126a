#!/usr/bin/env node
// `npm run test:vm`: boots the packed project in QEMU (TCG) with and without
// QEMU's VMware backdoor and runs the checks of vm/checks.mjs inside the guest.
// See vm/README.md. Options:
//   --boot NAME          only this boot (repeatable): vmport-on, vmport-off
//   --build-only         prepare and build the initramfs, boot nothing
// Environment:
//   VMTEST_BOOT_TIMEOUT=SECONDS one boot's limit (default 300)
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BOOTS, checksFor } from "./checks.mjs";
import { boot } from "./lib/boot.mjs";
import { buildInitramfs } from "./lib/initramfs.mjs";
import { ensurePrereqs } from "./lib/prereqs.mjs";
import { StepError, fmtMiB, fmtS, timed } from "./lib/sh.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const vmDir = join(repo, ".vm");
const cacheDir = join(vmDir, "cache");
const logDir = join(vmDir, "logs");
const say = (s = "") => process.stdout.write(s + "\n");
const ci = process.env.CI === "true" || process.env.CI === "1";

/** A boot test that cannot run: SKIPPED, except under CI=true, where it is a failure (status 1). */
function cannotRun(why) {
  if (ci) {
    say(`test:vm: FAILED — cannot run: ${why} (under CI=true, a test that cannot run is a failure)`);
    return 1;
  }
  say(`test:vm: SKIPPED — ${why}`);
  return 0;
}

async function main() {
  const { values } = parseArgs({ options: { boot: { type: "string", multiple: true }, "build-only": { type: "boolean" } } });
  const boots = values.boot ?? Object.keys(BOOTS);
  for (const b of boots) if (!BOOTS[b]) throw new StepError(`unknown boot '${b}' (known: ${Object.keys(BOOTS).join(", ")})`);
  const timeoutS = Number(process.env.VMTEST_BOOT_TIMEOUT ?? 300);

  if (process.platform !== "linux" || process.arch !== "x64") {
    return cannotRun(`needs Linux on x86-64 (this is ${process.platform}/${process.arch})`);
  }
  mkdirSync(logDir, { recursive: true });
  const aptLog = join(logDir, "prereqs.log");
  writeFileSync(aptLog, "");
  const timings = {};

  say("test:vm: prerequisites (Debian packages)…");
  const [pre, preS] = await timed(() => ensurePrereqs({ cacheDir, log: aptLog }));
  timings.prerequisites = preS;
  if (pre.skip) return cannotRun(pre.skip);
  say(`  ${fmtS(preS)}: ${pre.actions.length ? pre.actions.join("; ") : "all present"} · kernel ${pre.kernelPackage}`);

  say("test:vm: initramfs…");
  const buildLog = join(logDir, "build.log");
  writeFileSync(buildLog, "");
  const [img, buildS] = await timed(() => buildInitramfs({ repo, vmDir, cacheDir, busybox: pre.busybox, log: buildLog }));
  timings.initramfs = buildS;
  timings.initramfsParts = img.seconds;
  say(
    `  ${fmtS(buildS)} (base ${img.baseCached ? "cached" : "built"} ${fmtS(img.seconds.base)}, ` +
      `project build+pack+install ${fmtS(img.seconds.project)}, app cpio ${fmtS(img.seconds.app)})`,
  );
  say(`  ${relative(repo, img.initrd)}: ${fmtMiB(img.bytes.initrd)} (base ${fmtMiB(img.bytes.base)} + project ${fmtMiB(img.bytes.app)})`);
  say(`  packed: ${img.packages.join(" ")}; native: ${img.addons.join(" ")}`);

  if (values["build-only"]) return 0;

  let passed = 0,
    failed = 0;
  timings.boots = {};
  for (const name of boots) {
    const expected = checksFor(name);
    if (expected.length === 0) continue;
    const { machine, about } = BOOTS[name];
    say(`test:vm: boot ${name} (-machine ${machine}: ${about})…`);
    const r = await boot({
      qemu: pre.qemu,
      name,
      machine,
      kernel: pre.kernel,
      initrd: img.initrd,
      timeoutS,
      log: join(logDir, `boot-${name}.log`),
      onLine: (line) => {
        if (/^VMTEST-INIT|Kernel panic/.test(line)) say(`  | ${line}`);
      },
    });
    timings.boots[name] = r.seconds;
    say(`  ${name}: ${fmtS(r.seconds)} from QEMU start to power-off (console: ${relative(repo, r.log)})`);
    const reported = new Map((r.result?.checks ?? []).map((c) => [c.name, c]));
    if (r.result?.error) say(`  guest runner error: ${r.result.error}`);
    for (const check of expected) {
      const c = reported.get(check.name);
      if (!c) {
        failed++;
        say(`  FAIL     ${check.name}`);
        say(`           not reported by the guest${r.problem ? `: ${r.problem}` : ""}`);
        continue;
      }
      if (c.status === "pass") {
        passed++;
        say(`  PASS     ${c.name}  (${c.ms} ms)`);
      } else {
        failed++;
        say(`  FAIL     ${c.name}  (${c.ms} ms, ${c.ended})`);
        say(`           command:  ${check.command.join(" ")}`);
        for (const f of c.failures) say(`           ${f.what}: expected ${f.expected}, actual ${f.actual}`);
        if (c.stdout) say(`           stdout: ${c.stdout.trim().replace(/\n/g, "\n                   ")}`);
        if (c.stderr) say(`           stderr: ${c.stderr.trim().replace(/\n/g, "\n                   ")}`);
      }
    }
    if (r.problem) {
      failed += r.result ? 1 : 0; // with no result, every check already failed above
      say(`  boot problem: ${r.problem}`);
      say("  last console lines:");
      for (const line of r.console.trim().split("\n").slice(-40)) say(`  | ${line}`);
    }
    if (r.result?.dmesg) for (const line of r.result.dmesg) say(`  dmesg | ${line}`);
  }

  writeFileSync(join(logDir, "timings.json"), JSON.stringify({ ...timings, initrdBytes: img.bytes }, null, 2));
  const total = preS + buildS + Object.values(timings.boots).reduce((a, b) => a + b, 0);
  say(
    `test:vm: timings: prerequisites ${fmtS(preS)}, initramfs ${fmtS(buildS)} (${fmtMiB(img.bytes.initrd)}), ` +
      Object.entries(timings.boots)
        .map(([b, s]) => `boot ${b} ${fmtS(s)}`)
        .join(", ") +
      `, total ${fmtS(total)}`,
  );
  say(`vmtest: ${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    if (error instanceof StepError) process.stderr.write(`test:vm: ${error.message}\n`);
    else process.stderr.write(`test:vm: internal error: ${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
