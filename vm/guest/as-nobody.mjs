// Runs argv[2..] as nobody (uid and gid 65534) and exits as it did: how the
// checks see a command without root (no ioperm, so a backdoor IN faults).
import { spawnSync } from "node:child_process";

const [command, ...args] = process.argv.slice(2);
const child = spawnSync(command, args, { stdio: "inherit", uid: 65534, gid: 65534 });
if (child.error) {
  console.error(`as-nobody: ${child.error.message}`);
  process.exit(127);
}
process.exit(child.signal ? 128 + 11 : child.status);
