/**
 * For the exporter's tests (this package's and the Prometheus suite's): a
 * running `vmballoon exporter`, a throwaway certificate, and HTTP(S) requests.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { BIN } from "./cli-runner.js";

/** A `vmballoon exporter` in a child process. */
export class RunningExporter {
  readonly child: ChildProcessWithoutNullStreams;
  stderr = "";
  /** Resolves with the base URL (`http://127.0.0.1:PORT`) once it listens; rejects if it exits first. */
  readonly ready: Promise<string>;
  readonly exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;

  /** `wrapper`: a command that runs node, such as `setpriv` and its options. */
  constructor(args: readonly string[], wrapper: readonly string[] = []) {
    const command = [...wrapper, process.execPath, BIN, "exporter", ...args];
    this.child = spawn(command[0]!, command.slice(1), { env: { ...process.env, NO_COLOR: "1" } });
    this.exited = new Promise((resolve) => this.child.once("exit", (status, signal) => resolve({ status, signal })));
    this.ready = new Promise((resolve, reject) => {
      this.child.stderr.setEncoding("utf8").on("data", (text: string) => {
        this.stderr += text;
        const match = /listening on (https?):\/\/(\S+)\/metrics/.exec(this.stderr);
        if (match) resolve(`${match[1]}://${match[2]}`);
      });
      void this.exited.then(({ status, signal }) => reject(new Error(`the exporter exited (${status ?? signal}) before listening: ${this.stderr}`)));
    });
  }

  /** Sends a signal and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface RequestOptions {
  readonly method?: string;
  /** `user:password` for basic authentication. */
  readonly auth?: string;
  /** The CA to trust, for HTTPS. */
  readonly ca?: string;
  /** A client certificate and its key, for HTTPS. */
  readonly cert?: string;
  readonly key?: string;
  readonly agent?: import("node:http").Agent | false;
}

/** One request; the body as text. */
export function fetchText(url: string, options: RequestOptions = {}): Promise<Response> {
  const https = url.startsWith("https:");
  const send = https ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(
      url,
      {
        method: options.method ?? "GET",
        ...(options.auth === undefined ? {} : { auth: options.auth }),
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key }),
        ...(options.agent === undefined ? {} : { agent: options.agent }),
      },
      (response) => {
        let body = "";
        response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      },
    );
    request.on("error", reject);
    request.end();
  });
}

/** A self-signed certificate for 127.0.0.1 and localhost (a day long), made by openssl in `folder`. */
export function throwawayCertificate(folder: string): { cert: string; key: string } {
  const cert = join(folder, "server.crt");
  const key = join(folder, "server.key");
  const made = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { encoding: "utf8" },
  );
  if (made.status !== 0) throw new Error(`openssl req failed: ${made.error?.message ?? made.stderr}`);
  return { cert, key };
}

/** The samples of an exposition, `name{labels}` → value, without the comments. */
export function samplesOf(exposition: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of exposition.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), line.slice(space + 1));
  }
  return out;
}
