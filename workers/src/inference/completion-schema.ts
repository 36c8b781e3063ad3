import { z } from "@hono/zod-openapi";
import { completionSchema } from "#core/wire/runner-api";
import { generationFields, type SamplingCaps } from "#core/wire/sampling";
import { MixEntrySchema } from "./resolve-mix.js";
import { MAX_MODEL_ID_CHARS, MAX_REF_CHARS, MAX_STOP_CHARS, MAX_USER_CHARS } from "../validation/string-bounds.js";

/**
 * The edge's caps on the wire's sampling/generation options (core/src/wire/sampling.ts): the
 * one place each public limit is written. The runner accepts up to core's WIRE_CAPS.
 */
export const EDGE_CAPS: SamplingCaps = { maxTokens: 4096, maxStops: 4, maxStopChars: MAX_STOP_CHARS, maxLogitBias: 300 };

const core = generationFields(EDGE_CAPS);

/** Sampling and output options shared by /v1/completions and /v1/chat/completions. */
export const samplingFields = {
  model: z.string().min(1).max(MAX_MODEL_ID_CHARS).openapi({ example: "loraedge-tiny" }),
  ...core,
  top_k: core.top_k.openapi({ description: "0 disables top-k (extension)" }),
  seed: core.seed.openapi({ description: "Same seed, same text" }),
  ignore_eos: core.ignore_eos.openapi({ description: "Generate past the EOS token (extension, as vLLM)" }),
  repetition_penalty: core.repetition_penalty.openapi({
    description: "Extension (HF/vLLM): logits of tokens already in prompt or output divided by it when positive, multiplied when negative; 1 = off",
  }),
  logit_bias: core.logit_bias.openapi({ description: "Token id (decimal string) → bias in [-100, 100] added to its logit" }),
  adapters: z
    .array(MixEntrySchema)
    .optional()
    .openapi({ description: "Ad-hoc mix (extension). Exclusive with `composition`; empty = base model" }),
  composition: z.string().min(1).max(MAX_REF_CHARS).optional().openapi({ description: "Saved composition id or name (extension)" }),
  user: z.string().max(MAX_USER_CHARS).optional(),
  n: z.literal(1).optional().openapi({ description: "Only 1 is supported" }),
  stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
};

export const CompletionRequestSchema = z
  .object({
    ...samplingFields,
    prompt: z
      .union([z.string(), z.array(z.number().int().nonnegative()).min(1)])
      .openapi({ description: "Text, or token ids of the model's tokenizer" }),
    echo: z.boolean().default(false),
    logprobs: z.number().int().min(0).max(5).nullable().optional(),
    best_of: z.literal(1).optional(),
  })
  .openapi("CompletionRequest");
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

export const ChatMessageSchema = z.object({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
  name: z.string().max(MAX_USER_CHARS).optional(),
});

export const ChatRequestSchema = z
  .object({
    ...samplingFields,
    messages: z.array(ChatMessageSchema).min(1),
    logprobs: z.boolean().optional().openapi({ description: "Not supported for chat (only false)" }),
  })
  .openapi("ChatCompletionRequest");
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

// The runner's shapes (core's wire contract) pass through unchanged.
export const CompletionResponseSchema = completionSchema.openapi("Completion");

/** The completion envelope (id, created, model, usage) with chat choices. */
export const ChatResponseSchema = completionSchema
  .extend({
    object: z.literal("chat.completion"),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal("assistant"), content: z.string() }),
        finish_reason: z.enum(["stop", "length"]).nullable(),
        logprobs: z.null(),
      }),
    ),
  })
  .openapi("ChatCompletion");
