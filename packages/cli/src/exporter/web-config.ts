/**
 * The web configuration file of Prometheus' exporter-toolkit (what
 * node_exporter reads with `--web.config.file`), for `vmballoon exporter
 * --web-config F`: TLS (`tls_server_config`), basic authentication with
 * bcrypt hashes (`basic_auth_users`) and extra response headers
 * (`http_server_config.headers`), so that an operator reuses the file they
 * already have. As strict as exporter-toolkit: an unknown key, a value of the
 * wrong type, a password that is not a bcrypt hash, a missing certificate,
 * all refuse to start (exit status 2) with one line naming the key.
 */
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import bcrypt from "bcryptjs";
import { CliError, EXIT, describeFileError } from "../errors.js";
import { readBounded } from "../files.js";

/** A web configuration file is small: a few certificates inline at most. */
const WEB_CONFIG = { what: "a web configuration file", limit: 1024 * 1024 };

/** The TLS settings of the HTTPS server, ready for `https.createServer`. */
export interface TlsSettings extends SecureContextOptions {
  readonly cert: string;
  readonly key: string;
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
  /** RequireAnyClientCert: a certificate must be presented, but it is not verified. */
  readonly requireAnyClientCert: boolean;
  /** VerifyClientCertIfGiven: a certificate may be left out, but one that is presented must verify. */
  readonly verifyClientCertIfGiven: boolean;
}

/** What `--web-config` says the server must do. */
export interface WebConfig {
  /** TLS, or undefined for plain HTTP (no `tls_server_config`). */
  readonly tls: TlsSettings | undefined;
  /** User name → bcrypt hash; empty: no authentication. */
  readonly users: ReadonlyMap<string, string>;
  /** Headers added to every response (`http_server_config.headers`). */
  readonly headers: Readonly<Record<string, string>>;
}

/** No `--web-config`: plain HTTP, no authentication. */
export const PLAIN: WebConfig = { tls: undefined, users: new Map(), headers: {} };

/**
 * The keys exporter-toolkit knows, each with the type of its value. Keys it
 * knows that this server does not implement are refused by name (rather than
 * ignored: a file that asks for a rate limit or client SAN checks must not
 * get a server without them).
 */
type Kind = "string" | "boolean" | "strings" | "map" | "duration" | "int" | "unsupported";
const SCHEMA: Readonly<Record<string, Readonly<Record<string, Kind>>>> = {
  tls_server_config: {
    cert: "string",
    key: "string",
    client_ca: "string",
    cert_file: "string",
    key_file: "string",
    client_auth_type: "string",
    client_ca_file: "string",
    client_allowed_sans: "unsupported",
    min_version: "string",
    max_version: "string",
    cipher_suites: "strings",
    prefer_server_cipher_suites: "boolean",
    curve_preferences: "strings",
  },
  http_server_config: { http2: "boolean", headers: "map" },
  // A rate limit is refused unless its interval is zero, which exporter-toolkit reads as "no rate limit".
  rate_limit: { interval: "duration", burst: "int" },
};

/** exporter-toolkit's TLS versions and the names Node's TLS uses for them. */
const TLS_VERSIONS: Readonly<Record<string, "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3">> = {
  TLS10: "TLSv1",
  TLS11: "TLSv1.1",
  TLS12: "TLSv1.2",
  TLS13: "TLSv1.3",
};

/**
 * Go's `tls.CipherSuites()` (the secure ones, the only ones exporter-toolkit
 * accepts) in OpenSSL's names. Go ignores the TLS 1.3 ones in the list (TLS
 * 1.3's suites are not configurable there); so does this server.
 */
