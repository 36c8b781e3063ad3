/**
 * `npm run bench [-- --quick] [-- --only 1,5] [-- --ep webgpu] [-- --out DIR]`: runs the benchmark
 * cases, prints a table with each goal beside its figure, and writes results.json: bench/results.json
 * and the table in bench/README.md for a full run on the CPU EP; bench/out/ (or --out) otherwise:
 * results.{quick,partial}.json, or results.<ep>.json for a run on another execution provider.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { machineInfo } from "./lib/machine.js";
import type { BenchCase, BenchContext } from "./lib/case.js";
import { renderMarkdownTable, renderTable, type CaseResult } from "./lib/report.js";
import { allCases } from "./cases/index.js";
import { useBenchExecutionProvider } from "./lib/workload.js";
import { RUNNER_ALLOCATOR_ENV } from "../scripts/lib/stack.js";

// The cases measure the runner's code in this process, so it runs under the runner's allocator settings
// (glibc reads them at start: re-run this script with them when they are missing).
if (Object.entries(RUNNER_ALLOCATOR_ENV).some(([name, value]) => process.env[name] !== value)) {
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, ...RUNNER_ALLOCATOR_ENV },
  });
  process.exit(child.status ?? 1);
}

const USAGE = `usage: npm run bench [-- options]
  --quick          the tiny model, few rounds: a smoke run (written to bench/out/results.quick.json)
  --only 1,6       only these cases (ids as in bench/README.md, 3a/3b/3c meaning case 3; written to bench/out/results.partial.json)
  --streams 1,64   case 9's stream counts (iteration; not recorded)
  --ep webgpu      every session on this onnxruntime-node execution provider (not recorded)
  --out DIR        folder for an unrecorded run's results (default bench/out)
  --help           this text
A full run on the CPU EP (no option) writes bench/results.json and the table in bench/README.md.`;

/** The command line's options; a bad one prints the usage and exits 2, `--help` prints it and exits 0. */
function parseOptions() {
  try {
    const { values } = parseArgs({
      options: {
        help: { type: "boolean", default: false },
        quick: { type: "boolean", default: false },
        only: { type: "string" },
        /** Case 9's stream counts for iteration (e.g. 1,64); such a run is never recorded. */
        streams: { type: "string" },
        /** onnxruntime-node execution provider of every session (webgpu, cuda, …); such a run is never recorded. */
        ep: { type: "string" },
        /** Folder for an unrecorded run's results (default bench/out). */
        out: { type: "string" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      process.exit(0);
    }
    return values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}
const values = parseOptions();

/**
 * Each case runs in a process of its own (this script again, with CASE_PROCESS_ENV naming the case, the
 * output folder and the file its result goes to): a case starts from a fresh heap, so the memory an
 * earlier case held and freed (glibc keeps it: the runner's allocator settings never trim) and its
 * garbage collector's state do not weigh on the next. Case 1 holds ≈ 10 GiB of sessions, case 10 ≈ 17.
 */
const CASE_PROCESS_ENV = "LORAEDGE_BENCH_CASE_PROCESS";
const caseProcess = process.env[CASE_PROCESS_ENV] ? (JSON.parse(process.env[CASE_PROCESS_ENV]) as { id: string; outDir: string; resultPath: string }) : null;

const benchDir = import.meta.dirname;
const quick = values.quick ?? false;
/** Only a full run of every case is recorded in bench/; partial and quick runs go to bench/out/. */
const ep = values.ep && values.ep !== "cpu" ? values.ep : undefined;
const recorded = !caseProcess && !quick && !values.only && !values.streams && !ep;
const outDir = caseProcess ? caseProcess.outDir : recorded ? benchDir : path.resolve(values.out ?? path.join(benchDir, "out"));
useBenchExecutionProvider(ep);
mkdirSync(outDir, { recursive: true });

const ctx: BenchContext = {
  quick,
  modelId: quick ? "loraedge-tiny" : "loraedge-small",
  rounds: quick ? 3 : 7,
  warmup: quick ? 1 : 2,
  outDir,
  progress: (message) => console.log(`  … ${message}`),
  ...(values.streams ? { streams: values.streams.split(",").map(Number) } : {}),
};

// Case 3's figures are 3a, 3b and 3c (bench/README.md's table): each names case 3.
const only = values.only
  ? new Set(
      values.only
        .split(",")
        .map((s) => s.trim().replace(/^3[abc]$/, "3"))
        .filter((s) => s !== ""),
    )
  : null;
const unknown = [...(only ?? [])].filter((id) => !allCases.some((c) => c.id === id));
if (unknown.length > 0) {
  console.error(`unknown case ${unknown.join(", ")}: the cases are ${allCases.map((c) => c.id).join(", ")}`);
  process.exit(2);
}
const selected: BenchCase[] = allCases.filter((c) => !only || only.has(c.id));

/** One case in this process; a case that throws is reported as failed with its first line. */
async function runCase(benchCase: BenchCase): Promise<CaseResult> {
  const t0 = Date.now();
  try {
    const result = await benchCase.run(ctx);
    return { id: benchCase.id, title: benchCase.title, seconds: (Date.now() - t0) / 1000, ...result };
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    console.log(`  ! failed: ${message}`);
    return { id: benchCase.id, title: benchCase.title, seconds: (Date.now() - t0) / 1000, figures: [], skipped: `failed: ${message}` };
  }
}

if (caseProcess) {
  const benchCase = allCases.find((c) => c.id === caseProcess.id);
  if (!benchCase) throw new Error(`no case ${caseProcess.id}`);
  writeFileSync(caseProcess.resultPath, JSON.stringify(await runCase(benchCase), (_key, v) => (typeof v === "number" && !Number.isFinite(v) ? { nonFinite: String(v) } : v)));
  process.exit(0);
}

/** One case in a process of its own (see CASE_PROCESS_ENV), with this run's options. */
function runCaseProcess(benchCase: BenchCase): CaseResult {
  const t0 = Date.now();
  const resultPath = path.join(mkdtempSync(path.join(tmpdir(), "loraedge-bench-")), "result.json");
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, [CASE_PROCESS_ENV]: JSON.stringify({ id: benchCase.id, outDir, resultPath }) },
  });
  try {
    // NaN and ±Infinity travel as { nonFinite: "NaN" } (JSON has no such numbers).
    return JSON.parse(readFileSync(resultPath, "utf8"), (_key, v) => (v !== null && typeof v === "object" && typeof v.nonFinite === "string" && Object.keys(v).length === 1 ? Number(v.nonFinite) : v)) as CaseResult;
  } catch {
    const why = child.signal ? `its process was killed by ${child.signal}` : `its process exited with code ${child.status} and no result`;
    console.log(`  ! failed: ${why}`);
    return { id: benchCase.id, title: benchCase.title, seconds: (Date.now() - t0) / 1000, figures: [], skipped: `failed: ${why}` };
  } finally {
    rmSync(path.dirname(resultPath), { recursive: true, force: true });
  }
}

const started = Date.now();
const results: CaseResult[] = [];
for (const [index, benchCase] of selected.entries()) {
  console.log(`[${index + 1}/${selected.length}] case ${benchCase.id}: ${benchCase.title}`);
  results.push(runCaseProcess(benchCase));
}

const table = renderTable(results);
console.log(`\n${table}\n\n${quick ? "quick run (tiny model, few rounds): smoke only, not figures to quote" : ""}`);
console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);

