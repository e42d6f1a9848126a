// Prometheus and promtool for the Prometheus suite, from Debian's archive:
// the binaries on PATH when the `prometheus` package is installed, else the
// two binaries of that ONE package, `apt-get download`ed and unpacked into
// .prometheus/cache/ (as vm/lib/prereqs.mjs does for the kernel): no system
// install, so no Prometheus service is started on the machine (the package's
// init script would start one on :9090). A warm run does no apt work.
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { aptUpdate, downloadAndExtractTo } from "../../vm/lib/prereqs.mjs";
import { have, run } from "../../vm/lib/sh.mjs";

/**
 * @returns {{ prometheus: string, promtool: string, version: string, how: string } | { skip: string }}
 */
export function ensurePrometheus({ cacheDir, log }) {
  if (have("prometheus") && have("promtool")) return found("prometheus", "promtool", "on PATH");
  const bin = join(cacheDir, "bin");
  const prometheus = join(bin, "prometheus");
  const promtool = join(bin, "promtool");
  if (existsSync(prometheus) && existsSync(promtool)) return found(prometheus, promtool, `cached in ${bin}`);
  if (!have("apt-get") || !have("dpkg-deb")) return { skip: "no apt-get or dpkg-deb: not a Debian machine" };

  mkdirSync(cacheDir, { recursive: true });
  let fetched = downloadAndExtractTo("prometheus", "./usr/bin/*", cacheDir, log);
  if (!fetched.ok) {
    // Stale package lists may name a version the archive no longer has.
    aptUpdate(log);
    fetched = downloadAndExtractTo("prometheus", "./usr/bin/*", cacheDir, log);
  }
  if (!fetched.ok) return { skip: `${fetched.why}` };
  mkdirSync(bin, { recursive: true });
  for (const name of ["prometheus", "promtool"]) {
    const from = join(fetched.tmp, "usr", "bin", name);
    if (!existsSync(from)) return { skip: `Debian's prometheus package holds no /usr/bin/${name}` };
    renameSync(from, join(bin, name));
    chmodSync(join(bin, name), 0o755);
  }
  rmSync(fetched.tmp, { recursive: true, force: true });
  rmSync(fetched.deb, { force: true });
  return found(prometheus, promtool, `apt-get download prometheus, unpacked into ${bin}`);
}

function found(prometheus, promtool, how) {
  const r = run(prometheus, ["--version"], { allowFail: true });
  if (!r.ok) return { skip: `${prometheus} --version failed: ${r.output.trim().split("\n")[0]}` };
  return { prometheus, promtool, version: r.output.split("\n")[0].trim(), how };
}
