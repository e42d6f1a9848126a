/**
 * The `vmballoon` program. This module only parses arguments; each command's
 * code is imported when that command runs, so `--help` loads neither the
 * engine nor koffi.
 */
import { cac } from "cac";
// Types only (erased): the commands' code is still imported when one runs.
import type { DetectOptions } from "./commands/detect.js";
import type { ExporterOptions } from "./commands/exporter.js";
import type { HostOptions } from "./commands/host.js";
import type { PolicyOptions } from "./commands/policy.js";
import type { ReportOptions } from "./commands/report.js";
import type { RunOptions } from "./commands/run.js";
import type { SimulateOptions } from "./commands/simulate.js";
import type { StatsOptions } from "./commands/stats.js";
import { CliError, EXIT, UsageError, describeFileError, exitStatusOf, type ExitStatus } from "./errors.js";
import { STDIN_ARGUMENT } from "./options.js";

declare const __VERSION__: string;

const NAME = "vmballoon";

/** The program's commands and options (cac), for `main` and for the tests that check every command's help. */
export function program() {
  const cli = cac(NAME);

  cli
    .command("simulate", "Run the balloon against the reference guest and monitor (a built-in scenario by default)")
    .option("--driver <driver>", "seed (vmw_balloon 1.2.1.3-k, the default) or modern (today's Linux driver: capabilities, batches, 2 MB pages)")
    .option("--scenario <file>", "Scenario file (JSON, as in SIMULATION.md)")
    .option("--trace <file>", "Write the trace as JSON Lines to this file ('-' for stdout)")
    .option("--json", "Print one JSON summary and nothing else on stdout")
    .option("--report <file>", "Write the report of the run, one HTML page with its charts ('-' for stdout)")
    .example(`  $ ${NAME} simulate --scenario churn.json --trace churn.jsonl`)
    .example(`  $ ${NAME} simulate --report report.html`)
    .example(`  $ ${NAME} simulate --driver modern --scenario batched.json --json`)
    .action(async (options: SimulateOptions) => (await import("./commands/simulate.js")).simulate(options));

  cli
    .command("host", "Run a host of many VMs, each a balloon driver, under ESX's, oVirt MoM's or Proxmox's memory policy (docs/HOST.md)")
    .option("--scenario <name|file>", "A built-in (overcommit, the default; idle-tax, slow-balloon, policies) or a host scenario file ('-' for stdin)")
    .option("--policy <policy>", "Run the scenario under esx, mom or proxmox instead of its own policy (its parameters then dropped)")
    .option("--driver <driver>", "Put every VM that has a balloon driver on seed or modern")
    .option("--trace <file>", "Write the host's trace as JSON Lines to this file ('-' for stdout)")
    .option("--every <seconds>", "In the trace, each VM's record every this many seconds (and at every round); default 1")
    .option("--vm-traces <dir>", "Write each VM's driver trace and the scenario that gives it through simulate, NAME.trace.jsonl and NAME.scenario.json")
    .option("--json", "Print one JSON summary and nothing else on stdout")
    .option("--report <file>", "Write the run's report, one HTML page (what vmballoon report makes of its --trace), to this file ('-' for stdout)")
    .example(`  $ ${NAME} host --scenario idle-tax`)
    .example(`  $ ${NAME} host --scenario slow-balloon --driver modern --json`)
    .example(`  $ ${NAME} host --scenario fleet.json --trace fleet.jsonl --every 60 --vm-traces vms/`)
    .action(async (options: HostOptions) => (await import("./commands/host.js")).host(options));

  cli
    .command("report [trace]", "Write the report of a trace (from simulate, run or host --trace) as one HTML page ('-': stdin)")
    .option("--output <file>", "The HTML file to write, whole or not at all ('-' for stdout)")
    .example(`  $ ${NAME} report churn.jsonl --output churn.html`)
    .action(async (trace: string | undefined, options: ReportOptions) => (await import("./commands/report.js")).report(trace, options));

  cli
    .command("stats", "Show the balloon driver's statistics (vmmemctl) for people, as JSON or for Prometheus")
    .option("--file <file>", `Read this vmmemctl text instead of the kernel's /sys/kernel/debug/vmmemctl ('-' for stdin)`)
    .option("--format <format>", "debugfs (the text itself, byte for byte), json or prometheus; default: a summary with sizes in MiB")
    .option("--json", "The same as --format json")
    .option("--output <file>", "Write to this file instead of stdout ('-'), whole or not at all: a temporary file renamed over it")
    .example(`  $ sudo ${NAME} stats`)
    .example(`  $ sudo ${NAME} stats --format prometheus --output /var/lib/node_exporter/textfile/vmballoon.prom`)
    .action(async (options: StatsOptions) => (await import("./commands/stats.js")).stats(options));

  cli
    .command("detect", "What this machine is: CPU vendor, hypervisor, VMware or not, backdoor version, kernel balloon driver")
    .option("--json", "Print the detection record as JSON and nothing else on stdout")
    .option("--probe", "Also try the backdoor's GETVERSION off VMware, in a child process (a fault kills only the child)")
    .example(`  $ ${NAME} detect --json`)
    .action(async (options: DetectOptions) => (await import("./commands/detect.js")).detectCommand(options));

  cli
    .command("run", "Run the balloon driver in userspace, a cycle a second, until SIGTERM, SIGINT, SIGHUP or SIGQUIT unloads it")
    .option("--host <host>", "vmware (the balloon port; the default) or simulated (the reference monitor behind real memory)")
    .option("--driver <driver>", "seed (vmw_balloon 1.2.1.3-k, the default) or modern (today's Linux driver: capabilities, batches through a real page)")
    .option("--shrinker", "With --driver modern: give pages back on memory pressure (a PSI trigger), as vmwballoon_shrinker_enable=1")
    .option("--pressure <trigger>", "With --shrinker: the PSI trigger on /proc/pressure/memory (default 'some 150000 2000000': 150 ms stalled in 2 s)")
    .option(
      "--memory <kind>",
      "How pages keep their frames: pinned (io_uring fixed buffers; the default, falling back to secret, then mlock), secret (memfd_secret) or mlock",
    )
    .option("--target <pages>", "With --host simulated: the monitor's fixed target, in pages")
    .option("--scenario <file>", "With --host simulated: a scenario's schedule of targets, resets and failures")
    .option("--stats-file <file>", "Rewrite this file after each cycle with the debugfs vmmemctl text")
    .option(
      "--trace <file>",
      "Write every hypervisor command as it happens, and each cycle, as simulate's trace (JSON Lines), flushed each cycle ('-' for stdout)",
    )
    .option("--lock-file <file>", "The lock that makes this run the balloon's only owner (default /run/vmballoon.lock)")
    .option("--interval <duration>", "Time between cycles: 1s (the default), 250ms, 2")
    .option("--force", "With --host vmware: run even though the kernel's balloon driver is loaded")
    .option("--probe", "With --host vmware off VMware: probe the balloon port in a child process and say what is there")
    .option("--json", "Print JSON Lines on stdout: start, each cycle, warnings and limits, exit")
    .example(`  $ sudo ${NAME} run --host simulated --target 16384 --stats-file /run/vmmemctl`)
    .example(`  $ sudo ${NAME} run --driver modern --shrinker`)
    .action(async (options: RunOptions) => (await import("./commands/run.js")).run(options));

  cli
    .command("exporter", "Serve the balloon's statistics to Prometheus (/metrics), read afresh at every scrape, until SIGTERM or SIGINT")
    .option("--listen <address>", "HOST:PORT, :PORT (every address) or [IPv6]:PORT to listen on (default :22128)")
    .option("--file <file>", "Read this vmmemctl text (such as run --stats-file's) instead of the kernel's /sys/kernel/debug/vmmemctl")
    .option("--web-config <file>", "exporter-toolkit's web configuration file (node_exporter's --web.config.file): TLS and basic auth")
    .example(`  $ sudo ${NAME} exporter --listen :22128 --web-config /etc/vmballoon/web-config.yml`)
    .action(async (options: ExporterOptions) => (await import("./commands/exporter.js")).exporter(options));

  cli
    .command("policy", "One round of a host's memory policy (ESX, oVirt MoM or Proxmox VE): each VM's allocation and balloon targets, and why")
    .option("--input <file>", "The round's input (JSON, as in HOST.md 'Policy rounds'; '-' for stdin)")
    .option("--json", "Print the round's output object and nothing else on stdout")
    .example(`  $ ${NAME} policy --input round.json`)
    .example(`  $ ${NAME} policy --input - --json < round.json`)
    .action(async (options: PolicyOptions) => (await import("./commands/policy.js")).policy(options));

  cli.help();
  cli.version(__VERSION__);
  return cli;
}

