import { z } from "zod";

/**
 * The one definition of a request's sampling and generation options, shared by the edge's
 * public schema (workers/src/inference/completion-schema.ts), the worker → runner wire
 * (./runner-api.ts `generateRequestSchema`) and the runner's sampler
 * (gpu-runner/src/engine/sampling.ts, which takes `SamplingParams` as is).
 *
 * To add a sampling parameter: add its field to `samplingParamFields` below (with its
 * default, so an absent value means "off"), then implement it in the sampler
 * (`sampleToken` and `sampleTokenReference`, held equal by a test). Nothing else copies fields.
 *
 * Limits that differ between the edge and the wire are not written twice: each lives in one
 * `SamplingCaps` value (the wire's `WIRE_CAPS` here, the edge's stricter `EDGE_CAPS` in the
 * worker) applied by `generationFields(caps)`.
 */

/** The sides' caps on sizes; one place per limit. An absent cap means "no cap in the schema". */
export interface SamplingCaps {
  /** Largest `max_tokens` (the runner also checks prompt + max_tokens against the context length). */
  maxTokens?: number;
  /** Most `stop` strings. */
  maxStops: number;
  /** Longest stop string (characters). */
  maxStopChars?: number;
  /** Most `logit_bias` entries. */
  maxLogitBias: number;
}

/** What the runner accepts. */
export const WIRE_CAPS: SamplingCaps = { maxStops: 8, maxLogitBias: 1024 };

/** logit_bias keys: token ids written as decimal strings (JSON object keys), as OpenAI. */
const tokenIdKey = z.string().regex(/^(0|[1-9][0-9]{0,9})$/, "logit_bias keys must be token ids (decimal integers)");

/**
 * How the next token is chosen from one row's logits; the runner's sampler reads exactly these.
 * Order of application (see gpu-runner/src/engine/sampling.ts, Semantics): logit_bias,
 * repetition_penalty, presence/frequency penalties, then temperature, top_k, top_p.
 */
export const samplingParamFields = {
  /** 0 = greedy (argmax). */
  temperature: z.number().finite().min(0).max(10).default(1),
  top_p: z.number().finite().gt(0).max(1).default(1),
  /** 0 disables top-k. */
  top_k: z.number().int().min(0).default(0),
  /**
   * Hugging Face / vLLM semantics: the logit of every token already present in the prompt or
   * the output is divided by p when positive, multiplied by p when negative. 1 = off.
   */
  repetition_penalty: z.number().finite().gt(0).max(100).default(1),
  /** OpenAI semantics: logit −= presence_penalty for every token already in the output. 0 = off. */
  presence_penalty: z.number().finite().min(-2).max(2).default(0),
  /** OpenAI semantics: logit −= frequency_penalty × (times the token occurs in the output). 0 = off. */
  frequency_penalty: z.number().finite().min(-2).max(2).default(0),
  /** OpenAI semantics: token id → bias added to its logit before sampling (−100 bans, +100 forces). */
  logit_bias: z.record(tokenIdKey, z.number().finite().min(-100).max(100)).optional(),
};
export const samplingParamsSchema = z.object(samplingParamFields);
/** What the sampler receives (defaults applied). */
export type SamplingParams = z.infer<typeof samplingParamsSchema>;
export type SamplingParamsInput = z.input<typeof samplingParamsSchema>;

const SAMPLING_KEYS = Object.keys(samplingParamFields) as (keyof SamplingParams)[];

/** The sampling subset of a parsed request (no field listed by hand). */
export function pickSamplingParams(request: SamplingParams): SamplingParams {
  const out: Record<string, unknown> = {};
  for (const key of SAMPLING_KEYS) if (request[key] !== undefined) out[key] = request[key];
  return out as SamplingParams;
}

/** Sampling plus the options that bound a generation, with the given side's caps. */
export function generationFields(caps: SamplingCaps) {
  const maxTokens = z.number().int().min(0);
  const stop = caps.maxStopChars === undefined ? z.string() : z.string().max(caps.maxStopChars);
  return {
    ...samplingParamFields,
    logit_bias: samplingParamFields.logit_bias.refine(
      (bias) => bias === undefined || Object.keys(bias).length <= caps.maxLogitBias,
      `logit_bias may hold at most ${caps.maxLogitBias} entries`,
    ),
    max_tokens: (caps.maxTokens === undefined ? maxTokens : maxTokens.max(caps.maxTokens)).default(16),
    /** Same seed ⇒ same text. Absent: a random seed. */
    seed: z.number().int().optional(),
    stop: z.union([stop, z.array(stop).max(caps.maxStops)]).optional(),
    /** Keep generating past the EOS token (fixed-length generation, benchmarks), as vLLM's ignore_eos. */
    ignore_eos: z.boolean().default(false),
    stream: z.boolean().default(false),
  };
}
