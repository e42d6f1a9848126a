import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { FIXTURES } from "./cli-runner.js";

const SOAK = fileURLToPath(new URL("./test-exporter-soak.mjs", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "vmballoon-exporter-soak-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SCRAPES = 100_000;
const EARLY = 10_000;
/**
 * What the heap in use after a full GC may grow by between the 10,000th and
 * the 100,000th scrape: 512 KiB is under 6 bytes a scrape. Runs of this test
 * saw it move by ±130 KiB either way; a leak of a response, a socket or a
 * parsed record per scrape (kilobytes each) would be hundreds of megabytes.
 */
const BOUND = 512 * 1024;

describe("vmballoon exporter runs for weeks", () => {
  it(`${SCRAPES.toLocaleString("en")} scrapes: every one 200, the heap after GC no bigger than at scrape ${EARLY.toLocaleString("en")} (± ${BOUND / 1024} KiB), then SIGTERM exits 0`, async () => {
    const file = join(scratch, "vmmemctl");
    writeFileSync(file, readFileSync(join(FIXTURES, "debugfs", "modern-busy.txt")));
    const child = spawn(process.execPath, ["--expose-gc", SOAK, file, String(SCRAPES), `${EARLY},${SCRAPES}`], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const status = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(status, stderr).toBe(0);
    const result = JSON.parse(stdout) as { heap: Record<string, number>; statuses: Record<string, number>; seconds: number; retried: number; exitCode: number };
    expect(result.statuses).toEqual({ 200: SCRAPES });
    expect(result.exitCode).toBe(0);
    expect(stderr).toMatch(/SIGTERM: server closed\n$/);
    const growth = result.heap[SCRAPES]! - result.heap[EARLY]!;
    console.log(
      `exporter soak: ${SCRAPES} scrapes in ${result.seconds.toFixed(1)} s; heap after GC ${(result.heap[EARLY]! / 2 ** 20).toFixed(2)} MiB at ${EARLY}, ${(result.heap[SCRAPES]! / 2 ** 20).toFixed(2)} MiB at ${SCRAPES} (${growth >= 0 ? "+" : ""}${(growth / 1024).toFixed(0)} KiB); ${result.retried} requests retried after a keep-alive connection closed under them`,
    );
    expect(Math.abs(growth)).toBeLessThan(BOUND);
  }, 900_000);
});
