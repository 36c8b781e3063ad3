/**
 * The runner process (`npm run dev:runner`): loads the configured base models (building
 * presets on first use), serves the internal API, prints exactly one line on stdout when
 * ready — `loraedge-runner listening on http://<host>:<port>` — and logs JSON lines on
 * stderr. SIGINT/SIGTERM: stop accepting, let running requests finish (RUNNER_DRAIN_MS),
 * end what is left, exit 0.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { AdapterCache, EdgeAdapterSource, parseAdapter } from "./adapters/index.js";
import { bakeOnWorkerThread, RunnerBaker } from "./bake/index.js";
import { ConfigError, loadConfig, type RunnerConfig } from "./config.js";
import { jsonLogger, ModelEngine, type Logger } from "./engine/index.js";
import { defaultModelCacheDir, ensureModel, isPresetId } from "./model-build/index.js";
import { loadModel } from "./model/index.js";
import type { BaseModel } from "./model/index.js";
import { createRunnerApp } from "./server/index.js";

const MB = 2 ** 20;

/** A RUNNER_MODELS entry → a model directory (presets are built into the cache on first use). */
async function modelDir(entry: string, config: RunnerConfig): Promise<string> {
  if (!isPresetId(entry) && (entry.includes("/") || existsSync(entry))) return path.resolve(entry);
  return ensureModel(entry, config.modelCache ?? defaultModelCacheDir());
}

async function loadModels(config: RunnerConfig, log: Logger): Promise<BaseModel[]> {
  const models: BaseModel[] = [];
  for (const entry of config.models) {
    const started = performance.now();
    const dir = await modelDir(entry, config);
    const model = await loadModel(dir, {
      backend: config.backend,
      executionProvider: config.executionProvider,
      threads: config.threads,
      float16: config.float16,
      loraVariants: config.loraVariants,
    });
    if (models.some((m) => m.manifest.id === model.manifest.id)) {
      throw new Error(`two RUNNER_MODELS entries load a model with id ${model.manifest.id}`);
    }
    models.push(model);
    log("info", "model loaded", {
      model: model.manifest.id,
      dir,
      backend: config.backend,
      ep: config.executionProvider ?? "default",
      parameters: model.manifest.parameters,
      dtype: model.manifest.dtype,
      ms: Math.round(performance.now() - started),
    });
    if (model.unmergeable?.length) log("warn", "some merge targets cannot be merged: merged sessions touching them are refused", { model: model.manifest.id, reasons: model.unmergeable });
  }
  return models;
}

async function main(): Promise<void> {
  let config: RunnerConfig;
  try {
    config = loadConfig();
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  const log = jsonLogger(config.logLevel);
  const adapters = new AdapterCache(
    config.edgeUrl ? new EdgeAdapterSource({ baseUrl: config.edgeUrl, secret: config.secret, maxBytes: Math.floor(config.adapterMaxMb * MB) }) : null,
    { budgetBytes: config.adapterCacheMb * MB, parse: parseAdapter, log },
  );
  const engines: ModelEngine[] = [];
  const baker = new RunnerBaker(adapters, { runJob: bakeOnWorkerThread });
  const { app, state } = createRunnerApp({
    engines,
    adapters,
    secret: config.secret,
    replayWindowS: config.replayWindowS,
    sseKeepAliveMs: config.sseKeepAliveMs,
    stallLimitMs: config.stallLimitMs,
    baker,
    log,
  });

  // Listen first (/healthz answers "starting" while models load), announce once ready.
  let httpServer!: ReturnType<typeof serve>;
  const listening = new Promise<AddressInfo>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info: AddressInfo) => resolve(info));
    server.once("error", reject);
    httpServer = server;
  });
  const address = await listening;

  const models = await loadModels(config, log);
  for (const model of models) {
    engines.push(
      new ModelEngine(model, adapters, {
        limits: {
          maxBatch: config.maxBatch,
          maxTokens: config.maxTokens,
          maxQueue: config.maxQueue,
          prefillChunk: config.prefillChunk,
          prefillTokens: config.prefillTokens,
        },
        merge: { policy: config.mergePolicy, budgetBytes: config.mergedMb * MB, horizonS: config.mergeHorizonS },
        log,
      }),
    );
  }
  state.ready = true;
  const host = address.family === "IPv6" || config.host.includes(":") ? `[${config.host}]` : config.host;
  process.stdout.write(`loraedge-runner listening on http://${host}:${address.port}\n`);
  log("info", "runner ready", {
    port: address.port,
    models: engines.map((e) => e.id),
    edgeUrl: config.edgeUrl ?? null,
    maxBatch: config.maxBatch,
    maxTokens: config.maxTokens,
    maxQueue: config.maxQueue,
    mergePolicy: config.mergePolicy,
  });
  const server = httpServer;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log("warn", "second signal: exiting now", { signal });
      process.exit(1);
    }
    stopping = true;
    state.draining = true;
    log("info", "shutting down: draining", { signal, drainMs: config.drainMs });
    // Running generations and an in-flight bake (its worker thread and the edge waiting for the
    // files) finish within the same drain budget; new ones are refused (503) meanwhile.
    const [, bakesDone] = await Promise.all([Promise.all(engines.map((e) => e.drain(config.drainMs))), baker.drain(config.drainMs)]);
    if (!bakesDone) log("warn", "a bake was still running when the drain time ran out", { drainMs: config.drainMs });
    // Let open SSE responses and answers being written (a finished bake's files) go out.
    for (let i = 0; i < 50 && (state.openStreams > 0 || state.openRequests > 0); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      const http = server as { closeIdleConnections?(): void; closeAllConnections?(): void };
      http.closeIdleConnections?.();
      setTimeout(() => http.closeAllConnections?.(), 1_000).unref();
    });
    for (const engine of engines) await engine.dispose();
    log("info", "stopped", { signal });
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((e: unknown) => {
  process.stderr.write(
    JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "runner failed to start", error: (e as Error).stack ?? String(e) }) + "\n",
  );
  process.exit(1);
});
