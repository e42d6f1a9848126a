// For exporter-soak.test.ts, in a child process started with --expose-gc:
// runs `vmballoon exporter` (the built CLI) in this process, scrapes it
// SCRAPES times over keep-alive connections, and prints one JSON line with
// the heap in use after a full GC at each checkpoint, then SIGTERMs itself
// and checks that the exporter closes and exits 0.
//   node --expose-gc test-exporter-soak.mjs FILE SCRAPES CHECKPOINT[,CHECKPOINT...]
import { Agent, request } from "node:http";
import { fileURLToPath } from "node:url";

const [file, scrapesText, checkpointsText] = process.argv.slice(2);
const scrapes = Number(scrapesText);
const checkpoints = new Set(checkpointsText.split(",").map(Number));
const bin = new URL("../bin/vmballoon.js", import.meta.url);

let listening;
const url = new Promise((resolve) => (listening = resolve));
const writeStderr = process.stderr.write.bind(process.stderr);
process.stderr.write = (chunk, ...rest) => {
  const match = /listening on (http:\/\/\S+)\/metrics/.exec(String(chunk));
  if (match) listening(match[1]);
  return writeStderr(chunk, ...rest);
};
process.argv = [process.argv[0], fileURLToPath(bin), "exporter", "--listen", "127.0.0.1:0", "--file", file];
// The CLI's module runs the command and awaits its end (the signal): not awaited here.
const cli = import(bin.href);

const base = await url;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
let retried = 0;
const scrape = () =>
  new Promise((resolve, reject) => {
    const req = request(`${base}/metrics`, { agent }, (res) => {
      let length = 0;
      res.on("data", (chunk) => (length += chunk.length));
      res.on("end", () => resolve({ status: res.statusCode, length }));
    });
    req.on("error", (error) => {
      // A kept-alive connection the server closed (idle past its keep-alive
      // timeout, as a loaded machine makes it) just as this request went out
      // on it: try again on a new one, as Node's documentation advises and
      // Prometheus' Go client does.
      if (req.reusedSocket && error.code === "ECONNRESET") {
        retried++;
        scrape().then(resolve, reject);
      } else reject(error);
    });
    req.end();
  });

const heap = {};
const statuses = {};
let bytes = 0;
const started = performance.now();
for (let done = 0; done < scrapes;) {
  // Four at a time, as a few Prometheus servers would.
  const batch = await Promise.all([scrape(), scrape(), scrape(), scrape()]);
  for (const { status, length } of batch) {
    statuses[status] = (statuses[status] ?? 0) + 1;
    bytes += length;
  }
  done += batch.length;
  if (checkpoints.has(done)) {
    globalThis.gc();
    globalThis.gc();
    heap[done] = process.memoryUsage().heapUsed;
  }
}
const seconds = (performance.now() - started) / 1000;
agent.destroy();
process.kill(process.pid, "SIGTERM");
await cli;
process.stdout.write(`${JSON.stringify({ heap, statuses, bytes, seconds, retried, exitCode: process.exitCode ?? 0 })}\n`);
