import type { SeriesPoints } from "./series.js";

/** A `workload.csv` read into its two series (`active` absent: the default, the demand). */
export interface CsvWorkload {
  readonly demand: SeriesPoints;
  readonly active?: SeriesPoints;
}

/** The column of GWA-T-12 (Bitbrains) that holds the guest's memory in use. */
const GWA_MEMORY = "Memory usage [KB]";
const GWA_TIME = "Timestamp [ms]";

/** A `workload.csv` that is neither layout: `line` is 1-based (0: the whole file). */
export class WorkloadError extends Error {
  override readonly name = "WorkloadError";
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(line === 0 ? detail : `line ${line}: ${detail}`);
  }
}

function decimal(text: string, line: number, what: string): number {
  const value = text.trim() === "" ? Number.NaN : Number(text);
  if (!Number.isFinite(value) || value < 0) throw new WorkloadError(line, `${what} is ${JSON.stringify(text.trim())}, not a non-negative number`);
  return value;
}

/**
 * Reads a `workload.csv` of HOST.md: `second,demandMiB[,activeMiB]` rows (an
 * optional header line that starts with a letter), seconds increasing; or a
 * GWA-T-12 (Bitbrains) per-VM file as that dataset publishes it: `;`-separated
 * (with a tab after each `;`), the header naming `Timestamp [ms]` and
 * `Memory usage [KB]`, the first row second 0 and each later row at its
 * timestamp's distance from the first (the dataset's timestamps are Unix
 * seconds, whatever the header says), demand `Memory usage [KB] / 1024` MiB,
 * active `demand × activeRatio`. Throws {@link WorkloadError}.
 */
export function parseWorkloadCsv(text: string, activeRatio: number): CsvWorkload {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop();
  if (lines.length === 0) throw new WorkloadError(0, "empty file: expected second,demandMiB[,activeMiB] rows or a GWA-T-12 file");
  return lines[0]!.includes(";") ? gwa(lines, activeRatio) : plain(lines);
}

function plain(lines: readonly string[]): CsvWorkload {
  const demand: [number, number][] = [];
  const active: [number, number][] = [];
  let columns = 0;
  const first = /^\s*[A-Za-z]/.test(lines[0]!) ? 1 : 0;
  if (first === lines.length) throw new WorkloadError(0, "a header and no rows");
  for (let i = first; i < lines.length; i++) {
    const line = i + 1;
    const cells = lines[i]!.split(",");
    if (cells.length < 2 || cells.length > 3) throw new WorkloadError(line, `expected second,demandMiB[,activeMiB], got ${cells.length} field(s)`);
    if (columns === 0) columns = cells.length;
    else if (cells.length !== columns) throw new WorkloadError(line, `${cells.length} fields where the first row has ${columns}`);
    const second = decimal(cells[0]!, line, "second");
    if (!Number.isInteger(second)) throw new WorkloadError(line, `second ${second} is not a whole second`);
    if (demand.length > 0 && second <= demand[demand.length - 1]![0])
      throw new WorkloadError(line, `second ${second} does not follow ${demand[demand.length - 1]![0]}`);
    const mib = decimal(cells[1]!, line, "demandMiB");
    demand.push([second, mib]);
    if (columns === 3) active.push([second, decimal(cells[2]!, line, "activeMiB")]);
  }
  return columns === 3 ? { demand, active } : { demand };
}

function gwa(lines: readonly string[], activeRatio: number): CsvWorkload {
  const header = lines[0]!.split(";").map((cell) => cell.trim());
  const time = header.indexOf(GWA_TIME);
  const memory = header.indexOf(GWA_MEMORY);
  if (time !== 0 || memory < 0)
    throw new WorkloadError(1, `a ;-separated file whose header is not GWA-T-12's (expected "${GWA_TIME}" first and "${GWA_MEMORY}")`);
  if (lines.length === 1) throw new WorkloadError(0, "a header and no rows");
  const demand: [number, number][] = [];
  const active: [number, number][] = [];
  let start = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = i + 1;
    const cells = lines[i]!.split(";");
    if (cells.length !== header.length) throw new WorkloadError(line, `${cells.length} fields where the header has ${header.length}`);
    const stamp = decimal(cells[time]!, line, GWA_TIME);
    if (!Number.isInteger(stamp)) throw new WorkloadError(line, `${GWA_TIME} ${stamp} is not a whole number`);
    if (i === 1) start = stamp;
    const second = stamp - start;
    if (demand.length > 0 && second <= demand[demand.length - 1]![0]) throw new WorkloadError(line, `${GWA_TIME} ${stamp} does not follow the row before`);
    const mib = decimal(cells[memory]!, line, GWA_MEMORY) / 1024;
    demand.push([second, mib]);
    active.push([second, mib * activeRatio]);
  }
  return { demand, active };
}