const CIPHER_SUITES: Readonly<Record<string, string | null>> = {
  TLS_AES_128_GCM_SHA256: null,
  TLS_AES_256_GCM_SHA384: null,
  TLS_CHACHA20_POLY1305_SHA256: null,
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: "ECDHE-ECDSA-AES128-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: "ECDHE-ECDSA-AES256-SHA",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: "ECDHE-RSA-AES128-SHA",
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: "ECDHE-RSA-AES256-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: "ECDHE-ECDSA-AES128-GCM-SHA256",
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: "ECDHE-ECDSA-AES256-GCM-SHA384",
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "ECDHE-RSA-AES128-GCM-SHA256",
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "ECDHE-RSA-AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-RSA-CHACHA20-POLY1305",
};

/** TLS 1.3's suites, which Node takes in the same list as the older ones. */
const TLS13_SUITES = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

/** exporter-toolkit's curve names and OpenSSL's. */
const CURVES: Readonly<Record<string, string>> = { CurveP256: "P-256", CurveP384: "P-384", CurveP521: "P-521", X25519: "X25519" };

/** exporter-toolkit's `client_auth_type` values (Go's names). */
const CLIENT_AUTH = ["NoClientCert", "RequestClientCert", "RequireAnyClientCert", "RequireClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"];

/** The headers exporter-toolkit lets a file set, with the values it allows (none listed: any). */
const HEADERS: Readonly<Record<string, readonly string[]>> = {
  "Strict-Transport-Security": [],
  "X-Content-Type-Options": ["nosniff"],
  "X-Frame-Options": ["deny", "sameorigin"],
  "X-XSS-Protection": [],
  "Content-Security-Policy": [],
};

/** A bcrypt hash as Go's bcrypt package reads it: `$2a$`, `$2b$` or `$2y$`, a cost, 53 characters of salt and hash. */
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

class WebConfigError extends CliError {
  override readonly name = "WebConfigError";
  constructor(file: string, message: string) {
    super(`web config ${file}: ${message}`, EXIT.USAGE);
  }
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a mapping" : `a ${typeof value}`;
}

/** Checks one section against the schema, strictly; returns it with its values typed. */
function section(file: string, name: string, value: unknown): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new WebConfigError(file, `${name}: expected a mapping, found ${kindOf(value)}`);
  const schema = SCHEMA[name]!;
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    const kind = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (kind === undefined) throw new WebConfigError(file, `${name}.${key}: unknown field (known: ${Object.keys(schema).join(", ")})`);
    if (kind === "unsupported")
      throw new WebConfigError(file, `${name}.${key}: not supported by vmballoon exporter (remove it, or put a reverse proxy in front)`);
    if (field === null) continue;
    const ok =
      kind === "string"
        ? typeof field === "string"
        : kind === "boolean"
          ? typeof field === "boolean"
          : kind === "int"
            ? Number.isInteger(field)
            : kind === "duration"
              ? field === 0 || (typeof field === "string" && /^(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+$|^0$/.test(field))
              : kind === "strings"
                ? Array.isArray(field) && field.every((item) => typeof item === "string")
                : typeof field === "object" && !Array.isArray(field);
    const wanted =
      kind === "strings"
        ? "a list of strings"
        : kind === "map"
          ? "a mapping"
          : kind === "duration"
            ? "a duration (1s, 500ms)"
            : kind === "int"
              ? "an integer"
              : `a ${kind}`;
    if (!ok) throw new WebConfigError(file, `${name}.${key}: expected ${wanted}, found ${kindOf(field)}`);
    if (kind === "duration" && !/^[0.]*$/.test(String(field).replace(/ns|us|µs|ms|s|m|h/g, ""))) {
      throw new WebConfigError(
        file,
        `${name}.${key}: a rate limit is not supported by vmballoon exporter (remove it, set the interval to 0, or put a reverse proxy in front)`,
      );
    }
    out[key] = field;
  }
  return out;
}

/** Reads a file named in the web config, relative to the config's own folder (as exporter-toolkit does). */
function readNamed(file: string, key: string, name: string): string {
  const path = resolve(dirname(file), name);
  try {
    return readBounded(path, WEB_CONFIG, "read");
  } catch (error) {
    const described = describeFileError(error, "read", `${key} ${path}`);
    if (described instanceof CliError) throw new CliError(`web config ${file}: ${described.message}`, described.exitStatus);
    throw described;
  }
}