/**
 * A lone `-` after an option that takes a value is that value (stdin or
 * stdout), as in `--trace -`; so is a word that starts with `-` and a digit,
 * as in `--target -5`, which then gets the option's own message ("must be a
 * whole number …"). The argument parser would take either for a flag; it
 * drops a lone `-` elsewhere (`report -`), which goes through as
 * {@link STDIN_ARGUMENT}.
 */
function attachDashValues(cli: ReturnType<typeof program>, argv: readonly string[]): string[] {
  const valued = new Set<string>();
  for (const command of [cli.globalCommand, ...cli.commands]) {
    for (const option of command.options) {
      if (!option.isBoolean) for (const name of option.names) valued.add(name.length > 1 ? `--${name}` : `-${name}`);
    }
  }
  const out: string[] = [];
  for (const arg of argv) {
    const previous = out[out.length - 1];
    if (/^-(\d|$)/.test(arg) && previous !== undefined && valued.has(previous)) out[out.length - 1] = `${previous}=${arg}`;
    else if (arg === "-") out.push(STDIN_ARGUMENT);
    else out.push(arg);
  }
  return out;
}

/** Runs the program on `argv` (without node and the script) and returns its exit status. */
export async function main(argv: readonly string[]): Promise<ExitStatus> {
  const cli = program();
  try {
    cli.parse(["node", NAME, ...attachDashValues(cli, argv)], { run: false });
    if (cli.options.help || cli.options.version) return EXIT.OK;
    if (!cli.matchedCommand) {
      if (cli.args.length > 0) throw new UsageError(`unknown command '${cli.args[0]}'`);
      // cac checks options only for a command it runs: check the program's own here.
      cli.globalCommand.checkUnknownOptions();
      cli.outputHelp();
      return EXIT.OK;
    }
    const status: unknown = await cli.runMatchedCommand();
    return typeof status === "number" ? (status as ExitStatus) : EXIT.OK;
  } catch (error) {
    return report(error);
  }
}

