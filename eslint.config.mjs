// ESLint for the whole repository (`npm run lint`): typescript-eslint's
// recommended rules, type-aware for the packages' sources and tests (each
// package's tsconfig.json, through the project service), plain for the
// scripts (vm/, tools/, benchmarks, configs). Formatting is prettier's
// (.prettierrc.json), not ESLint's.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/", "**/.tsc/", "**/.bench/", "**/node_modules/", "coverage/", ".vm/", "__fixtures__/"] },
  js.configs.recommended,
  {
    // Control characters in patterns are this code's subject (escaping what a user typed, a
    // terminal's escapes), not slips.
    rules: { "no-control-regex": "off" },
  },
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `_name` marks a parameter or binding that is there for its position.
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    // Configs outside any tsconfig: linted without types.
    files: ["*.ts", "packages/*/*.ts"],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    languageOptions: { globals: { ...globals.node } },
  },
);
