// `npm run test:prometheus`: a real Prometheus server (Debian's package)
// scrapes `vmballoon exporter` over plain HTTP, and over TLS with basic auth,
// on 127.0.0.1 only; the values it stores, read back through its HTTP API,
// are compared with the vmmemctl texts they came from, in both layouts,
// including a text that changes between scrapes; promtool checks /metrics.
// Installs Prometheus itself (install.mjs); in CI (CI=true) a Prometheus that
// cannot be installed fails the suite instead of skipping it.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import bcrypt from "bcryptjs";
import { FIXTURES, vmballoon } from "../../packages/cli/src/cli-runner.js";
import { RunningExporter, fetchText, samplesOf, throwawayCertificate } from "../../packages/cli/src/test-exporter.js";
import { ensurePrometheus } from "./install.mjs";

const REPO = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
const LOGS = join(REPO, ".prometheus", "logs");
mkdirSync(LOGS, { recursive: true });
const APT_LOG = join(LOGS, "install.log");
writeFileSync(APT_LOG, "");

const installed = ensurePrometheus({ cacheDir: join(REPO, ".prometheus", "cache"), log: APT_LOG });
const WHY_NOT = "skip" in installed ? installed.skip : undefined;
const CI = !!process.env.CI && process.env.CI !== "false" && process.env.CI !== "0";
if (WHY_NOT !== undefined && CI)
  throw new Error(`test:prometheus: Prometheus could not be installed, and CI does not skip this suite: ${WHY_NOT} (see ${APT_LOG})`);
const tools = "skip" in installed ? undefined : installed;
if (tools) console.log(`test:prometheus: ${tools.version} (${tools.how})`);

const sample = (name: string) => readFileSync(join(FIXTURES, "debugfs", name), "utf8");
const scratch = mkdtempSync(join(tmpdir(), "vmballoon-prometheus-"));

