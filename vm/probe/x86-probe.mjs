#!/usr/bin/env node
// ============================================================================
// THROWAWAY PROBE — to be replaced by `@vmballoon/hv-x86` and the `vmballoon`
// CLI (`detect [--json] [--probe]`, `run --host vmware --probe`).
//
// It exists only so that the QEMU harness (`npm run test:vm`) can prove itself
// before the project's own x86 binding lands: the same technique (machine code
// written to an anonymous page, mprotect'ed read+execute, called through
// koffi), in as few lines as possible. Nothing in packages/** may import it.
// When the final checks in vm/checks.mjs are enabled and passing, delete this
// folder and the "probe" checks.
// ============================================================================
//
// Usage (prints ONE JSON object on stdout; numbers in registers are "0x%08x"):
//   x86-probe.mjs cpuid [LEAF] [SUBLEAF]       CPUID (default leaf 0x40000000)
//   x86-probe.mjs ioperm [FROM] [NUM]          ioperm(FROM, NUM, 1) (default 0x5658, 4)
//   x86-probe.mjs iopl [LEVEL]                 iopl(LEVEL) (default 3)
//   x86-probe.mjs getversion [--no-ioperm]     backdoor GETVERSION (command 10) on 0x5658
//   x86-probe.mjs balloon-start [--no-ioperm]  balloon START (EAX magic 0x456c6d6f, ECX 0, EBX 2) on 0x5670
//   x86-probe.mjs contained SUBCOMMAND...      runs the subcommand in a child process and reports
//                                              how it ended (exit status or signal) — a fault in
//                                              the child never takes this process down.
// Unless --no-ioperm is given, the port I/O subcommands first call
// ioperm(port, 4, 1) (root only) so that the IN is allowed from user mode.

import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const BACKDOOR_MAGIC = 0x564d5868; // 'VMXh'
const BACKDOOR_PORT = 0x5658;
const GETVERSION = 10;
const BALLOON_MAGIC = 0x456c6d6f; // 'Elmo'
const BALLOON_PORT = 0x5670;
const BALLOON_START = 0;
const BALLOON_CAPABILITIES = 2; // basic commands, as the seed driver sends for protocol 2

const hex = (n) => "0x" + (n >>> 0).toString(16).padStart(8, "0");

function loadKoffi() {
  // Resolve koffi the way the packed @vmballoon/hv-x86 would, so the check
  // proves that its prebuilt native module came along; fall back to a koffi
  // reachable from here (running from the repo).
  const here = createRequire(import.meta.url);
  try {
    return createRequire(here.resolve("@vmballoon/hv-x86/package.json"))("koffi");
  } catch {
    return here("koffi");
  }
}

let native;
function bind() {
  if (native) return native;
  const koffi = loadKoffi();
  const libc = koffi.load("libc.so.6");
  native = {
    koffi,
    mmap: libc.func("void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)"),
    mprotect: libc.func("int mprotect(void *addr, size_t len, int prot)"),
    memcpy: libc.func("void *memcpy(void *dst, const void *src, size_t n)"),
    ioperm: libc.func("int ioperm(unsigned long from, unsigned long num, int turn_on)"),
    iopl: libc.func("int iopl(int level)"),
    strerror: libc.func("const char *strerror(int errnum)"),
  };
  return native;
}

// Both trampolines take a pointer to uint32_t regs[6] = {eax, ebx, ecx, edx, esi, edi},
// load the registers from it, run the instruction, and store them back.
const TRAMPOLINES = {
  // push rbx; mov r8,rdi; mov eax,[r8]; mov ecx,[r8+8]; cpuid;
  // mov [r8],eax; mov [r8+4],ebx; mov [r8+8],ecx; mov [r8+12],edx; pop rbx; ret
  cpuid: [
    0x53, 0x49, 0x89, 0xf8, 0x41, 0x8b, 0x00, 0x41, 0x8b, 0x48, 0x08, 0x0f, 0xa2, 0x41, 0x89, 0x00, 0x41, 0x89, 0x58,
    0x04, 0x41, 0x89, 0x48, 0x08, 0x41, 0x89, 0x50, 0x0c, 0x5b, 0xc3,
  ],
  // push rbx; push rdi; mov r8,rdi; mov eax,[r8]; mov ebx,[r8+4]; mov ecx,[r8+8];
  // mov edx,[r8+12]; mov esi,[r8+16]; mov edi,[r8+20]; in eax,dx; pop r8;
  // mov [r8],eax; ... mov [r8+20],edi; pop rbx; ret
  in: [
    0x53, 0x57, 0x49, 0x89, 0xf8, 0x41, 0x8b, 0x00, 0x41, 0x8b, 0x58, 0x04, 0x41, 0x8b, 0x48, 0x08, 0x41, 0x8b, 0x50,
    0x0c, 0x41, 0x8b, 0x70, 0x10, 0x41, 0x8b, 0x78, 0x14, 0xed, 0x41, 0x58, 0x41, 0x89, 0x00, 0x41, 0x89, 0x58, 0x04,
    0x41, 0x89, 0x48, 0x08, 0x41, 0x89, 0x50, 0x0c, 0x41, 0x89, 0x70, 0x10, 0x41, 0x89, 0x78, 0x14, 0x5b, 0xc3,
  ],
};