let stdoutHasFailed = false;

/**
 * For stdout's `error` event (the bin installs it): a full disk or a bad
 * descriptor is one line and exit status 1, once; a reader that went away
 * (EPIPE, as in `| head`) stops the output quietly. Without it, Node reports
 * such an error with a stack trace.
 */
export function stdoutFailed(error: NodeJS.ErrnoException): void {
  if (error.code === "EPIPE" || stdoutHasFailed) return;
  stdoutHasFailed = true;
  const described = describeFileError(error, "write to", "stdout");
  process.exitCode = report(described instanceof CliError ? described : new CliError(`cannot write to stdout: ${error.code ?? error.message}`, EXIT.FAILURE));
}

/** The exit status of a command that returned `status`: a failure when stdout failed under it. */
export function finalStatus(status: ExitStatus): ExitStatus {
  return stdoutHasFailed && status === EXIT.OK ? EXIT.FAILURE : status;
}

/**
 * A message as one line: the line breaks and other control characters it
 * carries from what the user typed (`--format $'x\ny'`, a file name) or from
 * V8 (a JSON syntax error quotes the text around the fault) as escapes.
 */
function oneLine(message: string): string {
  return message.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** One line on stderr for an expected failure; a stack trace only for a bug. */
function report(error: unknown): ExitStatus {
  const status = exitStatusOf(error);
  if (status === undefined) {
    process.stderr.write(`${NAME}: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT.FAILURE;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`${NAME}: ${oneLine(message)}\n`);
  // Bad usage (not bad input) gets a pointer to the usage text.
  if (error instanceof UsageError || (error as Error).name === "CACError") {
    process.stderr.write(`Run '${NAME} --help' for usage.\n`);
  }
  return status;
}
