/**
 * Debian's chromium for the browser suite: found at /usr/bin/chromium, or
 * installed with apt-get (as root) when it is missing. Never a browser
 * download of its own.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export const CHROMIUM = "/usr/bin/chromium";

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };

function aptInstall(): boolean {
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { env: APT_ENV, stdio: "ignore", timeout: 600_000 }).status === 0;
  if (install()) return true;
  spawnSync("apt-get", ["update"], { env: APT_ENV, stdio: "ignore", timeout: 300_000 });
  return install();
}

/** Chromium is there, or this process may install it (root). */
export function canHaveChromium(): boolean {
  return existsSync(CHROMIUM) || process.getuid?.() === 0;
}

/** The browser's path, or why there is none (not root, apt-get failed). */
export function ensureChromium(): { path: string } | { missing: string } {
  if (existsSync(CHROMIUM)) return { path: CHROMIUM };
  if (process.getuid?.() !== 0) return { missing: `${CHROMIUM} is not there, and installing it (apt-get install chromium) needs root` };
  if (aptInstall() && existsSync(CHROMIUM)) return { path: CHROMIUM };
  return { missing: "apt-get install -y chromium failed" };
}