function trampoline(name) {
  const n = bind();
  const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, PAGE = 4096;
  const page = n.mmap(null, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page === null || BigInt(page) === 0xffffffffffffffffn) throw new Error(`mmap failed: errno ${n.koffi.errno()}`);
  const code = Buffer.from(TRAMPOLINES[name]);
  n.memcpy(page, code, code.length);
  if (n.mprotect(page, PAGE, PROT_READ | PROT_EXEC) !== 0) throw new Error(`mprotect failed: errno ${n.koffi.errno()}`);
  const proto = n.koffi.proto(`void tramp_${name}(uint32_t *regs)`);
  const fn = n.koffi.decode(page, proto);
  return (regs) => {
    const r = new Uint32Array(6);
    r.set(regs.map((v) => v >>> 0));
    fn(r);
    return r;
  };
}

function regsObject(r) {
  return { eax: hex(r[0]), ebx: hex(r[1]), ecx: hex(r[2]), edx: hex(r[3]), esi: hex(r[4]), edi: hex(r[5]) };
}

function sysCall(name, fn, args) {
  const n = bind();
  const rc = fn(...args);
  const errno = rc === 0 ? 0 : n.koffi.errno();
  return { call: `${name}(${args.map((a) => (a > 9 ? hex(a) : a)).join(", ")})`, ok: rc === 0, rc, errno, error: rc === 0 ? null : n.strerror(errno) };
}

function portIo(port, regs, args) {
  const out = {};
  if (!args.includes("--no-ioperm")) {
    out.ioperm = sysCall("ioperm", bind().ioperm, [port, 4, 1]);
    if (!out.ioperm.ok) return { ...out, regs: null };
  }
  const r = trampoline("in")(regs);
  return { ...out, regs: regsObject(r), raw: Array.from(r) };
}

const num = (s, dflt) => (s === undefined || s.startsWith("--") ? dflt : Number(s));

function run(argv) {
  const [sub, ...args] = argv;
  switch (sub) {
    case "cpuid": {
      const leaf = num(args[0], 0x40000000), subleaf = num(args[1], 0);
      const r = trampoline("cpuid")([leaf, 0, subleaf, 0, 0, 0]);
      const sig = Buffer.alloc(12);
      sig.writeUInt32LE(r[1], 0), sig.writeUInt32LE(r[2], 4), sig.writeUInt32LE(r[3], 8);
      return { leaf: hex(leaf), ...regsObject(r), signature: sig.toString("latin1").replace(/\0+$/, "") };
    }
    case "ioperm":
      return sysCall("ioperm", bind().ioperm, [num(args[0], BACKDOOR_PORT), num(args[1], 4), 1]);
    case "iopl":
      return sysCall("iopl", bind().iopl, [num(args[0], 3)]);
    case "getversion": {
      // EBX starts as ~magic so that an IN that reads nothing cannot look like an answer.
      const out = portIo(BACKDOOR_PORT, [BACKDOOR_MAGIC, ~BACKDOOR_MAGIC, GETVERSION, BACKDOOR_PORT, 0, 0], args);
      const answered = out.raw !== undefined && out.raw[1] === BACKDOOR_MAGIC;
      delete out.raw;
      return { ...out, backdoor: answered ? { version: out.regs && parseInt(out.regs.eax, 16) } : null };
    }
    case "balloon-start": {
      const out = portIo(BALLOON_PORT, [BALLOON_MAGIC, BALLOON_CAPABILITIES, BALLOON_START, BALLOON_PORT, 0, 0], args);
      delete out.raw;
      return { ...out, status: out.regs ? out.regs.eax : null };
    }
    case "contained": {
      if (args.length === 0) throw new Error("contained: missing subcommand");
      const self = fileURLToPath(import.meta.url);
      const child = spawnSync(process.execPath, [self, ...args], { encoding: "utf8", timeout: 60_000 });
      let json = null;
      try {
        json = JSON.parse(child.stdout.trim().split("\n").pop() || "null");
      } catch {
        /* the child died before printing */
      }
      return {
        child: { command: args.join(" "), status: child.status, signal: child.signal, output: json, stderr: child.stderr.slice(-400) },
        parent: { survived: true, pid: process.pid },
      };
    }
    default:
      throw new Error(`unknown subcommand '${sub}' (see the header of ${fileURLToPath(import.meta.url)})`);
  }
}

try {
  process.stdout.write(JSON.stringify(run(process.argv.slice(2))) + "\n");
} catch (error) {
  process.stderr.write(`x86-probe: ${error?.message ?? error}\n`);
  process.exitCode = 1;
}
