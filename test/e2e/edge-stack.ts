/**
 * Shared by the end-to-end tests of the public API: the whole stack as `npm start` runs it (a real
 * runner and the worker under `wrangler dev`, pointed at each other), one tenant seeded with its
 * key, and random PEFT adapter files fitting the served model.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ModelManifest } from "#core/manifest/model-manifest";
import type { LoraAdapter } from "#core/lora/types";
import { writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { freePort, startEdge, startRunner, type Service } from "../../scripts/lib/stack.js";

export const E2E_MODEL = "loraedge-tiny";

export interface EdgeStackOptions {
  /** HMAC secret shared by edge and runner (default: a fresh random one). */
  secret?: string;
  /** ADMIN_TOKEN (default: a fresh random one). */
  adminToken?: string;
  /** The tenant seeded (PUT /v1/tenants/{name}) with `key`. */
  tenant: string;
  key: string;
  /** RUNNER_MODELS (default: loraedge-tiny). */
  models?: string;
  /** More runner variables (RUNNER_THREADS is 1 unless set here). */
  runnerEnv?: Record<string, string>;
  /** Local D1/R2 state folder (default: a fresh temp folder, removed by `stop`). */
  persistDir?: string;
}

export interface EdgeStack {
  runner: Service;
  edge: Service;
  /** The edge's base URL (no trailing slash). */
  url: string;
  adminToken: string;
  /** Stops both processes and removes the temp state folder. */
  stop(): Promise<void>;
}

/**
 * Starts the runner and the edge (the edge's port is reserved first so the runner can be told
 * where to fetch adapters), then seeds the tenant (201 expected). A failure stops what started.
 */
export async function startEdgeStack(o: EdgeStackOptions): Promise<EdgeStack> {
  const secret = o.secret ?? `e2e-secret-${randomUUID()}`;
  const adminToken = o.adminToken ?? `e2e-admin-${randomUUID()}`;
  const ownState = o.persistDir === undefined;
  const persistDir = o.persistDir ?? mkdtempSync(path.join(tmpdir(), "loraedge-e2e-state-"));
  const started: Service[] = [];
  const stop = async () => {
    await Promise.all(started.map((s) => s.stop()));
    if (ownState) rmSync(persistDir, { recursive: true, force: true });
  };
  try {
    const edgePort = await freePort();
    const runner = await startRunner({ secret, edgeUrl: `http://127.0.0.1:${edgePort}`, models: o.models ?? E2E_MODEL, env: { RUNNER_THREADS: "1", ...o.runnerEnv } });
    started.push(runner);
    const edge = await startEdge({ port: edgePort, runnerUrls: [runner.url], runnerSecret: secret, adminToken, persistDir });
    started.push(edge);
    const seeded = await fetch(`${edge.url}/v1/tenants/${o.tenant}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ api_key: o.key }),
    });
    if (seeded.status !== 201) throw new Error(`seeding tenant ${o.tenant}: ${seeded.status} ${await seeded.text()}`);
    return { runner, edge, url: edge.url, adminToken, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * A random LoRA adapter on the model's first `modules` unmerged targets (rank `rank`, scale
 * `scale`), seeded; `wrongIn` makes every module's in-features one too many (refused on upload).
 */
export function randomAdapterFor(manifest: ModelManifest, seed: number, rank: number, opts: { scale?: number; modules?: number; wrongIn?: boolean } = {}): LoraAdapter {
  const targets = manifest.targets.filter((t) => t.mode === "unmerged").slice(0, opts.modules ?? 4);
  if (!targets.length) throw new Error(`${manifest.id} has no unmerged targets`);
  return randomLoraAdapter(
    createRng(seed),
    targets.map((t) => ({ module: t.module, rank, inFeatures: opts.wrongIn ? t.in + 1 : t.in, outFeatures: t.out, scale: opts.scale ?? 0.25 })),
    { baseModel: manifest.id, fanInFanOut: targets[0]!.fanInFanOut },
  );
}

/** The PEFT files (`adapter_config.json` object, `adapter_model.safetensors` bytes) of `randomAdapterFor`. */
export function randomPeftFiles(manifest: ModelManifest, seed: number, rank: number, opts: Parameters<typeof randomAdapterFor>[3] = {}) {
  const files = writePeftAdapter(randomAdapterFor(manifest, seed, rank, opts), { baseModel: manifest.id });
  return { config: files.config, weights: files.safetensors };
}
