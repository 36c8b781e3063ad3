/**
 * Shared by the runner's end-to-end tests: start a real runner process (the same launcher
 * `npm start` uses), call it over real HTTP with signed requests, make real PEFT adapters,
 * and compute the reference generation with the plain TypeScript forward pass.
 */
import { signRequest } from "#core/wire/hmac";
import { RUNNER_PATHS, type Completion, type GenerateRequestInput } from "#core/wire/runner-api";
import type { LoraAdapter } from "#core/lora/types";
import { createRng, randomLoraAdapter, type RandomModuleSpec } from "#core/random/index";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { composeMix } from "#core/compose/index";
import { startRunner, type Service } from "../../scripts/lib/stack.js";
import { MODEL_PRESETS } from "../../gpu-runner/src/model-build/presets.js";
import { seededLlamaCheckpoint } from "../../gpu-runner/src/model-build/seeded-checkpoint.js";
import { referenceForward } from "../../gpu-runner/src/reference/index.js";
import { logSoftmax, argmax, applyPenaltiesReference } from "../../gpu-runner/src/engine/sampling.js";
import { samplingParamsSchema, type SamplingParamsInput } from "#core/wire/sampling";
import type { EdgeAdapterServer } from "../../gpu-runner/src/adapters/testing/edge-adapter-server.js";

export const SECRET = "e2e-runner-harness-secret";
export const MODEL = "loraedge-tiny";
const tiny = MODEL_PRESETS["loraedge-tiny"];
export const V = tiny.config.vocabSize;

export function startTestRunner(env: Record<string, string> = {}, edgeUrl?: string): Promise<Service> {
  return startRunner({ secret: SECRET, edgeUrl, models: MODEL, env: { RUNNER_THREADS: "1", ...env } });
}

export async function signedFetch(base: string, path: string, init: { method?: string; body?: unknown; secret?: string; signal?: AbortSignal } = {}) {
  const method = init.method ?? (init.body === undefined ? "GET" : "POST");
  const body = init.body === undefined ? undefined : JSON.stringify(init.body);
  const headers = await signRequest(init.secret ?? SECRET, { method, pathAndQuery: path, body });
  return fetch(base + path, { method, body, headers: { ...headers, "content-type": "application/json" }, signal: init.signal });
}

export async function complete(base: string, body: GenerateRequestInput): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await signedFetch(base, RUNNER_PATHS.completions, { body });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

