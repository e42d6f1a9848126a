import { main, stdoutFailed } from "./program.js";

process.stdout.on("error", stdoutFailed);
process.exitCode = await main(process.argv.slice(2));
