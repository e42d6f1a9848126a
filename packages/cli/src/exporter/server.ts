/**
 * The HTTP(S) server of `vmballoon exporter`: `/metrics` in the text
 * exposition format, read fresh at every scrape; a landing page at `/`; 404
 * elsewhere; GET and HEAD only. Basic authentication (bcrypt) and TLS come
 * from the web configuration file (exporter-toolkit's format).
 */
import { createHash } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { TLSSocket } from "node:tls";
import bcrypt from "bcryptjs";
import { formatMetricFamilies, parse, toPrometheus, type MetricFamily } from "@vmballoon/stats";
import { VMMEMCTL, readBounded } from "../files.js";
import type { TlsSettings, WebConfig } from "./web-config.js";
import { gatherFacts } from "../vmmemctl.js";

declare const __VERSION__: string;

/** This program's version (the CLI's build defines it; a test run has none). */
const VERSION = typeof __VERSION__ === "string" ? __VERSION__ : "0.0.0-dev";

/** Where to read the balloon's statistics from. */
export interface MetricsSource {
  /** The vmmemctl text: the kernel's /sys/kernel/debug/vmmemctl or `--file`. */
  readonly file: string;
  /**
   * The root of /proc and /sys, to tell whether the kernel's driver is loaded
   * when its file cannot be read; undefined for `--file` (a file that is not
   * there means no driver).
   */
  readonly root: string | undefined;
}

/** One scrape's outcome, for the exporter's own metrics and for its log. */
interface Reading {
  readonly body: string;
  readonly driverLoaded: boolean;
  /** Why the statistics could not be read, or undefined when they were (or when there is no driver). */
  readonly error: string | undefined;
}

/**
 * Reads and renders the balloon's metrics once. Never throws: a missing file
 * is `driver_loaded 0`, anything else that goes wrong is a scrape error.
 */
function read(source: MetricsSource): Reading {
  let text: string;
  try {
    text = readBounded(source.file, VMMEMCTL, "read");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      // No file: no driver, unless the kernel says its module is loaded (debugfs not mounted, say).
      const loaded = source.root !== undefined && gatherFacts(source.root).balloonDriver !== undefined;
      return {
        body: "",
        driverLoaded: loaded,
        error: loaded ? `cannot read ${source.file}: no such file, though the balloon driver is loaded (debugfs not mounted?)` : undefined,
      };
    }
    return {
      body: "",
      driverLoaded: true,
      error: `cannot read ${source.file}: ${code === "EACCES" || code === "EPERM" ? "permission denied (debugfs is root's: run as root, see the systemd unit)" : (error as Error).message}`,
    };
  }
  try {
    return { body: toPrometheus(parse(text)), driverLoaded: true, error: undefined };
  } catch (error) {
    return { body: "", driverLoaded: true, error: `${source.file}: ${(error as Error).message}` };
  }
}

const EXPORTER_PREFIX = "vmballoon_exporter_";

/** Serves the metrics; counts its scrape errors since it started. */
export class Scraper {
  private errors = 0;
  private lastState = "read";

  constructor(
    readonly source: MetricsSource,
    /** Called with a line when the outcome of a scrape changes (an error appears, changes or goes away). */
    private readonly log: (line: string) => void,
  ) {}

