import { policyDecide, parsePolicyInput, type PolicyDecision, type PolicyInput } from "@vmballoon/host";
import { UsageError } from "../errors.js";
import { inputName, readInput, type InputKind } from "../files.js";
import { optionValue, type OptionValue } from "../options.js";
import { colorsFor, mebibytes, styler, type Style } from "../output.js";

export interface PolicyOptions {
  readonly input?: OptionValue;
  readonly json?: boolean;
}

/** One round's input: a host of thousands of VMs with their samples is a few MiB. */
const ROUND: InputKind = { what: "a policy round's input", limit: 64 * 2 ** 20 };

/**
 * `vmballoon policy --input F [--json]`: one round of the host's memory
 * policy (HOST.md "Policy rounds"). `--json` prints exactly the output
 * object; otherwise a table of each VM's targets and the reasons.
 */
export function policy(options: PolicyOptions): number {
  const file = optionValue(options.input, "--input", "a file name ('-' for stdin)");
  if (file === undefined) throw new UsageError("policy needs --input F: one round's input (JSON, as in HOST.md; '-' for stdin)");
  const name = inputName(file);
  const input = parsePolicyInput(readInput(file, ROUND, "read the round's input"), name);
  const decision = policyDecide(input);
  if (options.json) process.stdout.write(`${JSON.stringify(decision.output)}\n`);
  else process.stdout.write(table(name, input, decision, styler(colorsFor(process.stdout))));
  return 0;
}

function table(name: string, input: PolicyInput, { output, reasons }: PolicyDecision, paint: (style: Style, text: string) => string): string {
  const { host } = input;
  const state = output.state === null ? "" : `, state ${output.state}`;
  const lines = [
    paint("bold", `vmballoon policy — ${name}: ${input.policy}${state}`),
    `  host ${host.pages} pages (${mebibytes(host.pages)}), free ${host.free} pages (${mebibytes(host.free)})`,
  ];
  const rows = [
    ["vm", "allocation target", "", "balloon target", "", "was"],
    ...input.vms.map((vm, i) => {
      const out = output.vms[i]!;
      return [
        vm.name,
        String(out.allocationTarget),
        mebibytes(out.allocationTarget),
        String(out.balloonTarget),
        mebibytes(out.balloonTarget),
        out.balloonTarget === vm.target ? "unchanged" : String(vm.target),
      ];
    }),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  rows.forEach((row, r) => {
    const cells = row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)));
    const line = `  ${cells[0]}  ${cells[1]} ${cells[2]}  ${cells[3]} ${cells[4]}  ${cells[5]}`.trimEnd();
    lines.push(r === 0 ? paint("dim", line) : line);
  });
  lines.push(paint("bold", "why"));
  for (const reason of reasons) lines.push(`  ${reason}`);
  return `${lines.join("\n")}\n`;
}