function tlsSettings(file: string, tls: Record<string, unknown>): TlsSettings | undefined {
  const text = (key: string) => (typeof tls[key] === "string" && tls[key] !== "" ? tls[key] : undefined);
  // exporter-toolkit serves TLS when any of these is set, and plain HTTP otherwise.
  const enabled = ["cert", "key", "cert_file", "key_file", "client_ca", "client_ca_file", "client_auth_type"].some((key) => text(key) !== undefined);
  if (!enabled) return undefined;
  const pair = (inline: string, named: string): string => {
    if (text(inline) !== undefined && text(named) !== undefined) {
      throw new WebConfigError(file, `tls_server_config: give ${inline} or ${named}, not both`);
    }
    const value = text(inline) ?? (text(named) === undefined ? undefined : readNamed(file, named, text(named)!));
    if (value === undefined) throw new WebConfigError(file, `tls_server_config: missing one of ${inline} or ${named}`);
    return value;
  };
  const cert = pair("cert", "cert_file");
  const key = pair("key", "key_file");

  const clientAuth = text("client_auth_type") ?? "NoClientCert";
  if (!CLIENT_AUTH.includes(clientAuth)) {
    throw new WebConfigError(file, `tls_server_config.client_auth_type: invalid ClientAuth '${clientAuth}' (one of ${CLIENT_AUTH.join(", ")})`);
  }
  const ca = text("client_ca") ?? (text("client_ca_file") === undefined ? undefined : readNamed(file, "client_ca_file", text("client_ca_file")!));
  if (ca !== undefined && clientAuth === "NoClientCert") {
    throw new WebConfigError(file, "tls_server_config: client CA's have been configured without a client_auth_type");
  }

  const version = (key: string, fallback: string) => {
    const name = text(key) ?? fallback;
    const node = TLS_VERSIONS[name];
    if (node === undefined)
      throw new WebConfigError(file, `tls_server_config.${key}: unknown TLS version '${name}' (one of ${Object.keys(TLS_VERSIONS).join(", ")})`);
    return node;
  };
  const minVersion = version("min_version", "TLS12");
  const maxVersion = version("max_version", "TLS13");

  let ciphers: string | undefined;
  const suites = tls.cipher_suites as string[] | undefined;
  if (suites !== undefined && suites.length > 0) {
    const names = suites.map((suite) => {
      if (!Object.hasOwn(CIPHER_SUITES, suite)) throw new WebConfigError(file, `tls_server_config.cipher_suites: unknown cipher '${suite}'`);
      return CIPHER_SUITES[suite];
    });
    ciphers = [TLS13_SUITES, ...names.filter((name): name is string => name !== null)].join(":");
  }
  let ecdhCurve: string | undefined;
  const curves = tls.curve_preferences as string[] | undefined;
  if (curves !== undefined && curves.length > 0) {
    ecdhCurve = curves
      .map((curve) => {
        const name = Object.hasOwn(CURVES, curve) ? CURVES[curve] : undefined;
        if (name === undefined) throw new WebConfigError(file, `tls_server_config.curve_preferences: unknown curve '${curve}'`);
        return name;
      })
      .join(":");
  }

  const settings: TlsSettings = {
    cert,
    key,
    minVersion,
    maxVersion,
    honorCipherOrder: (tls.prefer_server_cipher_suites as boolean | undefined) ?? true,
    ...(ciphers === undefined ? {} : { ciphers }),
    ...(ecdhCurve === undefined ? {} : { ecdhCurve }),
    ...(ca === undefined ? {} : { ca }),
    requestCert: clientAuth !== "NoClientCert",
    rejectUnauthorized: clientAuth === "RequireAndVerifyClientCert",
    requireAnyClientCert: clientAuth === "RequireAnyClientCert" || clientAuth === "RequireClientCert",
    verifyClientCertIfGiven: clientAuth === "VerifyClientCertIfGiven",
  };
  // What Go's tls.X509KeyPair checks: PEM that parses, a key that matches the certificate.
  try {
    createSecureContext(settings);
  } catch (error) {
    throw new WebConfigError(file, `tls_server_config: cannot use the certificate and key: ${(error as Error).message}`);
  }
  return settings;
}