  /** The text exposition of one scrape. */
  scrape(): string {
    const started = process.hrtime.bigint();
    const reading = read(this.source);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (reading.error !== undefined) this.errors++;
    // The log says when the outcome changes, not at every scrape.
    const state = reading.error ?? (reading.driverLoaded ? "read" : "absent");
    if (state !== this.lastState) {
      this.log(
        reading.error ??
          (reading.driverLoaded ? `reading ${this.source.file} again` : `${this.source.file} is not there: no balloon driver (vmware_balloon_driver_loaded 0)`),
      );
      this.lastState = state;
    }
    const own: MetricFamily[] = [
      {
        name: "build_info",
        help: "A metric with a constant '1' value labeled by the version of vmballoon and of Node.js it runs on.",
        type: "gauge",
        samples: [{ labels: { version: VERSION, nodeversion: process.version }, value: 1 }],
      },
      { name: "scrape_duration_seconds", help: "Time this scrape took to read and parse the vmmemctl text.", type: "gauge", samples: [{ value: seconds }] },
      {
        name: "scrape_success",
        help: "1 when this scrape read the balloon's statistics (or found no driver), 0 when it failed (see the exporter's log).",
        type: "gauge",
        samples: [{ value: reading.error === undefined ? 1 : 0 }],
      },
      {
        name: "scrape_errors_total",
        help: "Scrapes that failed to read the balloon's statistics since the exporter started.",
        type: "counter",
        samples: [{ value: this.errors }],
      },
    ];
    const loaded: MetricFamily = {
      name: "driver_loaded",
      help: "1 when a VMware balloon driver is loaded (its vmmemctl statistics are there), 0 when not.",
      type: "gauge",
      samples: [{ value: reading.driverLoaded ? 1 : 0 }],
    };
    return reading.body + formatMetricFamilies([loaded]) + formatMetricFamilies(own, EXPORTER_PREFIX);
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function landingPage(source: MetricsSource): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>vmballoon exporter</title></head>
<body>
<h1>vmballoon exporter</h1>
<p>The VMware memory balloon's statistics (<code>${escapeHtml(source.file)}</code>) for Prometheus, version ${escapeHtml(VERSION)}.</p>
<p><a href="metrics">Metrics</a></p>
</body>
</html>
`;
}

/** The content type of the text exposition format. */
export const EXPOSITION = "text/plain; version=0.0.4; charset=utf-8";

/** A hash of exporter-toolkit's for "fakepassword": an unknown user costs as much time as a known one. */
const DECOY_HASH = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/**
 * Basic authentication against bcrypt hashes. A bcrypt comparison takes tens
 * of milliseconds by design: one runs at a time, and results are remembered
 * (a few, under a hash of the credentials) so that Prometheus' scrapes every
 * few seconds cost one comparison, not one each.
 */
export class Authenticator {
  private readonly cache = new Map<string, boolean>();
  private queue: Promise<unknown> = Promise.resolve();
  static readonly CACHE_SIZE = 64;

  constructor(private readonly users: ReadonlyMap<string, string>) {}

  get required(): boolean {
    return this.users.size > 0;
  }

  /** Whether the request's `Authorization` header names a user with the right password. */
  async allows(header: string | undefined): Promise<boolean> {
    if (!this.required) return true;
    const match = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (match === null) return false;
    const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = this.users.get(user);
    const key = createHash("sha256")
      .update(user)
      .update("\0")
      .update(hash ?? "")
      .update("\0")
      .update(password)
      .digest("base64");
    const known = this.cache.get(key);
    if (known !== undefined) return known;
    const run = this.queue.then(() => bcrypt.compare(password, hash ?? DECOY_HASH));
    this.queue = run.catch(() => undefined);
    const ok = hash !== undefined && (await run.catch(() => false));
    if (this.cache.size >= Authenticator.CACHE_SIZE) this.cache.clear();
    this.cache.set(key, ok);
    return ok;
  }
}

/**
 * The client certificate rules that Node's TLS options do not express alone
 * (RequireAndVerifyClientCert is Node's `rejectUnauthorized`, done in the
 * handshake): RequireAnyClientCert wants one, verified or not;
 * VerifyClientCertIfGiven wants none or one that verifies.
 */
function clientCertificateAllowed(tls: TlsSettings, socket: TLSSocket): boolean {
  const presented = socket.getPeerCertificate?.()?.raw !== undefined;
  if (tls.requireAnyClientCert) return presented;
  if (tls.verifyClientCertIfGiven) return !presented || socket.authorized;
  return true;
}

function send(response: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  response.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body), ...extra });
  // Node sends no body for HEAD, and keeps the headers (Content-Length included).
  response.end(body);
}

/** The server, not yet listening. */
export function createExporter(source: MetricsSource, web: WebConfig, log: (line: string) => void): Server {
  const scraper = new Scraper(source, log);
  const auth = new Authenticator(web.users);
  const landing = landingPage(source);

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    for (const [name, value] of Object.entries(web.headers)) response.setHeader(name, value);
    if (web.tls !== undefined && !clientCertificateAllowed(web.tls, request.socket as TLSSocket)) {
      send(response, 403, "text/plain; charset=utf-8", "Forbidden: no valid client certificate\n");
      return;
    }
    if (!(await auth.allows(request.headers.authorization))) {
      send(response, 401, "text/plain; charset=utf-8", "Unauthorized\n", { "WWW-Authenticate": 'Basic realm="vmballoon exporter", charset="UTF-8"' });
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      send(response, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", { Allow: "GET, HEAD" });
      return;
    }
    const path = (request.url ?? "/").split("?", 1)[0];
    if (path === "/metrics") send(response, 200, EXPOSITION, scraper.scrape());
    else if (path === "/") send(response, 200, "text/html; charset=utf-8", landing);
    else send(response, 404, "text/plain; charset=utf-8", "404 page not found\n");
  };
  const listener = (request: IncomingMessage, response: ServerResponse) => {
    handle(request, response).catch((error: unknown) => {
      // A bug, not an expected failure: say so in the log, and answer.
      log(`internal error serving ${request.url}: ${(error as Error)?.stack ?? String(error)}`);
      if (!response.headersSent) send(response, 500, "text/plain; charset=utf-8", "Internal Server Error\n");
      else response.destroy();
    });
  };
  return web.tls === undefined ? createHttpServer(listener) : createHttpsServer(web.tls, listener);
}