const report = {
  date: new Date().toISOString(),
  quick,
  model: ctx.modelId,
  executionProvider: ep ?? "cpu",
  rounds: ctx.rounds,
  warmup: ctx.warmup,
  machine: machineInfo(),
  totalSeconds: (Date.now() - started) / 1000,
  cases: results,
};
const resultsPath = path.join(outDir, recorded ? "results.json" : ep ? `results.${ep}.json` : quick ? "results.quick.json" : "results.partial.json");
writeFileSync(resultsPath, JSON.stringify(report, null, 2) + "\n");
console.log(`wrote ${path.relative(process.cwd(), resultsPath)}`);

if (recorded) {
  const readmePath = path.join(benchDir, "README.md");
  const readme = readFileSync(readmePath, "utf8");
  const block = [
    "<!-- results:start -->",
    `Latest full run on this project's development machine (${report.machine.cpu}, ${report.machine.cores} cores), ` +
      `${report.date.slice(0, 10)}, model ${report.model}, ${report.rounds} measured rounds after ${report.warmup} warm-up, ` +
      `total ${report.totalSeconds.toFixed(0)} s:`,
    "",
    renderMarkdownTable(results),
    "<!-- results:end -->",
  ].join("\n");
  writeFileSync(readmePath, readme.replace(/<!-- results:start -->[\s\S]*<!-- results:end -->/, block));
  console.log("updated bench/README.md");
}
