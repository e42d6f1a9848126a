import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { FIXTURES, STACK, vmballoon } from "./cli-runner.js";

// Every fixture goes through @vmballoon/host's own tests; here one of each policy goes through the built CLI.
const POLICY = join(FIXTURES, "policy");
const fixture = (path: string) => ({
  input: join(POLICY, `${path}.input.json`),
  output: JSON.parse(readFileSync(join(POLICY, `${path}.output.json`), "utf8")) as unknown,
});

describe("vmballoon policy --input F --json", () => {
  test.each(["esx/random-7", "mom/random-2", "proxmox/shrink-free-first"])("%s: exactly the fixture's output, and nothing else", (path) => {
    const { input, output } = fixture(path);
    const run = vmballoon(["policy", "--input", input, "--json"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout.endsWith("}\n")).toBe(true);
    expect(JSON.parse(run.stdout)).toStrictEqual(output);
  });

  test("reads stdin with --input -", () => {
    const { input, output } = fixture("esx/idle-tax-75");
    const run = vmballoon(["policy", "--input", "-", "--json"], { input: readFileSync(input, "utf8") });
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toStrictEqual(output);
  });
});

describe("vmballoon policy --input F, for people", () => {
  test("a table of each VM's targets in pages and MiB, then why", () => {
    const run = vmballoon(["policy", "--input", fixture("esx/idle-tax-75").input]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^vmballoon policy — .*idle-tax-75\.input\.json: esx, state soft$/);
    expect(lines[1]).toBe("  host 97536 pages (381.0 MiB), free -33536 pages (-131.0 MiB)");
    expect(lines[3]).toMatch(/^ {2}idle +26148 102\.1 MiB +39388 153\.9 MiB +0$/);
    expect(lines[4]).toMatch(/^ {2}busy +65536 256\.0 MiB +0 +0\.0 MiB +unchanged$/);
    expect(lines[5]).toBe("why");
    expect(lines.slice(6)).toContain("  reclaim: free -33536 is below the high threshold 5852 by 39388 pages (k = 4)");
  });

  test("MoM: which rule ran", () => {
    const run = vmballoon(["policy", "--input", fixture("mom/relaxed").input]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/\n {2}host_free_percent 0\.5000 ≥ pressure_threshold 0\.2: grow_guest\n/);
  });
});

describe("vmballoon policy, bad input: one line, exit status 2", () => {
  test.each<[string, string[], string | undefined, RegExp]>([
    ["no --input", ["policy", "--json"], undefined, /^vmballoon: policy needs --input F: /],
    [
      "a field that breaks a rule",
      ["policy", "--input", "-"],
      '{"policy":"esx","params":{},"host":{}}',
      /^vmballoon: stdin: host\.pages: must be a whole number ≥ 1, not nothing$/,
    ],
    ["text that is not JSON", ["policy", "--input", "-", "--json"], "{", /^vmballoon: stdin: not JSON: /],
    [
      "a file that is not there",
      ["policy", "--input", "/nonexistent/round.json"],
      undefined,
      /^vmballoon: cannot read the round's input \/nonexistent\/round\.json: no such file or directory$/,
    ],
  ])("%s", (_, args, input, message) => {
    const run = vmballoon(args, input === undefined ? {} : { input });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr.split("\n")[0]).toMatch(message);
    expect(run.stderr).not.toMatch(STACK);
  });
});
