import { defineConfig } from "tsup";
import { libraryBuild } from "../../tsup.shared.js";

// probe-child is run by path in a child process (see src/probe.ts); it is not an export.
export default defineConfig(libraryBuild(["src/index.ts", "src/probe-child.ts"]));
