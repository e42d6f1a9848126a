/** Two series over the same cycles, drawn as text: the balloon's size as bars, its target as a line. */
export interface ChartSeries {
  readonly size: ArrayLike<number>;
  readonly target: ArrayLike<number>;
  /**
   * The part of `size` held in 2 MB pages (today's driver), in the same
   * unit: rows it fills are drawn in green, the rest of the bar (4 KB pages)
   * in cyan.
   */
  readonly huge?: ArrayLike<number> | undefined;
}

export interface ChartOptions {
  readonly width?: number;
  readonly height?: number;
  /** Colours the bars and the line (ANSI), for a terminal. */
  readonly style?: (style: "cyan" | "green" | "yellow" | "dim", text: string) => string;
}

const EIGHTHS = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

function formatPages(pages: number): string {
  return pages >= 1e6 ? `${(pages / 1e6).toFixed(1)}M` : pages >= 1e4 ? `${Math.round(pages / 1e3)}k` : String(pages);
}

/**
 * A chart of target against balloon size, one column per group of cycles
 * (each column shows the last cycle of its group). Bars are the size, in
 * eighths of a row; `─` marks the row of the target.
 */
export function renderChart(series: ChartSeries, options: ChartOptions = {}): string {
  const cycles = series.size.length;
  if (cycles === 0) return "";
  const width = Math.max(1, Math.min(options.width ?? 60, cycles));
  const height = Math.max(2, options.height ?? 10);
  const paint = options.style ?? ((_s: string, text: string) => text);

  const size: number[] = [];
  const target: number[] = [];
  const huge: number[] = [];
  for (let column = 0; column < width; column++) {
    const last = Math.min(cycles - 1, Math.floor(((column + 1) * cycles) / width) - 1);
    size.push(series.size[last]!);
    target.push(series.target[last]!);
    huge.push(series.huge?.[last] ?? 0);
  }
  const top = Math.max(1, ...size, ...target);
  const label = formatPages(top);
  const pad = label.length;

  const rows: string[] = [];
  for (let row = height - 1; row >= 0; row--) {
    // Cells of one colour in a row are painted together: one escape pair a run, not a cell.
    let line = "";
    let run = "";
    let runStyle: "cyan" | "green" | "yellow" = "cyan";
    for (let column = 0; column < width; column++) {
      const targetRow = Math.min(height - 1, Math.floor((target[column]! / top) * height - 1e-9));
      const eighths = Math.round((size[column]! / top) * height * 8) - row * 8;
      const onTarget = target[column]! > 0 && targetRow === row && eighths < 8;
      // A cell wholly within the 2 MB pages' part of the bar.
      const inHuge = Math.round((huge[column]! / top) * height * 8) - row * 8 >= Math.min(8, eighths) && eighths > 0;
      const style = onTarget ? "yellow" : inHuge ? "green" : "cyan";
      if (style !== runStyle && run !== "") {
        line += paint(runStyle, run);
        run = "";
      }
      runStyle = style;
      run += onTarget ? "─" : EIGHTHS[Math.max(0, Math.min(8, eighths))]!;
    }
    line += paint(runStyle, run);
    const axis = row === height - 1 ? label.padStart(pad) : row === 0 ? "0".padStart(pad) : " ".repeat(pad);
    rows.push(`${paint("dim", axis)} ┤${line}`);
  }
  rows.push(`${" ".repeat(pad)} └${"─".repeat(width)}`);
  const span = `cycle 1${" ".repeat(Math.max(1, width - 7 - String(cycles).length - 6))}cycle ${cycles}`;
  rows.push(`${" ".repeat(pad + 2)}${span}`);
  const legend = series.huge
    ? `${paint("green", "█")} in 2 MB pages   ${paint("cyan", "█")} in 4 KB pages   ${paint("yellow", "─")} target (4 KB frames)`
    : `${paint("cyan", "█")} balloon size   ${paint("yellow", "─")} target (pages)`;
  rows.push(`${" ".repeat(pad + 2)}${legend}`);
  return `${rows.join("\n")}\n`;
}

/** The chart's width on a terminal of `columns` (80 when unknown): the room beside the axis labels, 20 to 72 columns. */
export function chartWidth(columns: number | undefined): number {
  return Math.max(20, Math.min(72, (columns || 80) - 12));
}
