/**
 * `vmballoon exporter`: the balloon's statistics for Prometheus, served over
 * HTTP(S) and read fresh at every scrape, until SIGTERM or SIGINT closes the
 * server (exit status 0).
 */
import { isIP } from "node:net";
import type { Server } from "node:http";
import { CliError, EXIT, UsageError } from "../errors.js";
import { optionValue, type OptionValue } from "../options.js";
import { createExporter, type MetricsSource } from "../exporter/server.js";
import { PLAIN, loadWebConfig } from "../exporter/web-config.js";
import { DEFAULT_FILE } from "../vmmemctl.js";

export interface ExporterOptions {
  readonly listen?: OptionValue;
  readonly file?: OptionValue;
  readonly webConfig?: OptionValue;
}

/**
 * The exporter's own port: 22128 is 0x5670, the balloon's I/O port. Outside
 * 9100–9999, the range Prometheus hands out to exporters (full since 2023),
 * so it clashes with none of them, node_exporter's 9100 included.
 */
export const DEFAULT_PORT = 22128;

/** Where to listen: a host (undefined: every address) and a port. */
export interface ListenAddress {
  readonly host: string | undefined;
  readonly port: number;
}

/** Parses `HOST:PORT`, `:PORT` (every address) or `[IPv6]:PORT`, as node_exporter's `--web.listen-address`. */
export function parseListen(text: string): ListenAddress {
  const bad = (why: string) => new UsageError(`--listen must be HOST:PORT, :PORT or [IPv6]:PORT (${why}), not '${text}'`);
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (match === null) throw bad(text.includes(":") ? "an IPv6 address goes in brackets" : "no port");
  const [, v6, name, portText] = match;
  if (!/^\d{1,5}$/.test(portText!) || Number(portText) > 65535) throw bad("a port is a number from 0 to 65535");
  if (v6 !== undefined && isIP(v6) !== 6) throw bad(`'${v6}' is not an IPv6 address`);
  const host = v6 ?? (name === "" ? undefined : name);
  if (host !== undefined && v6 === undefined && !/^[A-Za-z0-9.-]+$/.test(host)) throw bad(`'${host}' is not a host name or an IPv4 address`);
  return { host, port: Number(portText) };
}

/** Why `listen` failed, as one line with its exit status. */
function listenError(error: NodeJS.ErrnoException, where: string): CliError | NodeJS.ErrnoException {
  switch (error.code) {
    case "EADDRINUSE":
      return new CliError(`cannot listen on ${where}: the port is in use (another exporter? give --listen HOST:PORT)`, EXIT.UNAVAILABLE);
    case "EACCES":
    case "EPERM":
      return new CliError(`cannot listen on ${where}: permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)`, EXIT.NO_PERMISSION);
    case "EADDRNOTAVAIL":
      return new CliError(`cannot listen on ${where}: no such address on this machine`, EXIT.USAGE);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new CliError(`cannot listen on ${where}: no such host`, EXIT.USAGE);
    default:
      return error;
  }
}

function listen(server: Server, address: ListenAddress, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(listenError(error, where));
    server.once("error", failed);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off("error", failed);
      resolve();
    });
  });
}

/** How long the requests under way at SIGTERM may take before their connections are cut. */
const GRACE_MS = 5000;

function log(line: string): void {
  process.stderr.write(`vmballoon exporter: ${line}\n`);
}

export async function exporter(options: ExporterOptions): Promise<number> {
  const listenText = optionValue(options.listen, "--listen", "HOST:PORT") ?? `:${DEFAULT_PORT}`;
  const address = parseListen(listenText);
  const file = optionValue(options.file, "--file", "a file name");
  if (file === "-") throw new UsageError("--file - (stdin) cannot be read again at every scrape: give a file name");
  const webConfigFile = optionValue(options.webConfig, "--web-config", "a file name");
  const web = webConfigFile === undefined ? PLAIN : loadWebConfig(webConfigFile);

  const source: MetricsSource = file === undefined ? { file: DEFAULT_FILE, root: "/" } : { file, root: undefined };
  const server = createExporter(source, web, log);
  server.on("clientError", (_error, socket) => socket.destroy());
  await listen(server, address, listenText);

  const bound = server.address();
  const scheme = web.tls === undefined ? "http" : "https";
  const shown =
    bound !== null && typeof bound === "object"
      ? bound.family === "IPv6"
        ? `[${bound.address}]:${bound.port}`
        : `${bound.address}:${bound.port}`
      : listenText;
  log(
    `listening on ${scheme}://${shown}/metrics, reading ${source.file} at every scrape; TLS ${web.tls ? "on" : "off"}, basic auth ${web.users.size > 0 ? "on" : "off"}`,
  );

  // Until SIGTERM or SIGINT: stop accepting, let the requests under way finish, exit 0.
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), GRACE_MS).unref();
  });
  log(`${signal}: server closed`);
  return EXIT.OK;
}