/** A completion that must succeed. */
export async function completeOk(base: string, body: GenerateRequestInput): Promise<Completion> {
  const r = await complete(base, body);
  if (r.status !== 200) throw new Error(`completion failed: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json as Completion;
}

/** Reads an SSE completion stream to the end: parsed chunks, and whether [DONE] arrived. */
export async function streamEvents(res: Response): Promise<{ chunks: any[]; done: boolean }> {
  const text = await res.text();
  const chunks: any[] = [];
  let done = false;
  for (const block of text.split("\n\n")) {
    const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
    if (!data) continue;
    if (data === "[DONE]") done = true;
    else chunks.push(JSON.parse(data));
  }
  return { chunks, done };
}

export async function metricValue(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(base + RUNNER_PATHS.metrics)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  let found = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    if (!want.every((w) => (match[2] ?? "").includes(w))) continue;
    total += Number(match[3]);
    found = true;
  }
  if (!found) throw new Error(`metric ${name}${JSON.stringify(labels)} not found`);
  return total;
}

/** The tiny model's targetable modules (from its preset). */
export function tinyTargets(): { module: string; in: number; out: number }[] {
  const c = tiny.config;
  const kv = c.numKvHeads * c.headDim;
  const q = c.numHeads * c.headDim;
  const out: { module: string; in: number; out: number }[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { module: `${p}.self_attn.q_proj`, in: c.hiddenSize, out: q },
      { module: `${p}.self_attn.k_proj`, in: c.hiddenSize, out: kv },
      { module: `${p}.self_attn.v_proj`, in: c.hiddenSize, out: kv },
      { module: `${p}.self_attn.o_proj`, in: q, out: c.hiddenSize },
      { module: `${p}.mlp.gate_proj`, in: c.hiddenSize, out: c.intermediateSize },
      { module: `${p}.mlp.up_proj`, in: c.hiddenSize, out: c.intermediateSize },
      { module: `${p}.mlp.down_proj`, in: c.intermediateSize, out: c.hiddenSize },
    );
  }
  return out;
}

export interface TestAdapter {
  id: string;
  adapter: LoraAdapter;
  sha256: string;
}

/**
 * A real PEFT adapter on the tiny model (every `every`-th target, rank `rank`), written with
 * core's writer in `dtype` and served by the edge server. A and B are U(−1, 1); scale keeps ΔW
 * moderate. `adapter` holds the values the file stores (rounded to F16/BF16 for those dtypes), so the
 * reference forward sees what the runner loads (which keeps 16-bit factors as they are).
 */
export function serveAdapter(edge: EdgeAdapterServer, id: string, seed: number, rank: number, every = 1, dtype: "F32" | "F16" | "BF16" = "F32"): TestAdapter {
  const specs: RandomModuleSpec[] = tinyTargets()
    .filter((_, i) => i % every === seed % every)
    .map((t) => ({ module: t.module, rank, inFeatures: t.in, outFeatures: t.out, scale: 0.6 / Math.sqrt(rank * t.in) }));
  const files = writePeftAdapter(randomLoraAdapter(createRng(seed), specs), { dtype });
  const sha256 = edge.put(id, { config: files.config, safetensors: files.safetensors });
  return { id, adapter: loadPeftAdapter(files.config, files.safetensors), sha256 };
}

export const mixOf = (...terms: [TestAdapter, number][]) => terms.map(([a, weight]) => ({ id: a.id, sha256: a.sha256, weight }));

const checkpoint = seededLlamaCheckpoint(tiny.config, tiny.seed);

/**
 * Reference greedy generation: full recompute with the plain forward at every step; the
 * token is argmax of the logits after the reference penalties (`sampling`, default none),
 * its logprob that of the raw logits (as the runner reports).
 */
export function referenceGreedy(promptIds: number[], terms: [TestAdapter, number][], maxTokens: number, sampling?: SamplingParamsInput) {
  const params = samplingParamsSchema.parse({ ...sampling, temperature: 0 });
  const mix = terms.length ? composeMix(terms.map(([a, weight]) => ({ adapter: a.adapter, weight }))) : null;
  const tokens = [...promptIds];
  const ids: number[] = [];
  const logprobs: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    const logits = referenceForward(checkpoint, tokens, mix);
    const last = logits.subarray((tokens.length - 1) * V);
    const id = argmax(applyPenaltiesReference(last, params, { promptIds, outputIds: ids }));
    ids.push(id);
    logprobs.push(logSoftmax(last)[id]!);
    if (id === tiny.tokenizer.eosId) break;
    tokens.push(id);
  }
  return { ids, logprobs };
}

/** Reference prompt scoring: logprob of each prompt token given the ones before it (first: null). */
export function referencePromptLogprobs(promptIds: number[], terms: [TestAdapter, number][]): (number | null)[] {
  const mix = terms.length ? composeMix(terms.map(([a, weight]) => ({ adapter: a.adapter, weight }))) : null;
  const logits = referenceForward(checkpoint, promptIds, mix);
  return promptIds.map((id, i) => (i === 0 ? null : logSoftmax(logits.subarray((i - 1) * V, i * V))[id]!));
}

export const BOS = tiny.tokenizer.bosId;
export const promptIds = (text: string) => [BOS, ...new TextEncoder().encode(text)];

export function maxAbsDiff(a: readonly (number | null)[], b: readonly (number | null)[]): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === null || b[i] === null) {
      if (a[i] !== b[i]) return Infinity;
      continue;
    }
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
  }
  return m;
}
