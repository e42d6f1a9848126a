import { finalStatus, main, stdoutFailed } from "./program.js";

process.stdout.on("error", stdoutFailed);
process.exitCode = finalStatus(await main(process.argv.slice(2)));
