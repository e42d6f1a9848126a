import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CgroupMemoryReader, MeminfoReader, findMemoryCgroup, parseFrameLimit, parseMeminfo } from "./meminfo.js";

const MEMINFO = `MemTotal:       24684092 kB
MemFree:        21654912 kB
MemAvailable:   23895548 kB
Buffers:           56456 kB
`;

const ZONEINFO = `Node 0, zone      DMA
  per-node stats
  pages free     3840
        spanned  4095
        present  3998
  start_pfn:           1
Node 0, zone    DMA32
        spanned  1044480
  start_pfn:           4096
Node 0, zone   Normal
        spanned  5505024
  start_pfn:           1048576
Node 0, zone  Movable
        spanned  0
        present  0
`;

describe("/proc/meminfo and /proc/zoneinfo", () => {
  it("reads MemTotal, MemFree and MemAvailable in pages", () => {
    expect(parseMeminfo(MEMINFO)).toEqual({ totalPages: 6171023, freePages: 5413728, availablePages: 5973887 });
  });

  it("says which line is missing", () => {
    expect(() => parseMeminfo("MemTotal: 1 kB\nMemFree: 1 kB\n")).toThrow("/proc/meminfo has no MemAvailable line");
  });

  it("finds one past the highest frame of the zones", () => {
    expect(parseFrameLimit(ZONEINFO)).toBe(1048576 + 5505024);
    expect(parseFrameLimit("")).toBe(0);
  });

  it.skipIf(process.platform !== "linux")("reads this machine's figures again and again through one open file (needs Linux)", () => {
    const reader = new MeminfoReader();
    const first = reader.read();
    const second = reader.read();
    reader.close();
    expect(second.totalPages).toBe(first.totalPages);
    expect(first.totalPages).toBe(Math.floor(Number(/^MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 4));
    expect(first.availablePages).toBeLessThanOrEqual(first.totalPages);
  });
});

const MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

describe("the process's memory cgroup", () => {
  it("v1: the memory line of /proc/self/cgroup under the memory hierarchy's mount, with each ancestor up to it", () => {
    const cgroup = "9:name=systemd:/\n4:memory:/process_api/8327dd\n0::/\n";
    expect(findMemoryCgroup(cgroup, MOUNTINFO)).toStrictEqual({
      version: 1,
      directories: ["/sys/fs/cgroup/memory/process_api/8327dd", "/sys/fs/cgroup/memory/process_api", "/sys/fs/cgroup/memory"],
    });
  });

  it("v2: the 0:: line under the cgroup2 mount; a mount of a sub-tree (a container) is followed from its root", () => {
    const mountinfo = "50 40 0:40 /system.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    expect(findMemoryCgroup("0::/system.slice/vmballoon.service\n", mountinfo)).toStrictEqual({
      version: 2,
      directories: ["/sys/fs/cgroup/vmballoon.service", "/sys/fs/cgroup"],
    });
  });

  it("none when no hierarchy with memory is mounted", () => {
    expect(findMemoryCgroup("4:memory:/x\n", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n")).toBe(undefined);
  });

  it("reads every level with a limit through open files, in pages, again and again (v1 and v2 files)", () => {
    const root = mkdtempSync(join(tmpdir(), "vmballoon-cgroup-"));
    const inner = join(root, "box");
    mkdirSync(inner);
    writeFileSync(join(root, "memory.limit_in_bytes"), "9223372036854771712\n");
    writeFileSync(join(root, "memory.usage_in_bytes"), "999\n");
    writeFileSync(join(root, "memory.stat"), "cache 0\n");
    writeFileSync(join(inner, "memory.limit_in_bytes"), `${512 * 2 ** 20}\n`);
    writeFileSync(join(inner, "memory.usage_in_bytes"), `${100 * 2 ** 20}\n`);
    writeFileSync(join(inner, "memory.stat"), `cache 5\ntotal_inactive_file ${2 * 2 ** 20}\ninactive_file 7\n`);
    const reader = new CgroupMemoryReader({ version: 1, directories: [inner, root] });
    const expected = [{ path: inner, limitFile: "memory.limit_in_bytes", limitPages: 131072, usagePages: 25600, inactiveFilePages: 512 }];
    expect(reader.read()).toStrictEqual(expected);
    writeFileSync(join(inner, "memory.usage_in_bytes"), `${200 * 2 ** 20}\n`);
    expect(reader.read()[0]!.usagePages).toBe(51200);
    reader.close();

    const v2 = join(root, "v2");
    mkdirSync(v2);
    writeFileSync(join(v2, "memory.max"), "max\n");
    writeFileSync(join(v2, "memory.current"), "4096\n");
    writeFileSync(join(v2, "memory.stat"), "inactive_file 8192\n");
    const unlimited = new CgroupMemoryReader({ version: 2, directories: [v2, root] }); // root has no memory.max: left out
    expect(unlimited.read()).toStrictEqual([]);
    writeFileSync(join(v2, "memory.max"), `${2 ** 30}\n`);
    expect(unlimited.read()).toStrictEqual([{ path: v2, limitFile: "memory.max", limitPages: 262144, usagePages: 1, inactiveFilePages: 2 }]);
    unlimited.close();
  });
});
