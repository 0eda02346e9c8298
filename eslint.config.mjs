// ESLint (flat config) for the review pages' scripts: videocam/render/report/assets/*.js.
// `npm ci && npm run lint` (.ci/run does both). The scripts are classic browser scripts, not
// modules: page.py concatenates them into each page's one inline <script> (common.js first),
// so the only global they share is the VC namespace that common.js defines.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["videocam/render/report/assets/**/*.js"],
    languageOptions: {
      ecmaVersion: 2020,
      sourceType: "script",
      globals: { ...globals.browser, VC: "readonly" },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      eqeqeq: "error",
      // Nothing but VC reaches the global scope; each file's code runs inside a function.
      "no-implicit-globals": "error",
      strict: ["error", "function"],
      "no-shadow": "error",
      "no-use-before-define": ["error", { functions: false, classes: true, variables: true }],
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "all" }],
      "consistent-return": "error",
      // As the page's policy and its tests require: no code from strings, no markup from strings.
      "no-eval": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "Outside strings go in as text: use VC.el or textContent." },
        { property: "outerHTML", message: "Outside strings go in as text: use VC.el or textContent." },
        { property: "insertAdjacentHTML", message: "Outside strings go in as text: use VC.el." },
      ],
      // The Python code's limits (ruff C90, 80 lines), for the functions inside each file's IIFE.
      complexity: ["error", 15],
      "max-lines-per-function": ["error", { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // common.js defines the namespace the other files read.
    files: ["videocam/render/report/assets/common.js"],
    languageOptions: { globals: { VC: "off" } },
  },
];
