import { execFileSync, spawnSync } from "node:child_process";
// A real parser of the text exposition format, from npm: a port of the
// official Python client's parser (prometheus/client_python), chosen over
// Debian's promtool or python3-prometheus-client because an npm
// devDependency installs with `npm install` on any machine, and tests must
// install nothing when they run. It is lenient about names, types and
// grouping, so the checks below add what promtool would say; where promtool
// is on the PATH, the last test runs it too.
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { formatMetricFamilies, parse, toPrometheus } from "./index.js";
import { sample, samples } from "./test-fixtures.js";

interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

function families(text: string): ParsedFamily[] {
  return parsePrometheusTextFormat(text) as ParsedFamily[];
}

/** The value of the one sample of `name` whose labels include `labels`. */
function value(text: string, name: string, labels: Record<string, string> = {}): string {
  const family = families(text).find((f) => f.name === name);
  const matches = family?.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)) ?? [];
  if (matches.length !== 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${matches.length} samples`);
  return matches[0]!.value;
}

describe("toPrometheus", () => {
  it.each(samples())("$name: a real parser accepts it, and it keeps the exposition format's rules", ({ text }) => {
    const exposition = toPrometheus(parse(text));
    expect(exposition.endsWith("\n")).toBe(true);
    const parsed = families(exposition);
    expect(parsed.length).toBeGreaterThan(8);
    // Each family once (samples of a family together), typed, with help.
    expect(new Set(parsed.map((f) => f.name)).size).toBe(parsed.length);
    for (const family of parsed) {
      expect(family.name).toMatch(/^vmware_balloon_[a-z0-9_]+$/);
      expect(["GAUGE", "COUNTER"]).toContain(family.type);
      expect(family.help.length).toBeGreaterThan(10);
      if (family.type === "COUNTER") expect(family.name).toMatch(/_total$/);
      for (const metric of family.metrics) {
        expect(metric.value).toMatch(/^\d+$/);
        for (const label of Object.keys(metric.labels ?? {})) expect(label).toMatch(/^[a-z_][a-z0-9_]*$/);
      }
    }
  });

  it("gives sizes and rates in bytes", () => {
    const exposition = toPrometheus(parse(sample("seed-typical.txt")));
    expect(value(exposition, "vmware_balloon_size_bytes")).toBe(String(32770 * 4096));
    expect(value(exposition, "vmware_balloon_target_bytes")).toBe(String(40000 * 4096));
    const rates = families(exposition).find((family) => family.name === "vmware_balloon_rate_limit_bytes_per_second");
    // One word for each flavour, as on the allocation counters (the glossary of DESIGN.md).
    expect(rates?.metrics).toStrictEqual([
      { labels: { operation: "alloc", flavour: "nosleep" }, value: String(16384 * 4096) },
      { labels: { operation: "alloc", flavour: "cansleep" }, value: String(2048 * 4096) },
      { labels: { operation: "free" }, value: String(16400 * 4096) },
    ]);
  });

  it("counts commands by command and result: successes are attempts less failures", () => {
    const exposition = toPrometheus(parse(sample("seed-typical.txt")));
    // lock: 32773 (3 failed); target: 7 (1 failed)
    expect(value(exposition, "vmware_balloon_commands_total", { command: "lock", result: "success" })).toBe("32770");
    expect(value(exposition, "vmware_balloon_commands_total", { command: "lock", result: "failure" })).toBe("3");
    expect(value(exposition, "vmware_balloon_commands_total", { command: "get_target", result: "success" })).toBe("6");
    expect(value(exposition, "vmware_balloon_page_allocations_total", { flavour: "nosleep", result: "success" })).toBe("32770");
  });

  it("counts modern commands by the protocol's names and page counters by page size", () => {
    const exposition = toPrometheus(parse(sample("modern-busy.txt")));
    // 2m-lock: 1171979 (3943 failed); alloc (2M) 9823754, allocFail (2M) 831970
    expect(value(exposition, "vmware_balloon_commands_total", { command: "batched_2m_lock", result: "success" })).toBe(String(1171979 - 3943));
    expect(value(exposition, "vmware_balloon_page_allocations_total", { page_size: "2M", result: "failure" })).toBe("831970");
    expect(value(exposition, "vmware_balloon_page_allocations_total", { page_size: "2M", result: "success" })).toBe(String(9823754 - 831970));
    expect(value(exposition, "vmware_balloon_shrinker_freed_bytes_total")).toBe(String(1037872 * 4096));
    expect(value(exposition, "vmware_balloon_capability", { capability: "batched_2m_cmds", set: "used" })).toBe("1");
  });

  it("counts a counter that wrapped past its failures modulo its width", () => {
    // seed-signed.txt: guestType 17 (4294967295 failed): 17 - (2^32 - 1) mod 2^32 = 18.
    const exposition = toPrometheus(parse(sample("seed-signed.txt")));
    expect(value(exposition, "vmware_balloon_commands_total", { command: "guest_id", result: "success" })).toBe("18");
  });

  it("prints 64-bit counters exactly", () => {
    const exposition = toPrometheus(parse(sample("modern-huge-counters.txt")));
    expect(value(exposition, "vmware_balloon_timer_runs_total")).toBe("10316742655098317219");
  });

  const promtool = spawnSync("promtool", ["--version"]).status === 0;
  it.skipIf(!promtool).each(samples())("$name: promtool check metrics finds nothing to say (when promtool is installed)", ({ text }) => {
    const out = execFileSync("promtool", ["check", "metrics"], { input: toPrometheus(parse(text)), encoding: "utf8" });
    expect(out).toBe("");
  });

  it("formatMetricFamilies: another program's families in the same format, under its own prefix, fractions and escapes included", () => {
    const text = formatMetricFamilies(
      [
        { name: "scrape_duration_seconds", help: "Time a scrape took.", type: "gauge", samples: [{ value: 0.000734 }] },
        { name: "build_info", help: "Build\\info\nlines.", type: "gauge", samples: [{ labels: { version: '1.0 "beta"\\x' }, value: 1 }] },
      ],
      "vmballoon_exporter_",
    );
    expect(text).toBe(
      "# HELP vmballoon_exporter_scrape_duration_seconds Time a scrape took.\n# TYPE vmballoon_exporter_scrape_duration_seconds gauge\nvmballoon_exporter_scrape_duration_seconds 0.000734\n" +
        '# HELP vmballoon_exporter_build_info Build\\\\info\\nlines.\n# TYPE vmballoon_exporter_build_info gauge\nvmballoon_exporter_build_info{version="1.0 \\"beta\\"\\\\x"} 1\n',
    );
    expect(families(text).map((family) => family.name)).toEqual(["vmballoon_exporter_scrape_duration_seconds", "vmballoon_exporter_build_info"]);
    // Without a prefix given, the balloon's own.
    expect(formatMetricFamilies([{ name: "x", help: "x.", type: "counter", samples: [{ value: 2n }] }])).toContain("\nvmware_balloon_x 2\n");
  });
});
