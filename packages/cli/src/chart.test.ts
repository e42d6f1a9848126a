import { describe, expect, it } from "vitest";
import { renderChart } from "./chart.js";

const series = {
  size: [0, 100, 200, 400, 800, 800, 800, 400, 200, 0],
  target: [800, 800, 800, 800, 800, 800, 800, 0, 0, 0],
};

describe("renderChart", () => {
  it("draws the balloon in eighths of a row and the target as a line, with the scale and the legend", () => {
    // 800 pages at the top of 4 rows: 32 eighths. 100 pages is 4 eighths (▄), 200 a full bottom row.
    expect(renderChart(series, { width: 10, height: 4 }).split("\n")).toStrictEqual([
      "800 ┤────███   ",
      "    ┤    ███   ",
      "    ┤   █████  ",
      "  0 ┤ ▄███████ ",
      "    └──────────",
      "     cycle 1 cycle 10",
      "     █ balloon size   ─ target (pages)",
      "",
    ]);
  });

  it("paints each run of one colour once, and the same chart when the paint is taken off", () => {
    const calls: string[] = [];
    const style = (name: string, text: string) => {
      calls.push(name);
      return `<${name}>${text}</>`;
    };
    const painted = renderChart(series, { width: 10, height: 4, style });
    expect(painted.replace(/<\w+>|<\/>/g, "")).toBe(renderChart(series, { width: 10, height: 4 }));
    // The top row is "────" (target) then "███   " (balloon): two runs, not ten cells.
    expect(painted.split("\n")[0]).toBe("<dim>800</> ┤<yellow>────</><cyan>███   </>");
    // Rows: 2 runs at the top, 1 in each of the other three; the legend: 2.
    expect(calls.filter((name) => name !== "dim")).toHaveLength(2 + 3 + 2);
  });

  it("paints the part of the balloon in 2 MB pages green and the rest cyan, with a legend that says so", () => {
    const style = (name: string, text: string) => `<${name}>${text}</>`;
    // Half of each bar in 2 MB pages: the bottom rows of the full bars are green, their top rows cyan.
    const huge = series.size.map((size) => size / 2);
    const lines = renderChart({ ...series, huge }, { width: 10, height: 4, style }).split("\n");
    expect(lines[0]).toBe("<dim>800</> ┤<yellow>────</><cyan>███   </>");
    expect(lines[2]).toBe("<dim>   </> ┤<cyan>   █</><green>███</><cyan>█  </>");
    expect(lines[3]).toBe("<dim>  0</> ┤<cyan> ▄█</><green>█████</><cyan>█ </>");
    expect(lines[6]).toBe("     <green>█</> in 2 MB pages   <cyan>█</> in 4 KB pages   <yellow>─</> target (4 KB frames)");
    // The same drawing as without the series, once the paint is taken off (but the legend).
    const plain = (text: string) => text.replace(/<\w+>|<\/>/g, "").split("\n");
    expect(plain(renderChart({ ...series, huge }, { width: 10, height: 4, style })).slice(0, 6)).toEqual(
      plain(renderChart(series, { width: 10, height: 4 })).slice(0, 6),
    );
  });
});
