import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it, vi } from "vitest";
import { parse, toJson } from "@vmballoon/stats";
import { EXIT } from "./errors.js";
import { BIN, FIXTURES, STACK, vmballoon } from "./cli-runner.js";
import { program } from "./program.js";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

// The program's own list of commands and options, so that a command added
// later is checked too. `__VERSION__` is the build's define; here, the package's.
vi.stubGlobal("__VERSION__", version);
const COMMANDS = program().commands.map((command) => ({
  name: command.name,
  rawName: command.rawName,
  description: command.description,
  options: command.options.map((option) => ({ rawName: option.rawName, description: option.description })),
}));

describe("--help and --version", () => {
  it("the program has the commands the README documents, in its order", () => {
    // The root README's CLI table: one row a command, `vmballoon NAME ...` in its first cell.
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const table = readme.split("\n## The CLI\n")[1]!.split("\n## ")[0]!;
    const documented = [...table.matchAll(/^\| `vmballoon (\w+)/gm)].map((match) => match[1]);
    expect(documented.length).toBeGreaterThan(0);
    expect(COMMANDS.map((command) => command.name)).toStrictEqual(documented);
  });

  it("vmballoon --help lists every command with its description, and exits 0", () => {
    const run = vmballoon(["--help"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout.split("\n")[0]).toBe(`vmballoon/${version}`);
    const listed = run.stdout.split("\n").filter((line) => /^ {2}\S/.test(line) && !line.startsWith("  $") && !line.startsWith("  -"));
    expect(listed.map((line) => line.trim().replace(/\s{2,}/, "  "))).toStrictEqual(COMMANDS.map((command) => `${command.rawName}  ${command.description}`));
  });

  it("vmballoon with no command prints the help, exit 0, nothing on stderr", () => {
    const bare = vmballoon([]);
    expect(bare.stderr).toBe("");
    expect(bare.status).toBe(0);
    expect(bare.stdout).toBe(vmballoon(["--help"]).stdout);
    for (const command of COMMANDS) expect(bare.stdout).toContain(`  ${command.name} `);
  });

  it.each(COMMANDS)("vmballoon $name --help shows its usage line and every option with its description, and exits 0", ({ name, rawName, options }) => {
    const run = vmballoon([name, "--help"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`Usage:\n  $ vmballoon ${rawName}\n`);
    const optionLines = run.stdout.split("Options:\n")[1]!.split("\n\n")[0]!.split("\n");
    expect(optionLines.map((line) => line.trim().replace(/\s{2,}/, "  "))).toStrictEqual([
      ...options.map((option) => `${option.rawName}  ${option.description}`),
      "-h, --help  Display this message",
    ]);
  });

  it("vmballoon stats --help names its file and formats", () => {
    const run = vmballoon(["stats", "--help"]);
    expect(run.stdout).toContain("--file <file>");
    expect(run.stdout).toContain("/sys/kernel/debug/vmmemctl");
    expect(run.stdout).toMatch(/--format <format>.*debugfs.*json.*prometheus/);
  });

  it.each(["--version", "-v"])("%s prints the package's version, the platform and Node's", (flag) => {
    const run = vmballoon([flag]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`vmballoon/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
  });
});

describe("bad usage: a usage hint and exit 2, never a stack trace", () => {
  it.each([
    [["bogus"], /^vmballoon: unknown command 'bogus'\n/],
    [["--bogus"], /^vmballoon: Unknown option `--bogus`\n/],
    [["simulate", "--bogus"], /^vmballoon: Unknown option `--bogus`\n/],
    [["stats", "--bogus"], /^vmballoon: Unknown option `--bogus`\n/],
    [["simulate", "--scenario"], /--scenario/],
    [["simulate", "--driver", "linux"], /^vmballoon: --driver must be seed or modern, not "linux"\n/],
    [["run", "--driver", "bsd"], /^vmballoon: --driver must be seed or modern, not "bsd"\n/],
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
    expect(run.stderr).toBe("vmballoon: stdin: cycles: missing\n");
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stdout).toBe("");
  });
});

describe("--json writes one valid JSON document on stdout", () => {
  it("simulate --json: the summary's fields, in order, and nothing else", () => {
    const run = vmballoon(["simulate", "--json"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(Object.keys(summary)).toStrictEqual(["driver", "scenario", "cycles", "loaded", "pageSize", "guest", "final", "peak", "unload", "debugfs"]);
    expect(summary).toMatchObject({ driver: "seed", scenario: "built-in scenario", loaded: true, pageSize: 4096 });
    expect(run.stdout).toBe(`${JSON.stringify(summary, null, 2)}\n`);
  });

  it("stats --json: toJson's document, as the library makes it", () => {
    const file = join(FIXTURES, "debugfs", "seed-zero.txt");
    const run = vmballoon(["stats", "--json", "--file", file]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`${JSON.stringify(toJson(parse(readFileSync(file, "utf8"))), null, 2)}\n`);
  });
});

describe("a lone '-' as an option's value", () => {
  it("simulate --trace - writes the trace to stdout", () => {
    const run = vmballoon(["simulate", "--scenario", join(FIXTURES, "get-target-errors.scenario.json"), "--trace", "-"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(gunzipSync(readFileSync(join(FIXTURES, "get-target-errors.trace.jsonl.gz"))).toString("utf8"));
  });

  it("stats --file - reads stdin", () => {
    const text = readFileSync(join(FIXTURES, "debugfs", "seed-signed.txt"), "utf8");
    const run = vmballoon(["stats", "--file", "-", "--format", "debugfs"], { input: text });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(text);
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
