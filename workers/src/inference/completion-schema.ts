import { z } from "@hono/zod-openapi";
import { completionSchema, usageSchema } from "#core/wire/runner-api";
import { MixEntrySchema } from "../routes/compositions.js";
import { MAX_MODEL_ID_CHARS, MAX_REF_CHARS, MAX_STOP_CHARS, MAX_USER_CHARS } from "../validation/string-bounds.js";

/** Sampling and output options shared by /v1/completions and /v1/chat/completions. */
export const samplingFields = {
  model: z.string().min(1).max(MAX_MODEL_ID_CHARS).openapi({ example: "loraedge-tiny" }),
  max_tokens: z.number().int().min(0).max(4096).default(16),
  temperature: z.number().finite().min(0).max(10).default(1),
  top_p: z.number().finite().gt(0).max(1).default(1),
  top_k: z.number().int().min(0).default(0).openapi({ description: "0 disables top-k (extension)" }),
  seed: z.number().int().optional().openapi({ description: "Same seed, same text" }),
  stop: z.union([z.string().max(MAX_STOP_CHARS), z.array(z.string().max(MAX_STOP_CHARS)).max(4)]).optional(),
  stream: z.boolean().default(false),
  ignore_eos: z.boolean().default(false).openapi({ description: "Generate past the EOS token (extension, as vLLM)" }),
  adapters: z
    .array(MixEntrySchema)
    .optional()
    .openapi({ description: "Ad-hoc mix (extension). Exclusive with `composition`; empty = base model" }),
  composition: z.string().min(1).max(MAX_REF_CHARS).optional().openapi({ description: "Saved composition id or name (extension)" }),
  user: z.string().max(MAX_USER_CHARS).optional(),
  n: z.literal(1).optional().openapi({ description: "Only 1 is supported" }),
  stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
  presence_penalty: z.literal(0).optional().openapi({ description: "Not supported (only 0)" }),
  frequency_penalty: z.literal(0).optional().openapi({ description: "Not supported (only 0)" }),
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
const UsageSchema = usageSchema;

export const CompletionResponseSchema = completionSchema.openapi("Completion");

export const ChatResponseSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal("assistant"), content: z.string() }),
        finish_reason: z.enum(["stop", "length"]).nullable(),
        logprobs: z.null(),
      }),
    ),
    usage: UsageSchema.optional(),
  })
  .openapi("ChatCompletion");
