/**
 * `npm start`: the whole platform on this machine.
 *   1. starts the gpu-runner (it builds the default model `loraedge-tiny` into .cache/models on first run),
 *   2. applies the D1 migrations locally and starts the worker under `wrangler dev` (local D1 + R2 in .wrangler/state),
 *   3. seeds the development tenant and prints the URLs and its API key.
 * The web app (web/) is built into web/dist first when its sources changed; the worker serves it at /.
 * Ctrl-C stops both; if either process dies, the other is stopped and the exit code is 1.
 *
 * Environment: EDGE_PORT (8787), RUNNER_PORT (8788), RUNNER_MODELS (models to serve: preset ids,
 * imported ids or directories, comma-separated), DEV_API_KEY, ADMIN_TOKEN, RUNNER_SECRET
 * (the last three are generated once and kept in .cache/dev/ when not set).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { repoRoot, startEdge, startRunner, type Service } from "./lib/stack.js";

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

function port(envName: string, fallback: number): number {
  const raw = process.env[envName];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    console.error(`${envName} must be a TCP port (1-65535), got "${raw}"`);
    process.exit(2);
  }
  return value;
}

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
let stopping = false;

/** Stops every started service (process groups), then exits. */
async function stopAll(code: number, reason?: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (reason) console.error(`\n${reason}`);
  if (services.length) console.log("stopping…");
  await Promise.all(services.map((s) => s.stop()));
  process.exit(code);
}

async function main(): Promise<void> {
  const edgePort = port("EDGE_PORT", 8787);
  const runnerPort = port("RUNNER_PORT", 8788);
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
  console.log(`starting gpu-runner on port ${runnerPort} with ${models ?? "the default model (built on first run)"}…`);
  const runner = await startRunner({
    port: runnerPort,
    secret: runnerSecret,
    edgeUrl,
    models,
    onLine: prefixed("[runner]"),
  });
  watch(runner);

  console.log(`applying D1 migrations and starting wrangler dev on port ${edgePort}…`);
  const edge = await startEdge({
    port: edgePort,
    runnerUrls: [runner.url],
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
  gpu-runner   ${runner.url}
  dev API key  ${apiKey}
  admin token  ${adminToken}

  curl -H "Authorization: Bearer ${apiKey}" ${edge.url}/v1/models

Ctrl-C stops both.`);
}

main().catch((error: unknown) => {
  void stopAll(1, error instanceof Error ? error.message : String(error));
});
