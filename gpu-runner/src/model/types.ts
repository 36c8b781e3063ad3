/**
 * The contract between the model layer (gpu-runner/src/model, issue #4) and the serving
 * engine (gpu-runner/src/engine, issue #5). The engine schedules rows; the model turns a
 * list of rows into one ONNX Runtime run (padding, masks, KV-cache gather/scatter, LoRA
 * inputs: shared mixes once, per-row mixes zero-padded to the largest R) and back.
 */
import type { ModelManifest } from "#core/manifest/model-manifest";
import type { ComposedMix } from "#core/lora/types";
import type { ChatTemplate } from "#core/chat/chat-template";

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Text → ids, without special tokens. */
  encode(text: string): number[];
  /** Ids → text (special tokens skipped). */
  decode(ids: readonly number[]): string;
  /** The model's own chat template (tokenizer_config.json); absent → the default template. */
  readonly chatTemplate?: ChatTemplate;
  /** Ids that end an assistant turn like EOS (the chat template's eos_token when it differs from eosId). */
  readonly chatStopIds?: readonly number[];
  /** bos_token / eos_token text of the model's tokenizer_config.json: what an adapter's template that names none renders. */
  readonly chatSpecialTokens?: { readonly bos: string | null; readonly eos: string | null };
}

/** A row's key/value cache. Opaque to the engine; produced and consumed by the model. */
export interface KvCache {
  /** Number of tokens the cache holds (the row's position). */
  readonly length: number;
  /** Bytes held. */
  readonly bytes: number;
}

export interface StepRow {
  /** Tokens to append this step: a prompt (or a chunk of it) on prefill, one token on decode. Non-empty. */
  tokens: readonly number[];
  /** The cache this row's previous step returned; null on the first step. */
  cache: KvCache | null;
  /**
   * The row's composed mix (per-module Aᵗ/Bᵗ); null = base model. Must be null on a merged variant.
   * Treated as immutable: the model reuses its packed LoRA inputs while the same objects come back.
   */
  mix: ComposedMix | null;
}

export interface StepOptions {
  /** Return logits for every appended token (prompt scoring, echo + logprobs), not only the last. */
  allLogits?: boolean;
}

export interface StepRowResult {
  /** [n, vocabSize]: n = tokens.length with allLogits, else 1 (the last position). */
  logits: Float32Array;
  /** The row's cache after this step (cache.length = previous length + tokens.length). */
  cache: KvCache;
}

/** Cumulative wall time of a variant's steps, the part spent packing LoRA inputs (ms), and the floats that packing wrote. */
export interface StepTimings {
  steps: number;
  stepMs: number;
  loraPackMs: number;
  /** Floats written into per-row LoRA inputs: a resident bank's copies (joins, moves, growth) or a fresh pack's whole feeds. */
  loraPackFloats: number;
}

/** Something that can run batched forward steps: the base model, or a merged session. */
export interface ModelVariant {
  /** Where step time went (the ONNX models keep it; test doubles may not). */
  readonly timings?: StepTimings;
  /** One batched forward. Rows are independent: a row's result never depends on its neighbours. */
  step(rows: readonly StepRow[], options?: StepOptions): Promise<StepRowResult[]>;
  /** Bytes of weights this variant holds on its own (0 for the base model). */
  readonly weightBytes: number;
  dispose(): Promise<void>;
}

export interface BaseModel extends ModelVariant {
  readonly manifest: ModelManifest;
  readonly tokenizer: Tokenizer;
  /**
   * A session with W′ = W + ΔW(mix) for every module of the mix (ΔW computed by ONNX Runtime,
   * not JS loops), created from the same graph through `externalData`. Rows stepped on it must
   * have mix = null. Required for mixes touching "merge-only" targets.
   */
  createMerged(mix: ComposedMix): Promise<ModelVariant & { buildMs: { copy: number; delta: number; session: number } }>;
  /** Why some merge targets cannot be merged (their weight is misaligned in the weights file): createMerged refuses mixes touching them. Empty or absent: all can. */
  readonly unmergeable?: readonly string[];
}

export type BackendName = "node" | "web";

export interface LoadModelOptions {
  backend: BackendName;
  /** onnxruntime-node execution provider: "cpu" (default), "cuda", "webgpu". */
  executionProvider?: string;
  /** Intra-op threads (default: ORT's choice). */
  threads?: number;
  /**
   * Also open the LoRA-free twin of the graph (strip-lora.ts) for steps where no row has a mix,
   * and build merged sessions from it (default true). Costs one more copy of the base weights.
   */
  plainSession?: boolean;
  /**
   * Pruned twins of the LoRA graph for steps that feed one whole LoRA path empty (lora-variants.ts):
   * "lazy" (default) opens each in the background when first useful, "eager" at load, "off" never.
   * Costs one more copy of the base weights per variant opened.
   */
  loraVariants?: "lazy" | "eager" | "off";
  /**
   * fp16 models (manifest dtype "float16"): "keep" runs the fp16 graph as stored (fp16 weights,
   * LoRA in fp32); "upcast" converts graph and weights to fp32 at load. Default ("auto"): keep on
   * GPU execution providers, upcast on the CPU EP and the web backend (measured: model/README.md).
   */
  float16?: Float16Policy;
}

export type Float16Policy = "auto" | "keep" | "upcast";
