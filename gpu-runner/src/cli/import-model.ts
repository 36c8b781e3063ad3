/**
 * npm run model:import -- <source> [--id <id>] [--dtype fp32|fp16] [--max-rank R] [--out dir]
 * Imports a Hugging Face Llama-family checkpoint folder or an ONNX Runtime GenAI export into the
 * model cache ($LORAEDGE_MODEL_CACHE or <repo>/.cache/models), atomically. Prints what it found on
 * stdout; a failure is one line on stderr and exit code 1 (usage errors: 2).
 */
import { parseArgs } from "node:util";
import { describeImport, importModel } from "../model-build/import-model.js";

const USAGE = "usage: npm run model:import -- <source dir> [--id <id>] [--dtype fp32|fp16] [--max-rank R] [--out dir]";

function fail(message: string, code: number): never {
  process.stderr.write(`${message.replace(/\s*\n\s*/g, " ")}\n`);
  process.exit(code);
}

let parsed: ReturnType<typeof parseArgs<{ allowPositionals: true; options: { id: { type: "string" }; dtype: { type: "string" }; "max-rank": { type: "string" }; out: { type: "string" } } }>>;
try {
  parsed = parseArgs({ allowPositionals: true, options: { id: { type: "string" }, dtype: { type: "string" }, "max-rank": { type: "string" }, out: { type: "string" } } });
} catch (err) {
  fail(`model:import: ${(err as Error).message}. ${USAGE}`, 2);
}
const { values, positionals } = parsed;
if (positionals.length !== 1) fail(USAGE, 2);
if (values.dtype !== undefined && values.dtype !== "fp32" && values.dtype !== "fp16") fail(`model:import: --dtype must be fp32 or fp16, got ${values.dtype}`, 2);
const maxRank = values["max-rank"] === undefined ? undefined : Number(values["max-rank"]);
if (maxRank !== undefined && !(Number.isInteger(maxRank) && maxRank > 0)) fail(`model:import: --max-rank must be a positive integer, got ${values["max-rank"]}`, 2);

const t0 = performance.now();
try {
  const imported = await importModel(positionals[0], {
    ...(values.id ? { id: values.id } : {}),
    ...(values.dtype ? { dtype: values.dtype as "fp32" | "fp16" } : {}),
    ...(maxRank ? { maxRank } : {}),
    ...(values.out ? { out: values.out } : {}),
    ...(process.stderr.isTTY ? { onProgress: progressBar() } : {}),
  });
  for (const line of describeImport(imported)) console.log(line);
  console.log(`  (${Math.round(performance.now() - t0)} ms)`);
} catch (err) {
  fail(`model:import failed: ${(err as Error).message}`, 1);
}

/** A one-line progress bar on stderr (TTY only) while weights are read. */
function progressBar(): (done: number, total: number) => void {
  let last = -1;
  return (done, total) => {
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    if (pct === last) return;
    last = pct;
    const width = 30;
    const filled = Math.round((width * pct) / 100);
    process.stderr.write(`\r  weights [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${pct}% of ${(total / 1e6).toFixed(0)} MB${done >= total ? "\n" : ""}`);
  };
}
