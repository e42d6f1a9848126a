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
});
