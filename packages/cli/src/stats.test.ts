import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StatsParseError, parse, toJson, toPrometheus } from "@vmballoon/stats";
import { afterAll, describe, expect, it } from "vitest";
import { summary } from "./commands/stats.js";
import { DEFAULT_FILE, VmmemctlUnavailableError, explainMissing, gatherFacts, readVmmemctl, type HostFacts } from "./vmmemctl.js";
import { EXIT, exitStatusOf } from "./errors.js";
import { styler } from "./output.js";
import { BIN, FIXTURES, vmballoon } from "./cli-runner.js";

const SAMPLES = join(FIXTURES, "debugfs");
const sampleFile = (name: string) => join(SAMPLES, name);
const sampleText = (name: string) => readFileSync(sampleFile(name), "utf8");
/** What `--format json` prints for a sample: the library's document, indented. */
const jsonOf = (name: string) => `${JSON.stringify(toJson(parse(sampleText(name))), null, 2)}\n`;
const ALL = [
  "seed-typical.txt",
  "seed-zero.txt",
  "seed-signed.txt",
  "modern-busy.txt",
  "modern-fresh.txt",
  "modern-huge-counters.txt",
  "modern-resetting-basic.txt",
];

const scratch = mkdtempSync(join(tmpdir(), "vmballoon-stats-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Two links in the scratch folder that point at each other. */
function loopOfLinks(): string {
  symlinkSync("loop-b", join(scratch, "loop-a"));
  symlinkSync("loop-a", join(scratch, "loop-b"));
  return join(scratch, "loop-a");
}

describe("vmballoon stats --file F", () => {
  it.each([
    // 32770 pages × 4 KiB = 128.0 MiB; 40000 pages = 156.25 MiB.
    ["seed", "seed-typical.txt", ["32770 pages (128.0 MiB), target 40000 pages (156.3 MiB)", "LOCK 32773 (3 failed)", "seed layout"]],
    // 9071203 pages / 256 = 35434.4 MiB
    ["modern", "modern-resetting-basic.txt", ["9071203 pages (35434.4 MiB)", "resetting", "modern layout"]],
  ])("summarises a %s vmmemctl with sizes in pages and MiB", (_layout, file, fragments) => {
    const run = vmballoon(["stats", "--file", sampleFile(file)]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    // The library's summary, and in it what a person looks for.
    expect(run.stdout).toBe(summary(sampleFile(file), parse(sampleText(file))));
    for (const fragment of fragments) expect(run.stdout).toContain(fragment);
  });

  it.each(ALL)("%s: --format debugfs reproduces the file byte for byte", (name) => {
    const run = vmballoon(["stats", "--file", sampleFile(name), "--format", "debugfs"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(sampleText(name));
  });

  it.each(
    ALL.flatMap((name) => [
      [name, "--format", "json"],
      [name, "--json"],
    ]),
  )("%s %s %s: the library's JSON document (toJson), indented, with byte sizes", (name, ...flags) => {
    const run = vmballoon(["stats", "--file", sampleFile(name), ...flags.filter(Boolean)]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(jsonOf(name));
    expect(JSON.parse(run.stdout)).toMatchObject({ layout: name.split("-")[0], pageSize: 4096 });
  });

  it("--json: the balloon's size in bytes, a decimal string in the modern layout", () => {
    const run = vmballoon(["stats", "--file", sampleFile("modern-busy.txt"), "--json"]);
    expect(run.stderr).toBe("");
    expect(JSON.parse(run.stdout).sizeBytes).toBe(String(2530829 * 4096));
  });

  it("--format prometheus prints the library's exposition (checked with a real parser in @vmballoon/stats)", () => {
    const run = vmballoon(["stats", "--file", sampleFile("seed-typical.txt"), "--format", "prometheus"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(toPrometheus(parse(sampleText("seed-typical.txt"))));
    expect(run.stdout).toContain(`\nvmware_balloon_size_bytes ${32770 * 4096}\n`);
  });

  it("reads stdin with --file -", () => {
    const run = vmballoon(["stats", "--file", "-", "--format", "debugfs"], { input: sampleText("modern-fresh.txt") });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(sampleText("modern-fresh.txt"));
  });
});

describe("vmballoon stats: bad input and bad usage", () => {
  it("a garbled file: exit 2 and one line naming the file and the line", () => {
    const file = join(scratch, "garbled.txt");
    writeFileSync(file, sampleText("seed-typical.txt").replace("timer:                     7", "timer:                 seven"));
    const run = vmballoon(["stats", "--file", file]);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(`vmballoon: ${file}: line 7: expected the timer counter: "timer:              %8u", found "timer:                 seven"\n`);
  });

  it("garbled stdin: exit 2, naming stdin", () => {
    const run = vmballoon(["stats", "--file", "-"], { input: "MemTotal: 1 kB\n" });
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      `vmballoon: stdin: line 1: expected "target:" (the seed's layout) or "balloon capabilities" (today's Linux layout), found "MemTotal: 1 kB"\n`,
    );
  });

  it("a file that never ends (/dev/zero) or a stdin of more than 1 MiB: exit 2, one line, read no further", () => {
    const device = vmballoon(["stats", "--file", "/dev/zero"]);
    expect(device.status).toBe(EXIT.USAGE);
    expect(device.stderr).toBe("vmballoon: cannot read /dev/zero: more than 1 MiB, too much for a vmmemctl text\n");
    const piped = vmballoon(["stats", "--file", "-"], { input: sampleText("seed-typical.txt").repeat(2 ** 20 / 256) });
    expect(piped.status).toBe(EXIT.USAGE);
    expect(piped.stderr).toBe("vmballoon: cannot read stdin: more than 1 MiB, too much for a vmmemctl text\n");
  });

  it.each(["debugfs", "json", "prometheus", undefined])("--output F writes what stdout would get (--format %s), replacing F whole", (format) => {
    const args = ["stats", "--file", sampleFile("modern-busy.txt"), ...(format ? ["--format", format] : [])];
    const record = parse(sampleText("modern-busy.txt"));
    const expected =
      { debugfs: sampleText("modern-busy.txt"), json: jsonOf("modern-busy.txt"), prometheus: toPrometheus(record) }[format ?? ""] ??
      summary(sampleFile("modern-busy.txt"), record);
    const out = join(scratch, `out-${format ?? "summary"}.txt`);
    writeFileSync(out, "an older file\n");
    const before = statSync(out).ino;
    const run = vmballoon([...args, "--output", out]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe("");
    expect(readFileSync(out, "utf8")).toBe(expected);
    // Renamed over, not rewritten in place: a reader never sees half a file.
    expect(statSync(out).ino).not.toBe(before);
    expect(readdirSync(scratch).filter((name) => name.endsWith(".tmp"))).toStrictEqual([]);
  });

  it("--output - is stdout; --output into a missing directory: exit 2, one line, nothing left behind", () => {
    const toStdout = vmballoon(["stats", "--file", sampleFile("seed-typical.txt"), "--format", "debugfs", "--output", "-"]);
    expect(toStdout.stderr).toBe("");
    expect(toStdout.status).toBe(0);
    expect(toStdout.stdout).toBe(sampleText("seed-typical.txt"));
    const out = join(scratch, "missing-dir", "vmballoon.prom");
    const run = vmballoon(["stats", "--file", sampleFile("seed-typical.txt"), "--format", "prometheus", "--output", out]);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr).toBe(`vmballoon: cannot write ${out}: no such file or directory\n`);
    expect(existsSync(join(scratch, "missing-dir"))).toBe(false);
  });

  // python3 gives vmballoon a non-blocking stdin, as some programs leave a
  // shared pipe, and feeds it in two halves: the second only once the first
  // has been read (the pipe's FIONREAD is 0), so that vmballoon has certainly
  // met a pipe with no data yet (EAGAIN). No fixed wait: the event is the read.
  const hasPython = spawnSync("python3", ["--version"]).status === 0;
  it.skipIf(!hasPython)("--file - on a non-blocking stdin with no data yet waits for it (EAGAIN is not an error) (needs python3)", () => {
    const feeder = `import array, fcntl, os, subprocess, sys, termios, time
text = open(sys.argv[1], "rb").read()
r, w = os.pipe()
fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
child = subprocess.Popen(sys.argv[2:], stdin=r)
os.close(r)
half = len(text) // 2
os.write(w, text[:half])
waiting = array.array("i", [0])
while True:
    fcntl.ioctl(w, termios.FIONREAD, waiting)
    if waiting[0] == 0:
        break
    time.sleep(0.005)
os.write(w, text[half:])
os.close(w)
sys.exit(child.wait())`;
    const text = sampleText("seed-typical.txt");
    const run = spawnSync("python3", ["-c", feeder, sampleFile("seed-typical.txt"), process.execPath, BIN, "stats", "--file", "-", "--format", "debugfs"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(text);
  });

  it("a missing file: exit 2, one line", () => {
    const run = vmballoon(["stats", "--file", join(scratch, "nothing-here.txt")]);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(`vmballoon: cannot read ${join(scratch, "nothing-here.txt")}: no such file or directory\n`);
  });

  it.each<[string, () => string, string, number]>([
    ["a loop of symbolic links", () => loopOfLinks(), "too many symbolic links encountered", EXIT.USAGE],
    ["a name too long", () => join(scratch, "x".repeat(300)), "name too long", EXIT.USAGE],
    ["a file that fails to read (EIO)", () => "/proc/self/mem", "i/o error", EXIT.FAILURE],
  ])("%s: one line in the system's words, no stack trace", (_, file, why, status) => {
    const path = file();
    const run = vmballoon(["stats", "--file", path]);
    expect(run.stderr).toBe(`vmballoon: cannot read ${path}: ${why}\n`);
    expect(run.status).toBe(status);
    expect(run.stdout).toBe("");
  });

  it.each([
    [["stats", "--format", "xml"], "--format must be debugfs, json or prometheus, not 'xml'"],
    [["stats", "--format"], "option `--format <format>` value is missing"],
    [["stats", "--file"], "option `--file <file>` value is missing"],
    [["stats", "--json", "--format", "prometheus"], "--json and --format prometheus disagree; give one"],
    [["stats", "--colour"], "Unknown option `--colour`"],
  ])("%j: exit 2 with a pointer to --help", (args, message) => {
    const run = vmballoon(args);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr).toBe(`vmballoon: ${message}\nRun 'vmballoon --help' for usage.\n`);
    expect(run.stdout).toBe("");
  });
});

describe("vmballoon stats without --file, where the kernel has no vmmemctl", () => {
  it.skipIf(existsSync(DEFAULT_FILE))("exits 69 or 77 with one line that says why (only where the kernel has no vmmemctl)", () => {
    const run = vmballoon(["stats"]);
    expect([EXIT.UNAVAILABLE, EXIT.NO_PERMISSION]).toContain(run.status);
    expect(run.stderr).toMatch(/^vmballoon: cannot read \/sys\/kernel\/debug\/vmmemctl: \S.*\n$/);
    expect(run.stderr.split("\n")).toHaveLength(2);
    expect(run.stdout).toBe("");
  });
});

describe("explaining a missing vmmemctl", () => {
  const vmware: HostFacts = { systemVendor: "VMware, Inc.", hypervisor: true, balloonDriver: "vmw_balloon", debugfsMounted: true };

  it.each<[string, HostFacts, string | undefined, string, RegExp]>([
    [
      "not a VMware guest",
      { ...vmware, systemVendor: "QEMU", balloonDriver: null },
      "ENOENT",
      "E_NO_VMMEMCTL",
      /not a VMware guest \(system vendor "QEMU"\).*--file/,
    ],
    ["bare metal", { ...vmware, systemVendor: undefined, hypervisor: false, balloonDriver: null }, "ENOENT", "E_NO_VMMEMCTL", /not a virtual machine/],
    ["no driver", { ...vmware, balloonDriver: null }, "ENOENT", "E_NO_VMMEMCTL", /balloon driver is not loaded \(load it with 'modprobe vmw_balloon'\)$/],
    [
      "no debugfs",
      { ...vmware, debugfsMounted: false },
      "ENOENT",
      "E_NO_VMMEMCTL",
      /debugfs is not mounted \(mount it with 'mount -t debugfs none \/sys\/kernel\/debug'\)$/,
    ],
    ["no driver and no debugfs", { ...vmware, balloonDriver: null, debugfsMounted: false }, "ENOENT", "E_NO_VMMEMCTL", /not loaded .*; debugfs is not mounted/],
    [
      "unknown hypervisor without the driver",
      { systemVendor: undefined, hypervisor: true, balloonDriver: null, debugfsMounted: true },
      "ENOENT",
      "E_NO_VMMEMCTL",
      /nothing says this machine is one/,
    ],
    ["everything there but the file", vmware, "ENOENT", "E_NO_VMMEMCTL", /loaded and debugfs is mounted, but there is no vmmemctl/],
    ["not root", vmware, "EACCES", "E_VMMEMCTL_DENIED", /permission denied; debugfs is for root only: run as root/],
  ])("%s", (_name, facts, errno, code, message) => {
    const error = explainMissing(DEFAULT_FILE, errno, facts);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(/^cannot read \/sys\/kernel\/debug\/vmmemctl: /);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain("\n");
  });

  it("maps not there to exit 69, not permitted to 77, and a garbled text to 2", () => {
    expect(exitStatusOf(new VmmemctlUnavailableError("x", "E_NO_VMMEMCTL"))).toBe(69);
    expect(exitStatusOf(new VmmemctlUnavailableError("x", "E_VMMEMCTL_DENIED"))).toBe(77);
    expect(exitStatusOf(new StatsParseError(1, "x", "y"))).toBe(2);
  });
});

describe("gatherFacts", () => {
  function tree(files: Record<string, string>, dirs: string[] = []): string {
    const root = mkdtempSync(join(scratch, "root-"));
    for (const dir of dirs) mkdirSync(join(root, dir), { recursive: true });
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(root, path, ".."), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return root;
  }

  it("reads a VMware guest with the driver loaded and debugfs mounted", () => {
    const root = tree(
      {
        "sys/class/dmi/id/sys_vendor": "VMware, Inc.\n",
        "proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu vme de pse hypervisor lahf_lm\n",
        "proc/mounts": "sysfs /sys sysfs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw,relatime 0 0\n",
      },
      ["sys/module/vmw_balloon"],
    );
    expect(gatherFacts(root)).toStrictEqual({ systemVendor: "VMware, Inc.", hypervisor: true, balloonDriver: "vmw_balloon", debugfsMounted: true });
  });

  it("reads bare metal without debugfs, and finds the old driver's name in /proc/modules", () => {
    const root = tree({
      "sys/class/dmi/id/sys_vendor": "Dell Inc.\n",
      "proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu vme de pse lahf_lm\n",
      "proc/mounts": "sysfs /sys sysfs rw 0 0\n",
      "proc/modules": "vmware_balloon 16384 0 - Live 0x0000000000000000\n",
    });
    expect(gatherFacts(root)).toStrictEqual({ systemVendor: "Dell Inc.", hypervisor: false, balloonDriver: "vmware_balloon", debugfsMounted: false });
  });

  it("says it cannot tell when the files are not there", () => {
    expect(gatherFacts(tree({}))).toStrictEqual({ systemVendor: undefined, hypervisor: undefined, balloonDriver: null, debugfsMounted: undefined });
  });

  it("readVmmemctl explains a missing default file from those facts", () => {
    const root = tree({ "sys/class/dmi/id/sys_vendor": "Amazon EC2\n", "proc/mounts": "" });
    expect(() => readVmmemctl(undefined, { file: join(root, "sys/kernel/debug/vmmemctl"), root })).toThrow(/not a VMware guest \(system vendor "Amazon EC2"\)/);
  });
});

describe("the summary's colour", () => {
  it("marks failed counts in yellow when colour is on, and has no escape codes when off", () => {
    const record = parse(sampleText("seed-typical.txt"));
    expect(summary("x", record, styler(true))).toContain("\u001b[33m (3 failed)\u001b[39m");
    const plain = summary("x", record, styler(false));
    expect(plain).not.toContain("\u001b[");
    expect(plain).toContain("LOCK 32773 (3 failed)");
  });
});
