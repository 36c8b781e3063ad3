/**
 * The runner's serving engine in-process (scheduler, continuous batching, exact per-row mixes),
 * fed from an in-memory adapter store: what the runner does after its adapter cache has the
 * blobs. HTTP is left out here; case 8 measures it.
 */
import { createRng } from "#core/random/index";
import { generateRequestSchema, type GenerateRequestInput } from "#core/wire/runner-api";
import type { LoraAdapter } from "#core/lora/types";
import { ModelEngine, type AdapterProvider } from "../../gpu-runner/src/engine/index.js";
import type { BaseModel } from "../../gpu-runner/src/model/index.js";
import { randomAdapter } from "./workload.js";

export interface AdapterPool {
  provider: AdapterProvider;
  /** Pool entries: id and a fake-but-well-formed sha256 per adapter. */
  entries: Array<{ id: string; sha256: string; rank: number; adapter: LoraAdapter }>;
}

/** `count` random adapters of ranks 8–32 on every target, served from memory. */
export function adapterPool(model: BaseModel, count: number, seed: number): AdapterPool {
  const rng = createRng(seed);
  const entries = Array.from({ length: count }, (_, i) => {
    const rank = 8 * (1 + Math.floor(rng.nextFloat() * 4));
    return {
      id: `bench-${i}`,
      sha256: i.toString(16).padStart(64, "0"),
      rank,
      adapter: randomAdapter(model.manifest, rank, seed * 1000 + i),
    };
  });
  const byId = new Map(entries.map((e) => [e.id, e]));
  return {
    entries,
    provider: {
      async acquire(id) {
        const entry = byId.get(id);
        if (!entry) throw new Error(`no adapter ${id} in the bench pool`);
        return { adapter: entry.adapter, release() {} };
      },
    },
  };
}

/** `count` distinct mixes of 1–3 pool adapters with weights in [0.2, 1.2). */
export function distinctMixes(pool: AdapterPool, count: number, seed: number): GenerateRequestInput["adapters"][] {
  const rng = createRng(seed);
  const seen = new Set<string>();
  const mixes: NonNullable<GenerateRequestInput["adapters"]>[] = [];
  while (mixes.length < count) {
    const terms = 1 + Math.floor(rng.nextFloat() * 3);
    const mix = Array.from({ length: terms }, () => {
      const e = pool.entries[Math.floor(rng.nextFloat() * pool.entries.length)];
      return { id: e.id, sha256: e.sha256, weight: Number((0.2 + rng.nextFloat()).toFixed(3)) };
    });
    const key = JSON.stringify(mix);
    if (!seen.has(key)) {
      seen.add(key);
      mixes.push(mix);
    }
  }
  return mixes;
}

export function createEngine(model: BaseModel, pool: AdapterPool, maxBatch: number): ModelEngine {
  return new ModelEngine(model, pool.provider, {
    limits: { maxBatch, maxTokens: 1 << 20, maxQueue: 4096, prefillChunk: 256 },
    merge: { policy: "never", budgetBytes: 0 },
  });
}

export function request(model: string, input: Omit<GenerateRequestInput, "model">) {
  return generateRequestSchema.parse({ model, temperature: 0, ignore_eos: true, ...input });
}
