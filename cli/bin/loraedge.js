#!/usr/bin/env node
// Launcher of the `loraedge` CLI (package.json `bin`): registers tsx so Node runs the
// TypeScript sources directly (no build step), then hands over to cli/src/main.ts.
// Needs Node ≥ 22: `npx loraedge …` from the repository puts node_modules/.bin (the project's
// Node 22) first on PATH.
const [major] = process.versions.node.split(".").map(Number);
if (major < 22) {
  console.error(`loraedge needs Node >= 22 (this is ${process.version}); run it as \`npx loraedge …\` from the repository.`);
  process.exit(2);
}
const { register } = await import("tsx/esm/api");
register();
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv.slice(2));
// `login` reads one line and `chat` reads until EOF; an open terminal or pipe on stdin must not
// keep the process alive once the command is done.
if (!process.stdin.destroyed) process.stdin.destroy();
