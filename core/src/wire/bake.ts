import { z } from "zod";
import { STRATEGY_NAMES, type StrategyName } from "../bake/strategies.js";
import { mixEntrySchema } from "./runner-api.js";

/**
 * Runner-side bake (worker → runner, signed like every internal call):
 *
 *   POST /internal/v1/bake   body BakeRequest → BakeResponse
 *
 * The runner fetches the mix's adapters from the edge (its adapter cache), bakes them with core's
 * `bake` off the event loop, and measures the baked adapter against the exact mix on the model
 * itself (`fidelity`). The edge validates the returned files like an upload and stores them.
 */
export const RUNNER_BAKE_PATH = "/internal/v1/bake";

const strategyNames = STRATEGY_NAMES as readonly StrategyName[] as [StrategyName, ...StrategyName[]];

export const bakeRequestSchema = z.object({
  model: z.string().min(1),
  /** The exact mix to bake (weights ≠ 0; at least one entry). */
  adapters: z.array(mixEntrySchema).min(1),
  strategy: z.enum(strategyNames),
  density: z.number().finite().optional(),
  rank: z.number().int().min(1).optional(),
  seed: z.number().int().min(0).optional(),
  request_id: z.string().optional(),
});
export type BakeRequest = z.infer<typeof bakeRequestSchema>;

/**
 * How close the baked adapter is to the exact mix, measured on the model: for each position p of
 * a fixed probe set, P = softmax(logits of the base model + exact mix), Q = the same with the baked
 * adapter; KL(P‖Q) in nats, and whether argmax P = argmax Q.
 */
export const bakeFidelitySchema = z.object({
  probe: z.object({
    /** Probe sequences of token ids drawn uniformly from the vocabulary with core's seeded xoshiro128**. */
    sequences: z.number().int().min(1),
    tokens_per_sequence: z.number().int().min(1),
    seed: z.number().int(),
  }),
  /** Positions scored (sequences × tokens_per_sequence). */
  positions: z.number().int().min(1),
  kl_mean: z.number().min(0),
  kl_max: z.number().min(0),
  /** Share of positions where the baked adapter's top-1 token equals the exact mix's. */
  top1_agreement: z.number().min(0).max(1),
});
export type BakeFidelity = z.infer<typeof bakeFidelitySchema>;

export const bakeReportSchema = z.object({
  strategy: z.enum(strategyNames),
  density: z.number().nullable(),
  rank: z.number().int(),
  seed: z.number().int().nullable(),
  /** Σ dropped σ² / Σ σ² over every module (0 = lossless truncation). */
  total_discarded_energy: z.number(),
  per_module: z.array(z.object({ module: z.string(), rank: z.number().int(), discarded_energy: z.number() })),
  fidelity: bakeFidelitySchema,
});
export type BakeReportBody = z.infer<typeof bakeReportSchema>;

export const bakeResponseSchema = z.object({
  /** adapter_config.json of the baked adapter (PEFT), as an object. */
  adapter_config: z.record(z.string(), z.unknown()),
  /** adapter_model.safetensors bytes of the baked adapter, base64. */
  safetensors_base64: z.string(),
  report: bakeReportSchema,
  /** Wall-clock milliseconds: the bake itself and the fidelity measurement. */
  timing_ms: z.object({ bake: z.number(), fidelity: z.number() }),
});
export type BakeResponse = z.infer<typeof bakeResponseSchema>;
