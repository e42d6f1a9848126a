import { defineConfig } from "tsup";
import { libraryBuild } from "../../tsup.shared.js";

export default defineConfig(libraryBuild({ index: "src/index.ts", "sim/index": "src/sim/index.ts" }));
