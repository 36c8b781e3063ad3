import { z } from "zod";

/**
 * A base model's manifest: published by the runner beside each model (manifest.json) and
 * used by the edge to validate adapter uploads. Module names are PEFT/Hugging Face module
 * paths, e.g. "model.layers.0.self_attn.q_proj" or "transformer.h.0.attn.c_proj".
 */
export const targetModuleSchema = z.object({
  /** PEFT module path (what appears between `base_model.model.` and `.lora_A`). */
  module: z.string().min(1),
  /** Logical input features (columns of A, [r, in]). */
  in: z.number().int().positive(),
  /** Logical output features (rows of B, [out, r]). */
  out: z.number().int().positive(),
  /**
   * "unmerged": the graph takes per-row LoRA inputs for this module.
   * "merge-only": the weight sits inside a fused op; only a merged session can apply ΔW.
   */
  mode: z.enum(["unmerged", "merge-only"]),
  /** True when the base stores this weight [in, out] (GPT-2 Conv1D; PEFT `fan_in_fan_out`). */
  fanInFanOut: z.boolean().default(false),
});
export type TargetModule = z.infer<typeof targetModuleSchema>;

export const modelManifestSchema = z.object({
  /** Model id used in API calls, e.g. "loraedge-tiny". */
  id: z.string().min(1),
  /** e.g. "llama", "gpt2". */
  architecture: z.string().min(1),
  dtype: z.enum(["float32", "float16"]),
  vocabSize: z.number().int().positive(),
  contextLength: z.number().int().positive(),
  hiddenSize: z.number().int().positive(),
  numLayers: z.number().int().positive(),
  numHeads: z.number().int().positive(),
  numKvHeads: z.number().int().positive(),
  headDim: z.number().int().positive(),
  intermediateSize: z.number().int().positive(),
  parameters: z.number().int().nonnegative(),
  tokenizer: z.object({
    /** "byte": 256 byte tokens + BOS/EOS; "hf": a tokenizer.json beside the model. */
    kind: z.enum(["byte", "hf"]),
    bosId: z.number().int().nullable(),
    eosId: z.number().int().nullable(),
    /**
     * Ids besides `eosId` that end generation like EOS (unless `ignore_eos`): the model's
     * end-of-turn tokens, from generation_config.json `eos_token_id` (an int or a list, e.g.
     * Llama-3-Instruct's <|eot_id|> and <|eom_id|>), as transformers' `generate` stops on them.
     */
    endOfTurnIds: z.array(z.number().int().nonnegative()).optional(),
    /**
     * A proven upper bound on the UTF-8 bytes of prompt text one token covers ("hf" only; the
     * byte tokenizer's is 1). Lets the edge refuse a prompt that cannot fit the context without
     * tokenising it; absent: the edge leaves the check to the runner.
     */
    maxBytesPerToken: z.number().int().positive().optional(),
  }),
  /** Largest adapter rank (per adapter) the runner accepts for this model. */
  maxRank: z.number().int().positive(),
  targets: z.array(targetModuleSchema),
  /** Free-form provenance (builder seed, source checkpoint, …). */
  source: z.record(z.string(), z.unknown()).optional(),
});
export type ModelManifest = z.infer<typeof modelManifestSchema>;