function users(file: string, value: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (value === null || value === undefined) return out;
  if (typeof value !== "object" || Array.isArray(value)) throw new WebConfigError(file, `basic_auth_users: expected a mapping, found ${kindOf(value)}`);
  for (const [user, hash] of Object.entries(value)) {
    const cost = typeof hash === "string" ? BCRYPT.exec(hash)?.[1] : undefined;
    if (cost === undefined || Number(cost) < 4 || Number(cost) > 31) {
      throw new WebConfigError(file, `basic_auth_users.${user}: not a bcrypt hash (make one with 'htpasswd -nBC 10 "" | tr -d ":\\n"')`);
    }
    bcrypt.getRounds(hash as string);
    out.set(user, hash as string);
  }
  return out;
}

function headers(file: string, value: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, header] of Object.entries(value ?? {})) {
    const allowed = Object.hasOwn(HEADERS, name) ? HEADERS[name] : undefined;
    if (allowed === undefined) throw new WebConfigError(file, `http_server_config.headers: HTTP header '${name}' can not be configured`);
    if (typeof header !== "string") throw new WebConfigError(file, `http_server_config.headers.${name}: expected a string, found ${kindOf(header)}`);
    if (allowed.length > 0 && !allowed.includes(header)) {
      throw new WebConfigError(file, `http_server_config.headers.${name}: expected one of ${allowed.join(", ")}, found '${header}'`);
    }
    if (header !== "") out[name] = header;
  }
  return out;
}

/** Reads and checks a web configuration file; throws a one-line error (exit status 2, 77 when it cannot be read for permission). */
export function loadWebConfig(file: string): WebConfig {
  let text: string;
  try {
    text = readBounded(file, WEB_CONFIG, "read");
  } catch (error) {
    const described = describeFileError(error, "read", file);
    if (described instanceof CliError)
      throw new CliError(`cannot read the web config ${file}: ${described.message.replace(/^cannot read [^:]*: /, "")}`, described.exitStatus);
    throw described;
  }
  // YAML 1.1, as Go's yaml.v2 (exporter-toolkit's) reads it; a key given twice is an error there too.
  const lines = new LineCounter();
  const document = parseDocument(text, { version: "1.1", uniqueKeys: true, prettyErrors: false, lineCounter: lines });
  const problem = document.errors[0];
  if (problem !== undefined) {
    throw new WebConfigError(file, `line ${lines.linePos(problem.pos[0]).line}: ${problem.message.split("\n")[0]}`);
  }
  const root = document.toJS() as unknown;
  if (root === null || root === undefined) return PLAIN;
  if (typeof root !== "object" || Array.isArray(root)) throw new WebConfigError(file, `expected a mapping at the top, found ${kindOf(root)}`);

  let tls: TlsSettings | undefined;
  let httpConfig: Record<string, unknown> = {};
  let authUsers = new Map<string, string>();
  for (const [key, value] of Object.entries(root)) {
    if (key === "basic_auth_users") authUsers = users(file, value);
    else if (key === "tls_server_config") tls = tlsSettings(file, section(file, key, value));
    else if (key === "http_server_config") httpConfig = section(file, key, value);
    else if (key === "rate_limit") section(file, key, value);
    else throw new WebConfigError(file, `${key}: unknown field (known: tls_server_config, http_server_config, basic_auth_users, rate_limit)`);
  }
  return { tls, users: authUsers, headers: headers(file, httpConfig.headers as Record<string, unknown> | undefined) };
}
