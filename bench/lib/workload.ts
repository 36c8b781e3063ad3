/**
 * Workloads shared by the runner-side cases: the benchmark model, seeded random mixes built the
 * way the runner builds them (random PEFT-shaped adapters → core's composeMix), and timed
 * prefill / decode loops on a model variant (base, unmerged mix, or merged session).
 */
import { composeMix } from "#core/compose/index";
import { createRng, deriveSeed, randomLoraAdapter } from "#core/random/index";
import type { ComposedMix, LoraAdapter } from "#core/lora/types";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { loadModel } from "../../gpu-runner/src/model/index.js";
import type { BackendName, BaseModel, KvCache, ModelVariant } from "../../gpu-runner/src/model/index.js";
import { interleave, type InterleaveOptions } from "./interleave.js";

/** The bench pins ORT to the machine's cores, as the runner does by default. */
export const THREADS = 2;

/** `npm run bench -- --ep NAME`: the onnxruntime-node execution provider every bench session uses (default: CPU). */
let benchExecutionProvider: string | undefined;

/** Sets the execution provider of every session the cases open from now on (run.ts, before any case runs). */
export function useBenchExecutionProvider(ep: string | undefined): void {
  benchExecutionProvider = ep;
}

/** Session options of every bench session: THREADS, plus `--ep`'s execution provider when one was named. */
export function benchSessionOptions(): { threads: number; executionProvider?: string } {
  return { threads: THREADS, ...(benchExecutionProvider ? { executionProvider: benchExecutionProvider } : {}) };
}

export async function loadBenchModel(modelId: string, backend: BackendName = "node"): Promise<BaseModel> {
  const dir = await ensureModel(modelId);
  return loadModel(dir, { backend, ...(backend === "node" ? benchSessionOptions() : { threads: THREADS }) });
}

/** Unmerged targets of a model (the seven Llama projections of every layer). */
export function unmergedTargets(manifest: ModelManifest) {
  return manifest.targets.filter((t) => t.mode === "unmerged");
}

/** A random adapter of rank `rank` on every unmerged target (or those `only` keeps), scale 1/rank-ish so outputs stay sane. */
export function randomAdapter(manifest: ModelManifest, rank: number, seed: number, only: (module: string) => boolean = () => true): LoraAdapter {
  const rng = createRng(seed);
  const adapter = randomLoraAdapter(
    rng,
    unmergedTargets(manifest).filter((t) => only(t.module)).map((t) => ({
      module: t.module,
      rank,
      inFeatures: t.in,
      outFeatures: t.out,
      scale: 0.05 / Math.sqrt(rank * t.in),
    })),
  );
  return adapter;
}

/** Σ wᵢ·(adapter of rank rᵢ), composed exactly (R = Σ rᵢ on every target). */
export function randomMix(manifest: ModelManifest, ranks: readonly number[], seed: number, only?: (module: string) => boolean): ComposedMix {
  return composeMix(
    ranks.map((rank, i) => ({ adapter: randomAdapter(manifest, rank, deriveSeed(seed, i), only), weight: 1 - 0.3 * i })),
  );
}

/** Milliseconds of one decode step of these rows (median-free: the mean over `steps` steps). */
export async function decodeStepMs(variant: ModelVariant, caches: readonly KvCache[], mixes: ReadonlyArray<ComposedMix | null>, steps: number): Promise<number> {
  return (caches.length / (await decodeTokensPerSecond(variant, caches, mixes, steps))) * 1000;
}

/** A deterministic printable prompt of n byte tokens. */
export function promptTokens(manifest: ModelManifest, n: number, seed = 1): number[] {
  const rng = createRng(seed);
  const vocab = Math.min(manifest.vocabSize, 256);
  return Array.from({ length: n }, () => 32 + Math.floor(rng.nextFloat() * Math.min(94, vocab - 32)));
}

/** Wall time (ms) of one prefill of `rows` prompts of `tokens` tokens. */
export async function timePrefill(
  variant: ModelVariant,
  prompts: readonly number[][],
  mixes: ReadonlyArray<ComposedMix | null>,
): Promise<number> {
  const t0 = performance.now();
  await variant.step(prompts.map((tokens, i) => ({ tokens, cache: null, mix: mixes[i] })));
  return performance.now() - t0;
}

/** Prefills once; the caches are immutable, so every timed decode round starts from them. */
export async function prefillCaches(
  variant: ModelVariant,
  prompts: readonly number[][],
  mixes: ReadonlyArray<ComposedMix | null>,
): Promise<KvCache[]> {
  const results = await variant.step(prompts.map((tokens, i) => ({ tokens, cache: null, mix: mixes[i] })));
  return results.map((r) => r.cache);
}

/** Decode tokens/s over `steps` steps of every row from the given caches (greedy-free: token 65). */
export async function decodeTokensPerSecond(
  variant: ModelVariant,
  caches: readonly KvCache[],
  mixes: ReadonlyArray<ComposedMix | null>,
  steps: number,
): Promise<number> {
  let current = [...caches];
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const results = await variant.step(current.map((cache, i) => ({ tokens: [65], cache, mix: mixes[i] })));
    current = results.map((r) => r.cache);
  }
  const seconds = (performance.now() - t0) / 1000;
  return (caches.length * steps) / seconds;
}

/** One side of a prefill/decode comparison: a model variant and each prompt row's mix. */
export interface PrefillDecodeSide {
  variant: ModelVariant;
  mixes: ReadonlyArray<ComposedMix | null>;
}

/**
 * The same prompts on several sides, measured side by side with `interleave`: prefill wall time
 * (ms), then decode tokens/s over `steps` steps from caches each side prefilled once.
 */
export async function prefillAndDecode<K extends string>(sides: Record<K, PrefillDecodeSide>, prompts: readonly number[][], steps: number, options: InterleaveOptions) {
  const names = Object.keys(sides) as K[];
  const prefill = await interleave(Object.fromEntries(names.map((n) => [n, () => timePrefill(sides[n].variant, prompts, sides[n].mixes)])) as Record<K, () => Promise<number>>, options);
  return { prefill, ...(await decodeSideBySide(sides, prompts, steps, options)) };
}

/** `prefillAndDecode`'s decode half: each side prefills once, then decode tokens/s side by side. */
export async function decodeSideBySide<K extends string>(sides: Record<K, PrefillDecodeSide>, prompts: readonly number[][], steps: number, options: InterleaveOptions) {
  const names = Object.keys(sides) as K[];
  const caches = {} as Record<K, KvCache[]>;
  for (const n of names) caches[n] = await prefillCaches(sides[n].variant, prompts, sides[n].mixes);
  const decode = await interleave(Object.fromEntries(names.map((n) => [n, () => decodeTokensPerSecond(sides[n].variant, caches[n], sides[n].mixes, steps)])) as Record<K, () => Promise<number>>, options);
  return { decode };
}
