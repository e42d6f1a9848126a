import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { parse, toPrometheus } from "@vmballoon/stats";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createExporter, type MetricsSource } from "./exporter/server.js";
import { PLAIN, loadWebConfig, type WebConfig } from "./exporter/web-config.js";
import { DEFAULT_PORT, parseListen } from "./commands/exporter.js";
import { EXIT, exitStatusOf } from "./errors.js";
import { FIXTURES, STACK, vmballoon } from "./cli-runner.js";
import { RunningExporter, fetchText, samplesOf, throwawayCertificate } from "./test-exporter.js";

const scratch = mkdtempSync(join(tmpdir(), "vmballoon-exporter-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const sample = (name: string) => readFileSync(join(FIXTURES, "debugfs", name), "utf8");
const write = (name: string, text: string) => {
  const file = join(scratch, name);
  writeFileSync(file, text);
  return file;
};

/** Servers started in-process by a test, closed after it. */
const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

const logged: string[] = [];

/** The exporter's server in this process, on a free port of 127.0.0.1; its base URL. */
async function serve(source: MetricsSource, web: WebConfig = PLAIN): Promise<string> {
  const server = createExporter(source, web, (line) => logged.push(line));
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `${web.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const fileSource = (file: string): MetricsSource => ({ file, root: undefined });

/** What `run` throws (undefined when it does not). */
function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("vmballoon exporter: routes", () => {
  it("GET /metrics: 200, the exposition format, the same families as stats --format prometheus, then the exporter's own", async () => {
    const file = write("routes.txt", sample("modern-busy.txt"));
    const url = await serve(fileSource(file));
    const response = await fetchText(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    // One code path: the balloon's families are @vmballoon/stats' view, byte for byte, at the start.
    expect(response.body.startsWith(toPrometheus(parse(sample("modern-busy.txt"))))).toBe(true);
    const samples = samplesOf(response.body);
    expect(samples.get("vmware_balloon_size_bytes")).toBe(String(2530829 * 4096));
    expect(samples.get("vmware_balloon_driver_loaded")).toBe("1");
    expect(samples.get("vmballoon_exporter_scrape_success")).toBe("1");
    expect(samples.get("vmballoon_exporter_scrape_errors_total")).toBe("0");
    expect(Number(samples.get("vmballoon_exporter_scrape_duration_seconds"))).toBeGreaterThan(0);
    expect([...samples.keys()].find((key) => key.startsWith("vmballoon_exporter_build_info{"))).toMatch(/version="[^"]+",nodeversion="v\d+/);
  });

  it("GET /metrics?query is /metrics; GET / is a landing page that links to it; anything else is 404", async () => {
    const url = await serve(fileSource(write("landing.txt", sample("seed-typical.txt"))));
    expect((await fetchText(`${url}/metrics?name[]=x`)).status).toBe(200);
    const landing = await fetchText(`${url}/`);
    expect(landing.status).toBe(200);
    expect(landing.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(landing.body).toMatch(/<a href="metrics">/);
    for (const path of ["/metric", "/metrics/", "/favicon.ico", "/../metrics"]) {
      const response = await fetchText(`${url}${path}`);
      if (path === "/../metrics")
        expect(response.status).toBe(200); // the client resolves it to /metrics
      else expect([path, response.status, response.body]).toEqual([path, 404, "404 page not found\n"]);
    }
  });

  it("HEAD: the headers of GET, no body; other methods: 405 with Allow", async () => {
    const url = await serve(fileSource(write("head.txt", sample("seed-typical.txt"))));
    const get = await fetchText(`${url}/metrics`);
    const head = await fetchText(`${url}/metrics`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(head.headers["content-type"]).toBe(get.headers["content-type"]);
    // The duration's digits may differ by a character or two between two scrapes.
    expect(Math.abs(Number(head.headers["content-length"]) - Buffer.byteLength(get.body))).toBeLessThan(8);
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS"]) {
      const response = await fetchText(`${url}/metrics`, { method });
      expect([method, response.status, response.headers.allow]).toEqual([method, 405, "GET, HEAD"]);
    }
  });
});

describe("vmballoon exporter: the file at each scrape", () => {
  it("a file that is not there: 200, vmware_balloon_driver_loaded 0, no balloon metrics, the scrape a success", async () => {
    const url = await serve(fileSource(join(scratch, "never-written.txt")));
    const response = await fetchText(`${url}/metrics`);
    expect(response.status).toBe(200);
    const samples = samplesOf(response.body);
    expect(samples.get("vmware_balloon_driver_loaded")).toBe("0");
    expect(samples.get("vmballoon_exporter_scrape_success")).toBe("1");
    expect([...samples.keys()].filter((key) => key.startsWith("vmware_balloon_") && key !== "vmware_balloon_driver_loaded")).toEqual([]);
  });

  it("the kernel's file missing while /sys says the driver is loaded (debugfs not mounted): driver_loaded 1, scrape_success 0, why in the log", async () => {
    const root = mkdtempSync(join(scratch, "root-"));
    mkdirSync(join(root, "sys", "module", "vmw_balloon"), { recursive: true });
    logged.length = 0;
    const url = await serve({ file: join(root, "sys", "kernel", "debug", "vmmemctl"), root });
    const samples = samplesOf((await fetchText(`${url}/metrics`)).body);
    expect(samples.get("vmware_balloon_driver_loaded")).toBe("1");
    expect(samples.get("vmballoon_exporter_scrape_success")).toBe("0");
    expect(logged).toEqual([expect.stringMatching(/vmmemctl: no such file, though the balloon driver is loaded \(debugfs not mounted\?\)$/)]);
  });

  it("a garbled file: 200, driver_loaded 1, scrape_success 0, errors counted, one line in the log; then a good one is read again", async () => {
    const file = write("garbled.txt", "MemTotal: 1 kB\n");
    logged.length = 0;
    const url = await serve(fileSource(file));
    for (let i = 1; i <= 3; i++) {
      const response = await fetchText(`${url}/metrics`);
      expect(response.status).toBe(200);
      const samples = samplesOf(response.body);
      expect(samples.get("vmware_balloon_driver_loaded")).toBe("1");
      expect(samples.get("vmballoon_exporter_scrape_success")).toBe("0");
      expect(samples.get("vmballoon_exporter_scrape_errors_total")).toBe(String(i));
      expect(samples.has("vmware_balloon_size_bytes")).toBe(false);
    }
    expect(logged).toEqual([
      `${file}: line 1: expected "target:" (the seed's layout) or "balloon capabilities" (today's Linux layout), found "MemTotal: 1 kB"`,
    ]);
    writeFileSync(file, sample("seed-zero.txt"));
    const samples = samplesOf((await fetchText(`${url}/metrics`)).body);
    expect(samples.get("vmballoon_exporter_scrape_success")).toBe("1");
    expect(samples.get("vmballoon_exporter_scrape_errors_total")).toBe("3");
    expect(logged).toHaveLength(2);
  });

  it("a text that changes between scrapes (replaced as run --stats-file does, then removed, then back) is read afresh each time", async () => {
    const file = join(scratch, "changing.txt");
    const url = await serve(fileSource(file));
    const size = async () => samplesOf((await fetchText(`${url}/metrics`)).body).get("vmware_balloon_size_bytes");
    const seen: (string | undefined)[] = [];
    for (const text of [sample("seed-typical.txt"), sample("modern-busy.txt"), undefined, sample("seed-zero.txt")]) {
      if (text === undefined) rmSync(file);
      else {
        writeFileSync(`${file}.tmp`, text);
        renameSync(`${file}.tmp`, file);
      }
      seen.push(await size());
    }
    expect(seen).toEqual([String(32770 * 4096), String(2530829 * 4096), undefined, "0"]);
  });

  it("serves concurrent scrapes, each whole", async () => {
    const url = await serve(fileSource(write("concurrent.txt", sample("modern-huge-counters.txt"))));
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const responses = await Promise.all(Array.from({ length: 64 }, () => fetchText(`${url}/metrics`, { agent })));
    agent.destroy();
    const expected = toPrometheus(parse(sample("modern-huge-counters.txt")));
    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(response.body.startsWith(expected)).toBe(true);
      expect(response.body).toMatch(/\nvmballoon_exporter_scrape_errors_total 0\n$/);
    }
  });
});

describe("vmballoon exporter --web-config: basic auth and TLS", () => {
  const hash = bcrypt.hashSync("right horse", 4);
  const folder = mkdtempSync(join(scratch, "tls-"));
  const { cert } = throwawayCertificate(folder);
  const ca = readFileSync(cert, "utf8");
  // A key of another certificate, for "a key that does not match".
  writeFileSync(join(folder, "other.key"), readFileSync(throwawayCertificate(mkdtempSync(join(folder, "other-"))).key));

  it("basic auth: no credentials, a wrong password or an unknown user get 401 with WWW-Authenticate and no metrics; the right one gets them", async () => {
    const config = write("auth.yml", `basic_auth_users:\n  prometheus: ${hash}\n  other: ${hash.replace(/^\$2b\$/, "$2y$")}\n`);
    const url = await serve(fileSource(write("auth.txt", sample("seed-typical.txt"))), loadWebConfig(config));
    for (const auth of [undefined, "prometheus:wrong horse", "nobody:right horse", "prometheus:", "prometheus"]) {
      for (const path of ["/metrics", "/", "/nowhere"]) {
        const response = await fetchText(`${url}${path}`, auth === undefined ? {} : { auth });
        expect([auth, path, response.status]).toEqual([auth, path, 401]);
        expect(response.headers["www-authenticate"]).toMatch(/^Basic\b/);
        expect(response.body).toBe("Unauthorized\n");
      }
    }
    const right = await fetchText(`${url}/metrics`, { auth: "prometheus:right horse" });
    expect(right.status).toBe(200);
    expect(samplesOf(right.body).get("vmware_balloon_size_bytes")).toBe(String(32770 * 4096));
    // htpasswd's $2y$ hashes (exporter-toolkit's documentation makes them so) work too.
    expect((await fetchText(`${url}/metrics`, { auth: "other:right horse" })).status).toBe(200);
    // Remembered results are per password: the wrong one is still refused after the right one was accepted.
    expect((await fetchText(`${url}/metrics`, { auth: "prometheus:wrong horse" })).status).toBe(401);
  });

  it("TLS with cert_file and key_file relative to the config's folder, and basic auth: HTTPS only", async () => {
    const config = join(folder, "web.yml");
    writeFileSync(
      config,
      `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\nbasic_auth_users:\n  prometheus: '${hash}'\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n`,
    );
    const url = await serve(fileSource(write("tls.txt", sample("modern-fresh.txt"))), loadWebConfig(config));
    expect(url).toMatch(/^https:/);
    const response = await fetchText(`${url}/metrics`, { ca, auth: "prometheus:right horse" });
    expect(response.status).toBe(200);
    expect(response.headers["x-content-type-options"]).toBe("nosniff");
    expect(samplesOf(response.body).get('vmware_balloon_info{layout="modern"}')).toBe("1");
    expect((await fetchText(`${url}/metrics`, { ca })).status).toBe(401);
    // Plain HTTP to the HTTPS port gets no metrics.
    const plain = await fetchText(`${url.replace("https:", "http:")}/metrics`).catch((error: Error) => ({ status: 0, body: error.message }));
    expect(plain.status).not.toBe(200);
    // A client that does not trust the certificate does not connect.
    await expect(fetchText(`${url}/metrics`, { auth: "prometheus:right horse" })).rejects.toThrow(/self[- ]signed/);
  });

  it.each([
    ["RequireAndVerifyClientCert", { none: "refused", trusted: 200, untrusted: "refused" }],
    ["VerifyClientCertIfGiven", { none: 200, trusted: 200, untrusted: 403 }],
    ["RequireAnyClientCert", { none: 403, trusted: 200, untrusted: 200 }],
  ])("client certificates, client_auth_type %s", async (type, expected) => {
    // The server's own certificate is the client CA: a client presenting it is trusted; another self-signed one is not.
    const config = join(folder, `client-${type}.yml`);
    writeFileSync(config, `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: server.crt\n  client_auth_type: ${type}\n`);
    const url = await serve(fileSource(write("client.txt", sample("seed-zero.txt"))), loadWebConfig(config));
    const stranger = throwawayCertificate(mkdtempSync(join(folder, "stranger-")));
    const outcome = async (client: { cert?: string; key?: string }) => {
      try {
        return (await fetchText(`${url}/metrics`, { ca, ...client })).status;
      } catch {
        return "refused";
      }
    };
    expect({
      none: await outcome({}),
      trusted: await outcome({ cert: ca, key: readFileSync(join(folder, "server.key"), "utf8") }),
      untrusted: await outcome({ cert: readFileSync(stranger.cert, "utf8"), key: readFileSync(stranger.key, "utf8") }),
    }).toEqual(expected);
  });

  it.each([
    ["an unknown top-level key", "tls_config:\n  cert_file: x\n", /tls_config: unknown field/],
    [
      "an unknown key in tls_server_config",
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  ca_file: x\n",
      /tls_server_config\.ca_file: unknown field/,
    ],
    ["a password that is not a bcrypt hash", "basic_auth_users:\n  prometheus: secret\n", /basic_auth_users\.prometheus: not a bcrypt hash/],
    ["YAML that does not parse", "basic_auth_users:\n  - a\n b: [\n", /line \d+: /],
    ["a key given twice", "basic_auth_users: {}\nbasic_auth_users: {}\n", /line 2: Map keys must be unique/],
    ["a certificate without its key", "tls_server_config:\n  cert_file: server.crt\n", /missing one of key or key_file/],
    [
      "a certificate file that is not there",
      "tls_server_config:\n  cert_file: nowhere.crt\n  key_file: server.key\n",
      /cannot read cert_file .*nowhere\.crt: no such file or directory/,
    ],
    ["a key that does not match the certificate", "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n", /cannot use the certificate and key/],
    ["an unknown TLS version", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS99\n", /unknown TLS version 'TLS99'/],
    ["a header exporter-toolkit does not allow", "http_server_config:\n  headers:\n    Server: me\n", /HTTP header 'Server' can not be configured/],
    ["a wrong type", "tls_server_config:\n  cert_file: [a]\n", /cert_file: expected a string, found a list/],
    ["a rate limit (not implemented)", "rate_limit:\n  interval: 1s\n  burst: 20\n", /rate_limit\.interval: a rate limit is not supported/],
    ["client SAN checks (not implemented)", "tls_server_config:\n  client_allowed_sans: [a]\n", /client_allowed_sans: not supported/],
  ])("refuses %s: one line, exit status 2", (_what, text, message) => {
    const config = join(folder, "bad.yml");
    writeFileSync(config, text);
    const thrown = thrownBy(() => loadWebConfig(config));
    expect(exitStatusOf(thrown)).toBe(EXIT.USAGE);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain("\n");
  });

  it("an empty web config, or one whose rate limit's interval is 0 (no limit), is plain HTTP without auth, as in exporter-toolkit", () => {
    expect(loadWebConfig(write("empty.yml", ""))).toEqual(PLAIN);
    for (const interval of ["0", "0s", "0ms", "0h0m0s"])
      expect(loadWebConfig(write("no-limit.yml", `rate_limit:\n  interval: ${interval}\n  burst: 20\n`))).toEqual(PLAIN);
  });

  it("through the CLI: a missing web config, or a bad one, is one line and exit status 2 before listening", () => {
    const missing = vmballoon(["exporter", "--listen", "127.0.0.1:0", "--web-config", join(scratch, "no-such.yml")]);
    expect(missing.status).toBe(EXIT.USAGE);
    expect(missing.stderr).toBe(`vmballoon: cannot read the web config ${join(scratch, "no-such.yml")}: no such file or directory\n`);
    const bad = vmballoon(["exporter", "--listen", "127.0.0.1:0", "--web-config", write("bad-cli.yml", "basic_auth_users:\n  u: plain\n")]);
    expect(bad.status).toBe(EXIT.USAGE);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).not.toMatch(STACK);
  });
});

describe("vmballoon exporter --listen", () => {
  it.each([
    [":9999", { host: undefined, port: 9999 }],
    ["127.0.0.1:0", { host: "127.0.0.1", port: 0 }],
    ["localhost:22128", { host: "localhost", port: 22128 }],
    ["[::1]:80", { host: "::1", port: 80 }],
    ["[::]:65535", { host: "::", port: 65535 }],
  ])("%s", (text, address) => {
    expect(parseListen(text)).toEqual(address);
  });

  it.each(["9100", "127.0.0.1", "::1:80", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:http", "[127.0.0.1]:80", "a b:80", ":"])(
    "refuses '%s' with exit status 2",
    (text) => {
      const thrown = thrownBy(() => parseListen(text));
      expect(exitStatusOf(thrown)).toBe(EXIT.USAGE);
      expect((thrown as Error).message).toContain(`not '${text}'`);
    },
  );

  it("the default port is the exporter's own, 22128 (0x5670), clear of the exporters' 9100-9999", () => {
    expect(DEFAULT_PORT).toBe(0x5670);
    expect(vmballoon(["exporter", "--help"]).stdout).toContain(":22128");
  });

  it("through the CLI: a bad --listen is one line and exit status 2", () => {
    const run = vmballoon(["exporter", "--listen", "127.0.0.1"]);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr).toMatch(/^vmballoon: --listen must be HOST:PORT, :PORT or \[IPv6\]:PORT \(no port\), not '127\.0\.0\.1'\n/);
    expect(run.stderr).not.toMatch(STACK);
  });

  it("a port in use: one line, exit status 69", async () => {
    const taken = createServer();
    servers.push(taken);
    taken.listen(0, "127.0.0.1");
    await once(taken, "listening");
    const port = (taken.address() as AddressInfo).port;
    const run = vmballoon(["exporter", "--listen", `127.0.0.1:${port}`, "--file", join(scratch, "x.txt")]);
    expect(run.status).toBe(EXIT.UNAVAILABLE);
    expect(run.stderr).toBe(`vmballoon: cannot listen on 127.0.0.1:${port}: the port is in use (another exporter? give --listen HOST:PORT)\n`);
  });

  it("an address that is not this machine's: one line, exit status 2", () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a machine, so the bind fails at once; nothing is sent.
    const run = vmballoon(["exporter", "--listen", "192.0.2.1:22128", "--file", join(scratch, "x.txt")]);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr).toBe("vmballoon: cannot listen on 192.0.2.1:22128: no such address on this machine\n");
  });

  it("--file - is refused: stdin cannot be read again at every scrape", () => {
    const run = vmballoon(["exporter", "--listen", "127.0.0.1:0", "--file", "-"]);
    expect(run.status).toBe(EXIT.USAGE);
    expect(run.stderr).toMatch(/^vmballoon: --file - \(stdin\) cannot be read again/);
  });
});

describe("vmballoon exporter: the process", () => {
  it.each(["SIGTERM", "SIGINT"] as const)("%s closes the server (an idle keep-alive connection included) and exits 0", async (signal) => {
    const exporter = new RunningExporter(["--listen", "127.0.0.1:0", "--file", write("signal.txt", sample("seed-typical.txt"))]);
    const url = await exporter.ready;
    const agent = new Agent({ keepAlive: true });
    expect((await fetchText(`${url}/metrics`, { agent })).status).toBe(200);
    const { status } = await exporter.stop(signal);
    agent.destroy();
    expect(status).toBe(0);
    expect(exporter.stderr).toMatch(new RegExp(`${signal}: server closed\\n$`));
    expect(exporter.stderr).not.toMatch(STACK);
  });
});

/** The systemd unit's claim: CAP_DAC_READ_SEARCH, and no root, is what reading debugfs takes. */
const ROOT = typeof process.geteuid === "function" && process.geteuid() === 0;
const SETPRIV = spawnSync("setpriv", ["--version"]).status === 0;

describe.skipIf(!ROOT || !SETPRIV)("contrib/vmballoon-exporter.service's capability (needs root and setpriv, to become another user)", () => {
  // debugfs's root directory is root's alone (0700) and vmmemctl is world-readable (0444): the same here.
  const debugfs = join(scratch, "debugfs");
  mkdirSync(debugfs, { mode: 0o700 });
  chmodSync(debugfs, 0o700);
  const vmmemctl = join(debugfs, "vmmemctl");
  writeFileSync(vmmemctl, sample("seed-typical.txt"), { mode: 0o444 });
  /** As user and group nobody, with no capability but `kept`. */
  const asNobody = (kept: string) => [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    `--inh-caps=-all${kept}`,
    `--bounding-set=-all${kept}`,
    ...(kept ? [`--ambient-caps=${kept.slice(1)}`] : []),
  ];

  it.each([
    ["with CAP_DAC_READ_SEARCH alone, an unprivileged user reads it", ",+dac_read_search", "1"],
    ["without it, the same user cannot: scrape_success 0 and the reason in the log", "", "0"],
  ])("%s", async (_what, kept, success) => {
    const exporter = new RunningExporter(["--listen", "127.0.0.1:0", "--file", vmmemctl], asNobody(kept));
    const url = await exporter.ready;
    const samples = samplesOf((await fetchText(`${url}/metrics`)).body);
    expect(samples.get("vmballoon_exporter_scrape_success")).toBe(success);
    expect(samples.get("vmware_balloon_driver_loaded")).toBe("1");
    expect(samples.get("vmware_balloon_size_bytes")).toBe(success === "1" ? String(32770 * 4096) : undefined);
    expect((await exporter.stop()).status).toBe(0);
    if (success === "0") expect(exporter.stderr).toContain(`cannot read ${vmmemctl}: permission denied`);
  });
});
