/**
 * `npm start`: the whole platform on this machine.
 *   1. starts LORAEDGE_RUNNERS gpu-runners (default 1) on consecutive ports from RUNNER_PORT (they
 *      build the default model `loraedge-tiny` into .cache/models on first run),
 *   2. applies the D1 migrations locally and starts the worker under `wrangler dev` (local D1 + R2 in
 *      .wrangler/state) with RUNNER_URLS listing every runner,
 *   3. seeds the development tenant and prints the URLs and its API key.
 * The web app (web/) is built into web/dist first when its sources changed; the worker serves it at /.
 * Runners are supervised (scripts/lib/runner-pool.ts): one that dies is logged and restarted on its
 * port after a back-off, while the edge routes around it. Ctrl-C stops everything; if the edge dies,
 * or a runner fails its first start, everything is stopped and the exit code is 1.
 *
 * Environment: LORAEDGE_RUNNERS (1), EDGE_PORT (8787), RUNNER_PORT (8788: the first runner's),
 * RUNNER_MODELS (models to serve: preset ids, imported ids or directories, comma-separated),
 * DEV_API_KEY, ADMIN_TOKEN, RUNNER_SECRET (the last three are generated once and kept in
 * .cache/dev/ when not set).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startRunnerPool, type RunnerPool } from "./lib/runner-pool.js";
import { repoRoot, startEdge, type Service } from "./lib/stack.js";

const devDir = path.join(repoRoot, ".cache/dev");

/** An env value, or a random one generated once and kept in .cache/dev/<file>. */
function devSecret(envName: string, file: string, prefix = ""): string {
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  const filePath = path.join(devDir, file);
  if (existsSync(filePath)) return readFileSync(filePath, "utf8").trim();
  mkdirSync(devDir, { recursive: true });
  const value = prefix + randomBytes(24).toString("base64url");
  writeFileSync(filePath, value + "\n", { mode: 0o600 });
  return value;
}

/** An integer environment variable in [min, max], or exit 2 naming it. */
function intVar(envName: string, fallback: number, min: number, max: number, what: string): number {
  const raw = process.env[envName];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${envName} must be ${what} (${min}-${max}), got "${raw}"`);
    process.exit(2);
  }
  return value;
}
const port = (envName: string, fallback: number) => intVar(envName, fallback, 1, 65535, "a TCP port");

function prefixed(label: string) {
  return (line: string) => {
    if (line.trim()) process.stdout.write(`${label} ${line}\n`);
  };
}

async function seedDevTenant(edgeUrl: string, adminToken: string, apiKey: string): Promise<void> {
  const res = await fetch(`${edgeUrl}/v1/tenants/dev`, {
    method: "PUT",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ api_key: apiKey }),
  });
  if (!res.ok) throw new Error(`seeding the dev tenant failed: ${res.status} ${await res.text()}`);
}

const services: Service[] = [];
let pool: RunnerPool | null = null;
let stopping = false;

/** Stops every started service (process groups), then exits. */
async function stopAll(code: number, reason?: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (reason) console.error(`\n${reason}`);
  if (services.length || pool) console.log("stopping…");
  await Promise.all([pool?.stop(), ...services.map((s) => s.stop())]);
  process.exit(code);
}

async function main(): Promise<void> {
  const edgePort = port("EDGE_PORT", 8787);
  const runnerPort = port("RUNNER_PORT", 8788);
  const runnerCount = intVar("LORAEDGE_RUNNERS", 1, 1, 64, "a number of runners");
  const runnerPorts = Array.from({ length: runnerCount }, (_, i) => runnerPort + i);
  if (runnerPorts.includes(edgePort) || runnerPorts.at(-1)! > 65535) {
    console.error(`runner ports ${runnerPort}-${runnerPorts.at(-1)} must be valid and must not include EDGE_PORT ${edgePort}`);
    process.exit(2);
  }
  const apiKey = devSecret("DEV_API_KEY", "api-key", "le_dev_");
  const adminToken = devSecret("ADMIN_TOKEN", "admin-token");
  const runnerSecret = devSecret("RUNNER_SECRET", "runner-secret");
  const edgeUrl = `http://127.0.0.1:${edgePort}`;

  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));
  const watch = (service: Service) => {
    services.push(service);
    void service.exited.then((code) => {
      if (!stopping) {
        void stopAll(1, `${service.name} stopped unexpectedly (exit ${code}); stopping the rest.\n${service.tail()}`);
      }
    });
  };

  // RUNNER_MODELS: comma list of preset ids, imported ids (npm run model:import) or model directories.
  const models = process.env.RUNNER_MODELS || undefined;
  const portList = runnerCount === 1 ? `port ${runnerPort}` : `ports ${runnerPort}-${runnerPorts.at(-1)}`;
  console.log(`starting ${runnerCount} gpu-runner(s) on ${portList} with ${models ?? "the default model (built on first run)"}…`);
  const labels = runnerPorts.map((_, i) => prefixed(runnerCount === 1 ? "[runner]" : `[runner ${i}]`));
  pool = await startRunnerPool({
    ports: runnerPorts,
    secret: runnerSecret,
    edgeUrl,
    models,
    onLine: (i, line) => labels[i]!(line),
    log: (message) => console.error(`[supervisor] ${message}`),
  });

  console.log(`applying D1 migrations and starting wrangler dev on port ${edgePort}…`);
  const edge = await startEdge({
    port: edgePort,
    runnerUrls: pool.urls,
    runnerSecret,
    adminToken,
    persistDir: path.join(repoRoot, ".wrangler/state"),
    onLine: prefixed("[edge]  "),
  });
  watch(edge);

  await seedDevTenant(edge.url, adminToken, apiKey);

  console.log(`
loraedge is running.
  web app      ${edge.url}/       (sign in with the dev API key below)
  edge API     ${edge.url}        (docs: ${edge.url}/docs)
  gpu-runner   ${pool.urls.join("\n               ")}
  dev API key  ${apiKey}
  admin token  ${adminToken}

  curl -H "Authorization: Bearer ${apiKey}" ${edge.url}/v1/models
  curl -H "Authorization: Bearer ${adminToken}" ${edge.url}/v1/admin/runners   (runners: health, pid, load)

A runner that dies is restarted on its port; Ctrl-C stops everything.`);
}

main().catch((error: unknown) => {
  void stopAll(1, error instanceof Error ? error.message : String(error));
});
