// ESLint for the whole repository (`npm run lint`): typescript-eslint's
// recommended rules, type-aware for the packages' sources and tests (each
// package's tsconfig.json, through the project service), without types for
// the other TypeScript (configs, test fixtures of tools/) and plain for the
// scripts (vm/, tools/, benchmarks). Formatting is prettier's
// (.prettierrc.json), not ESLint's.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

/** `_name` marks a parameter or binding that is there for its position. */
const unused = ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }];

export default tseslint.config(
  { ignores: ["**/dist/", "**/.tsc/", "**/.bench/", "**/node_modules/", "coverage/", ".vm/", "__fixtures__/"] },
  js.configs.recommended,
  {
    // Control characters in patterns are this code's subject (escaping what a user typed, a
    // terminal's escapes), not slips.
    rules: { "no-control-regex": "off", "no-unused-vars": unused },
  },
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommended],
    rules: { "@typescript-eslint/no-unused-vars": unused },
  },
  {
    files: ["packages/*/src/**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    // Tests read what the program printed (JSON.parse: `any`) and assert on it: a wrong shape fails the
    // assertion that reads it, so the unsafe-any rules would only add casts.
    files: ["**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    languageOptions: { globals: { ...globals.node } },
  },
);
