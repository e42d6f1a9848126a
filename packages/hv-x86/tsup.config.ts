import { defineConfig } from "tsup";
import { libraryBuild } from "../../tsup.shared.js";

// Every source file is built on its own, so dist/probe-child.js exists: it is
// run by path in a child process (see src/probe.ts), not exported.
export default defineConfig(libraryBuild());