/** Writes a text whole, as `run --stats-file` does (a temporary file renamed over it). */
function replace(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** A port of 127.0.0.1 free right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

interface Vector {
  metric: Record<string, string>;
  value: [number, string];
}

/** A sample's key as the exposition writes it: the name, then the labels in the order given, without job and instance. */
function keyOf(metric: Record<string, string>, order: readonly string[]): string {
  const { __name__: name, job: _job, instance: _instance, ...labels } = metric;
  const names = Object.keys(labels).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return names.length === 0 ? name! : `${name}{${names.map((label) => `${label}="${labels[label]}"`).join(",")}}`;
}

const LABEL_ORDER = ["layout", "operation", "capability", "set", "command", "page_size", "flavour", "result", "version", "nodeversion"];

/** What `vmballoon stats --format prometheus` says of a text: key → value. */
function statsView(text: string): Map<string, string> {
  const file = join(scratch, "stats-view.txt");
  writeFileSync(file, text);
  const run = vmballoon(["stats", "--file", file, "--format", "prometheus"]);
  expect(run.status).toBe(0);
  return samplesOf(run.stdout);
}

/**
 * A number of a vmmemctl text, read straight from it: the first line `label:
 * N`, or N's failures when asked. The seed prints its sizes with %d: a
 * negative one is the unsigned 32-bit value less 2^32.
 */
function fromText(text: string, label: string, failed = false): bigint {
  const match = new RegExp(`^${label}\\s*:\\s+(-?\\d+)(?: \\(\\s*(\\d+) failed\\))?`, "m").exec(text);
  if (!match) throw new Error(`no ${label} in the text`);
  const value = BigInt(failed ? match[2]! : match[1]!);
  return value < 0n ? value + 2n ** 32n : value;
}

/** A size of the text in bytes, as a double (what Prometheus stores). */
const bytesOf = (text: string, label: string) => Number(fromText(text, label) * 4096n);

describe.skipIf(WHY_NOT !== undefined)(
  `a real Prometheus server scrapes vmballoon exporter (needs Debian's prometheus package${WHY_NOT ? `: ${WHY_NOT}` : ""})`,
  () => {
    const seedFile = join(scratch, "seed-vmmemctl");
    const modernFile = join(scratch, "modern-vmmemctl");
    const garbledFile = join(scratch, "garbled-vmmemctl");
    let cert = "";
    const password = "a horse of another colour";
    let plain: RunningExporter;
    let secure: RunningExporter;
    let absent: RunningExporter;
    let garbled: RunningExporter;
    let prometheus: ChildProcessWithoutNullStreams;
    let prometheusLog = "";
    let api = "";
    const urls: Record<string, string> = {};

    beforeAll(async () => {
      cert = throwawayCertificate(scratch).cert;
      replace(seedFile, sample("seed-typical.txt"));
      replace(modernFile, sample("modern-busy.txt"));
      replace(garbledFile, sample("seed-typical.txt").replace("lock:  ", "lock?  "));
      const webConfig = join(scratch, "web-config.yml");
      writeFileSync(
        webConfig,
        `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: ${bcrypt.hashSync(password, 10)}\n`,
      );

      plain = new RunningExporter(["--listen", "127.0.0.1:0", "--file", seedFile]);
      secure = new RunningExporter(["--listen", "127.0.0.1:0", "--file", modernFile, "--web-config", webConfig]);
      absent = new RunningExporter(["--listen", "127.0.0.1:0", "--file", join(scratch, "no-driver")]);
      garbled = new RunningExporter(["--listen", "127.0.0.1:0", "--file", garbledFile]);
      [urls.plain, urls.secure, urls.absent, urls.garbled] = await Promise.all([plain.ready, secure.ready, absent.ready, garbled.ready]);
      const target = (url: string) => url.replace(/^https?:\/\//, "");

      const config = join(scratch, "prometheus.yml");
      writeFileSync(
        config,
        `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: plain
    static_configs: [{ targets: ["${target(urls.plain!)}"] }]
  - job_name: secure
    scheme: https
    tls_config: { ca_file: ${cert} }
    basic_auth: { username: prometheus, password: "${password}" }
    static_configs: [{ targets: ["${target(urls.secure!)}"] }]
  - job_name: wrong_password
    scheme: https
    tls_config: { ca_file: ${cert} }
    basic_auth: { username: prometheus, password: "not ${password}" }
    static_configs: [{ targets: ["${target(urls.secure!)}"] }]
  - job_name: absent
    static_configs: [{ targets: ["${target(urls.absent!)}"] }]
  - job_name: garbled
    static_configs: [{ targets: ["${target(urls.garbled!)}"] }]
`,
      );
      const check = spawnSync(tools!.promtool, ["check", "config", config], { encoding: "utf8" });
      expect(check.status, check.stdout + check.stderr).toBe(0);

      const port = await freePort();
      api = `http://127.0.0.1:${port}`;
      prometheus = spawn(tools!.prometheus, [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(scratch, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=info",
      ]);
      prometheus.stdout.resume();
      // Ready when it says so; a Prometheus that exits first fails the suite with its log.
      await new Promise<void>((resolve, reject) => {
        prometheus.stderr.setEncoding("utf8").on("data", (text: string) => {
          prometheusLog += text;
          if (prometheusLog.includes("Server is ready to receive web requests.")) resolve();
        });
        prometheus.once("exit", (status) => reject(new Error(`prometheus exited (${status}) before it was ready:\n${prometheusLog}`)));
      });
    }, 120_000);

    afterAll(async () => {
      writeFileSync(join(LOGS, "prometheus.log"), prometheusLog);
      if (prometheus && prometheus.exitCode === null) {
        prometheus.kill("SIGTERM");
        await once(prometheus, "exit");
      }
      const exits = await Promise.all([plain, secure, absent, garbled].filter(Boolean).map((exporter) => exporter.stop()));
      rmSync(scratch, { recursive: true, force: true });
      // Every exporter closed cleanly on SIGTERM.
      expect(exits.map(({ status }) => status)).toEqual([0, 0, 0, 0]);
    });

    async function query(promql: string): Promise<Vector[]> {
      const response = await fetchText(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`);
      expect(response.status, response.body).toBe(200);
      const answer = JSON.parse(response.body) as { status: string; data: { resultType: string; result: Vector[] } };
      expect(answer.status).toBe("success");
      return answer.data.result;
    }

    /**
     * Asks Prometheus until `promql` gives a result that `done` accepts, and
     * returns it: Prometheus scrapes once a second, so this waits for the
     * scrape it needs, however loaded the machine, up to the test's timeout.
     */
    async function when(promql: string, done: (result: Vector[]) => boolean): Promise<Vector[]> {
      for (;;) {
        const result = await query(promql);
        if (done(result)) return result;
        // The next scrape is at most a second away; ask again after a fifth of that.
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }

    /** The balloon's series Prometheus holds now for a job, key → value. */
    async function stored(job: string, sizeBytes: number): Promise<Map<string, string>> {
      const size = `vmware_balloon_size_bytes{job="${job}"}`;
      await when(size, (result) => result.length === 1 && Number(result[0]!.value[1]) === sizeBytes);
      const result = await query(`{job="${job}",__name__=~"vmware_balloon_.+"}`);
      return new Map(result.map(({ metric, value }) => [keyOf(metric, LABEL_ORDER), value[1]]));
    }

    /** Checks that Prometheus holds every sample of `stats --format prometheus` for the text, as the same number, and nothing else. */
    function expectSameAsText(held: Map<string, string>, text: string): void {
      const expected = statsView(text);
      expected.set("vmware_balloon_driver_loaded", "1");
      expect([...held.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [name, value] of expected) expect([name, Number(held.get(name))]).toEqual([name, Number(value)]);
    }

    it("over plain HTTP: the seed layout, every sample as the text says, read afresh when the text changes (to the modern layout too)", async () => {
      const texts = [sample("seed-typical.txt"), sample("seed-signed.txt"), sample("modern-resetting-basic.txt")];
      for (const [index, text] of texts.entries()) {
        if (index > 0) replace(seedFile, text);
        const held = await stored("plain", bytesOf(text, "current"));
        expectSameAsText(held, text);
        // Straight from the text, not through @vmballoon/stats: the target, and a command's failures.
        expect(Number(held.get("vmware_balloon_target_bytes"))).toBe(bytesOf(text, "target"));
        expect(Number(held.get('vmware_balloon_commands_total{command="lock",result="failure"}'))).toBe(Number(fromText(text, "lock", true)));
      }
      // Prometheus keeps the story: each text's size, in order, in the last minute of samples.
      const [range] = await query('vmware_balloon_size_bytes{job="plain"}[1m]').then((result) => result as unknown as { values: [number, string][] }[]);
      const sizes = range!.values.map(([, value]) => Number(value)).filter((value, i, all) => i === 0 || value !== all[i - 1]);
      expect(sizes).toEqual(texts.map((text) => bytesOf(text, "current")));
    }, 120_000);

    it("over TLS with basic auth: the modern layout, 64-bit counters as Prometheus stores them, and a change between scrapes", async () => {
      for (const [index, name] of ["modern-busy.txt", "modern-huge-counters.txt"].entries()) {
        const text = sample(name);
        if (index > 0) replace(modernFile, text);
        const held = await stored("secure", bytesOf(text, "current"));
        expectSameAsText(held, text);
        expect(held.get('vmware_balloon_info{layout="modern"}')).toBe("1");
      }
      const [up] = await query('up{job="secure"}');
      expect(up!.value[1]).toBe("1");
    }, 120_000);

    it("a wrong password: Prometheus gets 401, the target is down and nothing of the balloon is stored", async () => {
      const [health] = await when('up{job="wrong_password"}', (result) => result.length === 1);
      expect(health!.value[1]).toBe("0");
      const targets = JSON.parse((await fetchText(`${api}/api/v1/targets`)).body) as {
        data: { activeTargets: { labels: { job: string }; lastError: string }[] };
      };
      expect(targets.data.activeTargets.find((t) => t.labels.job === "wrong_password")!.lastError).toMatch(/401 Unauthorized/);
      expect(await query('{job="wrong_password",__name__=~"vmware_balloon_.+|vmballoon_exporter_.+"}')).toEqual([]);
    }, 120_000);

    it("no driver (no file): the target is up, vmware_balloon_driver_loaded 0, the scrape a success", async () => {
      await when('vmware_balloon_driver_loaded{job="absent"}', (result) => result.length === 1);
      const held = new Map((await query('{job="absent"}')).map(({ metric, value }) => [metric.__name__!, value[1]]));
      expect(held.get("up")).toBe("1");
      expect(held.get("vmware_balloon_driver_loaded")).toBe("0");
      expect(held.get("vmballoon_exporter_scrape_success")).toBe("1");
      expect(held.has("vmware_balloon_size_bytes")).toBe(false);
    }, 120_000);

    it("a garbled text: the target is up, driver_loaded 1, scrape_success 0, errors counted", async () => {
      const [errors] = await when('vmballoon_exporter_scrape_errors_total{job="garbled"}', (result) => result.length === 1 && Number(result[0]!.value[1]) >= 2);
      expect(Number(errors!.value[1])).toBeGreaterThanOrEqual(2);
      const held = new Map((await query('{job="garbled"}')).map(({ metric, value }) => [metric.__name__!, value[1]]));
      expect(held.get("up")).toBe("1");
      expect(held.get("vmware_balloon_driver_loaded")).toBe("1");
      expect(held.get("vmballoon_exporter_scrape_success")).toBe("0");
      expect(held.has("vmware_balloon_size_bytes")).toBe(false);
      const [build] = await query('vmballoon_exporter_build_info{job="garbled"}');
      expect(build!.metric.version).toMatch(/^\d+\.\d+\.\d+/);
    }, 120_000);

    it.each(["seed-typical.txt", "seed-signed.txt", "modern-busy.txt", "modern-huge-counters.txt", "modern-fresh.txt", "(no file)", "(garbled)"])(
      "promtool check metrics accepts /metrics for %s",
      async (name) => {
        const url = name === "(no file)" ? urls.absent! : name === "(garbled)" ? urls.garbled! : urls.plain!;
        if (!name.startsWith("(")) replace(seedFile, sample(name));
        const body = (await fetchText(`${url}/metrics`)).body;
        if (!name.startsWith("(")) expect(body).toContain(`vmware_balloon_size_bytes ${fromText(sample(name), "current") * 4096n}\n`);
        const check = spawnSync(tools!.promtool, ["check", "metrics"], { input: body, encoding: "utf8" });
        expect({ status: check.status, output: check.stdout + check.stderr }).toEqual({ status: 0, output: "" });
      },
    );
  },
);
