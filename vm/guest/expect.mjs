// Evaluates a check's `expect` (see vm/checks.mjs) against how its command
// ended. Returns the list of failures, each { what, expected, actual }.

/**
 * Stdout as one JSON document, or else its last non-empty line as one (JSON
 * Lines); undefined when neither is JSON.
 */
export function lastJson(stdout) {
  for (const text of [stdout, stdout.trim().split("\n").pop()]) {
    try {
      return JSON.parse(text);
    } catch {
      // not this one
    }
  }
  return undefined;
}

function at(value, path) {
  let v = value;
  for (const key of path.split(".")) {
    if (v === null || typeof v !== "object" || !(key in v)) return { found: false };
    v = v[key];
  }
  return { found: true, value: v };
}

function deepEqual(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

const show = (v) => (v === undefined ? "(absent)" : JSON.stringify(v));

/**
 * @param {object} expect   the check's expectations
 * @param {{status: number|null, signal: string|null, stdout: string, stderr: string, error?: string}} result
 */
export function evaluate(expect, result) {
  const failures = [];
  const fail = (what, expected, actual) => failures.push({ what, expected: String(expected), actual: String(actual) });
  if (result.error) fail("command", "to run", result.error);
  if ("exit" in expect) {
    const actual = result.signal ? `killed by ${result.signal}` : `exit ${result.status}`;
    if (result.signal || result.status !== expect.exit) fail("exit status", `exit ${expect.exit}`, actual);
  }
  if ("signal" in expect && result.signal !== expect.signal) {
    fail("signal", `killed by ${expect.signal}`, result.signal ? `killed by ${result.signal}` : `exit ${result.status}`);
  }
  for (const stream of ["stdout", "stderr"]) {
    if (stream in expect && !new RegExp(expect[stream], "i").test(result[stream])) {
      fail(stream, `/${expect[stream]}/i`, JSON.stringify(result[stream].slice(-300)));
    }
  }
  if (expect.json) {
    const json = lastJson(result.stdout);
    if (json === undefined) {
      fail("stdout JSON", "a JSON line", JSON.stringify(result.stdout.slice(-300)));
    } else {
      for (const [path, want] of Object.entries(expect.json)) {
        const got = at(json, path);
        if (!got.found || !deepEqual(got.value, want)) fail(`json ${path}`, show(want), got.found ? show(got.value) : "(absent)");
      }
    }
  }
  return failures;
}
