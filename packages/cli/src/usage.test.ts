import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { EXIT } from "./errors.js";
import { BIN, FIXTURES, STACK, vmballoon } from "./cli-runner.js";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
const COMMANDS = ["simulate", "stats"];

describe("--help and --version", () => {
  it("vmballoon --help lists every command and exits 0", () => {
    const run = vmballoon(["--help"]);
    expect(run.status).toBe(0);
    for (const command of COMMANDS) expect(run.stdout).toMatch(new RegExp(`^\\s+${command}\\s+\\S`, "m"));
    expect(run.stderr).toBe("");
  });

  it("vmballoon with no command shows the same help", () => {
    expect(vmballoon([]).stdout).toBe(vmballoon(["--help"]).stdout);
  });

  it.each(COMMANDS)("vmballoon %s --help shows the command's options and exits 0", (command) => {
    const run = vmballoon([command, "--help"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`$ vmballoon ${command}`);
    expect(run.stdout).toMatch(/Options:\n/);
  });

  it("vmballoon stats --help names its file and formats", () => {
    const run = vmballoon(["stats", "--help"]);
    expect(run.stdout).toContain("--file <file>");
    expect(run.stdout).toContain("/sys/kernel/debug/vmmemctl");
    expect(run.stdout).toMatch(/--format <format>.*debugfs.*json.*prometheus/);
  });

  it("--version prints the package's version", () => {
    for (const flag of ["--version", "-v"]) {
      const run = vmballoon([flag]);
      expect(run.status).toBe(0);
      expect(run.stdout).toContain(version);
    }
  });
});

describe("bad usage: a usage hint and exit 2, never a stack trace", () => {
  it.each([
    [["bogus"], /^vmballoon: unknown command 'bogus'\n/],
    [["--bogus"], /^vmballoon: Unknown option `--bogus`\n/],
    [["simulate", "--bogus"], /^vmballoon: Unknown option `--bogus`\n/],
    [["stats", "--bogus"], /^vmballoon: Unknown option `--bogus`\n/],
    [["simulate", "--scenario"], /--scenario/],
  ])("vmballoon %j", (args, message) => {
    const run = vmballoon(args);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toMatch(/Run 'vmballoon --help' for usage\.\n$/);
    expect(run.stderr).not.toMatch(STACK);
    expect(run.stdout).toBe("");
  });

  it.each([
    [["fr\nob"], "vmballoon: unknown command 'fr\\nob'", true],
    [["simulate", "--bo\ngus"], "vmballoon: Unknown option `--bo\\ngus`", true],
    [["stats", "--format", "x\ny"], "vmballoon: --format must be debugfs, json or prometheus, not 'x\\ny'", true],
    [["stats", "--file", "/nonexistent/a\rb\u2028c"], "vmballoon: cannot read /nonexistent/a\\rb\\u2028c: no such file or directory", false],
  ])("a line break in what was typed stays escaped in the one line (%j)", (args, line, hint) => {
    const run = vmballoon(args);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr).toBe(`${line}\n${hint ? "Run 'vmballoon --help' for usage.\n" : ""}`);
  });

  it("a scenario on stdin that is not JSON: one line naming stdin, the line breaks V8 quotes escaped", () => {
    const run = vmballoon(["simulate", "--scenario", "-"], { input: "vm\nhost\n" });
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr).toBe(`vmballoon: stdin: not valid JSON: Unexpected token 'v', "vm\\nhost\\n" is not valid JSON\n`);
  });

  it("bad input is one line, with no usage hint: a scenario that breaks a rule", () => {
    const run = vmballoon(["simulate", "--scenario", "-"], { input: "{}" });
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr.split("\n")).toHaveLength(2);
    expect(run.stderr).not.toMatch(STACK);
  });
});

describe("--json writes one valid JSON document on stdout", () => {
  it("simulate --json", () => {
    const run = vmballoon(["simulate", "--json"]);
    expect(run.status).toBe(0);
    expect(() => JSON.parse(run.stdout)).not.toThrow();
  });

  it("stats --json", () => {
    const run = vmballoon(["stats", "--json", "--file", join(FIXTURES, "debugfs", "seed-zero.txt")]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ layout: "seed", target: 0 });
  });
});

describe("a lone '-' as an option's value", () => {
  it("simulate --trace - writes the trace to stdout", () => {
    const run = vmballoon(["simulate", "--scenario", join(FIXTURES, "get-target-errors.scenario.json"), "--trace", "-"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(gunzipSync(readFileSync(join(FIXTURES, "get-target-errors.trace.jsonl.gz"))).toString("utf8"));
  });

  it("stats --file - reads stdin", () => {
    const text = readFileSync(join(FIXTURES, "debugfs", "seed-signed.txt"), "utf8");
    expect(vmballoon(["stats", "--file", "-", "--format", "debugfs"], { input: text }).stdout).toBe(text);
  });
});

describe("colour", () => {
  const seed = join(FIXTURES, "debugfs", "seed-typical.txt");
  const ESC = "\u001b[";

  it("never on a pipe, even with FORCE_COLOR", () => {
    expect(vmballoon(["stats", "--file", seed]).stdout).not.toContain(ESC);
    expect(vmballoon(["stats", "--file", seed], { env: { FORCE_COLOR: "1" } }).stdout).not.toContain(ESC);
    expect(vmballoon(["simulate"], { env: { FORCE_COLOR: "1" } }).stdout).not.toContain(ESC);
  });

  // util-linux's script(1) gives the program a real pseudo-terminal.
  const hasScript = spawnSync("script", ["--version"]).status === 0;
  function onTerminal(args: string[], env: Record<string, string | undefined>): string {
    const command = [process.execPath, BIN, ...args].map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(" ");
    const result = spawnSync("script", ["-qec", command, "/dev/null"], {
      encoding: "utf8",
      // A clean environment: CI=1, NODE_DISABLE_COLORS or FORCE_COLOR=0 in the caller's would make Node
      // itself report a colourless terminal (as CI machines do), which is not what this test is about.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: "xterm-256color", ...env },
      timeout: 60_000,
    });
    expect(result.status).toBe(0);
    return result.stdout;
  }

  it.skipIf(!hasScript).each([
    ["stats", ["stats", "--file", seed]],
    ["simulate", ["simulate"]],
  ])("on a terminal: vmballoon %s has colour, and none with NO_COLOR (needs script, from util-linux)", (_name, args) => {
    expect(onTerminal(args, {})).toContain(ESC);
    expect(onTerminal(args, { NO_COLOR: "1" })).not.toContain(ESC);
  });
});
