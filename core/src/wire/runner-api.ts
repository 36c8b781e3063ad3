import { z } from "zod";
import { chatTemplateSpecSchema } from "../chat/adapter-chat-template.js";
import { modelManifestSchema } from "../manifest/model-manifest.js";
import { generationFields, WIRE_CAPS } from "./sampling.js";

/**
 * The worker ↔ runner wire contract (internal HTTP API). Every call in both directions is
 * signed with `signRequest` (./hmac.ts; a fresh nonce per call, receivers refuse a replay). Paths:
 *
 *   runner:  POST /internal/v1/completions   body GenerateRequest → Completion | SSE stream
 *            GET  /internal/v1/models        → ModelList
 *            GET  /healthz                   → Health (unsigned)
 *            GET  /metrics                   → Prometheus text (unsigned: labels carry no tenant data)
 *            GET  /internal/v1/adapters      → cache listing;  DELETE /internal/v1/adapters/:id → evict
 *   worker:  GET  /internal/adapters/:id/blob   → adapter_model.safetensors bytes,
 *                                                header `x-loraedge-sha256` = hex sha256 of those bytes
 *            GET  /internal/adapters/:id/config → adapter_config.json
 */
export const RUNNER_PATHS = {
  completions: "/internal/v1/completions",
  models: "/internal/v1/models",
  adapters: "/internal/v1/adapters",
  health: "/healthz",
  metrics: "/metrics",
} as const;

/** Worker routes the runner calls to fetch an adapter (`id` is the registry id). */
export const edgeAdapterPaths = (id: string) => ({
  blob: `/internal/adapters/${encodeURIComponent(id)}/blob`,
  config: `/internal/adapters/${encodeURIComponent(id)}/config`,
});
export const SHA256_HEADER = "x-loraedge-sha256";

/** One adapter in a request's mix, as the edge resolved it. */
export const mixEntrySchema = z.object({
  /** Registry id (content of D1 `adapters.id`). */
  id: z.string().min(1),
  /** Hex sha256 of the adapter's safetensors bytes; the runner verifies the blob against it. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** wᵢ in ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ; any finite number (0 drops the adapter, negative negates). */
  weight: z.number().finite(),
});
export type WireMixEntry = z.infer<typeof mixEntrySchema>;

/** One chat message; the runner renders a conversation with the model's chat template. */
export const chatMessageSchema = z.object({ role: z.string().min(1), content: z.string() });
export type ChatMessage = z.infer<typeof chatMessageSchema>;

export const generateRequestSchema = z.object({
  model: z.string().min(1),
  /** Text, or token ids of the model's tokenizer. Exactly one of `prompt` and `messages` (the runner answers 400 otherwise). */
  prompt: z.union([z.string(), z.array(z.number().int().nonnegative())]).optional(),
  /**
   * Chat: the runner renders these with the model's own chat template (tokenizer_config.json
   * `chat_template`, add_generation_prompt) or, for a model without one, the documented default
   * `<|role|>` template (core/src/chat/chat-template.ts), and stops at its end-of-turn.
   */
  messages: z.array(chatMessageSchema).min(1).optional(),
  /**
   * An adapter's own chat template (core/src/chat/adapter-chat-template.ts), rendered instead of
   * the model's. The edge sets it for a chat request whose mix is exactly one adapter that was
   * uploaded with a template (validated then); special tokens it leaves null are the model's.
   */
  chat_template: chatTemplateSpecSchema.optional(),
  /** Sampling (temperature, top_p, top_k, penalties, logit_bias), max_tokens, seed, stop, ignore_eos, stream: ./sampling.ts. */
  ...generationFields(WIRE_CAPS),
  /** Include the prompt in the returned text (and its logprobs when `logprobs` is set). */
  echo: z.boolean().default(false),
  /** When set (0..5), return token logprobs (top_logprobs with that many alternatives). */
  logprobs: z.number().int().min(0).max(5).nullable().optional(),
  adapters: z.array(mixEntrySchema).default([]),
  /** The mix's canonical key (core/src/wire/mix-key.ts) as the edge computed it; the runner refuses one that disagrees with `adapters`. */
  mix_key: z.string().optional(),
  /** Propagated for logs. */
  request_id: z.string().optional(),
});
export type GenerateRequest = z.infer<typeof generateRequestSchema>;
export type GenerateRequestInput = z.input<typeof generateRequestSchema>;

/** Fields of a GenerateRequest the edge resolves itself (the rest come from the client's body). */
const EDGE_RESOLVED = ["model", "adapters", "request_id", "chat_template"] as const;
type EdgeResolved = (typeof EDGE_RESOLVED)[number];
export type GenerateOptions = Omit<GenerateRequestInput, EdgeResolved>;
const GENERATE_OPTION_KEYS = Object.keys(generateRequestSchema.shape).filter(
  (k) => !(EDGE_RESOLVED as readonly string[]).includes(k),
) as (keyof GenerateOptions)[];

/**
 * The generation options of a parsed client request, for the runner: every field of
 * `generateRequestSchema` except those the edge resolves (model, adapters, request_id,
 * chat_template), taken by the schema's own keys (a field added to the schema flows through
 * without being listed anywhere).
 */
export function pickGenerateOptions(body: Partial<Record<keyof GenerateOptions, unknown>>): GenerateOptions {
  const out: Record<string, unknown> = {};
  for (const key of GENERATE_OPTION_KEYS) if (body[key] !== undefined) out[key] = body[key];
  return out as GenerateOptions;
}

export const logprobsSchema = z.object({
  tokens: z.array(z.string()),
  token_ids: z.array(z.number().int()),
  token_logprobs: z.array(z.number().nullable()),
  top_logprobs: z.array(z.record(z.string(), z.number()).nullable()).nullable(),
  text_offset: z.array(z.number().int()),
});
export type Logprobs = z.infer<typeof logprobsSchema>;

export const usageSchema = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
});
export type Usage = z.infer<typeof usageSchema>;

/** OpenAI completions response shape. */
export const completionSchema = z.object({
  id: z.string(),
  object: z.literal("text_completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      text: z.string(),
      finish_reason: z.enum(["stop", "length"]).nullable(),
      logprobs: logprobsSchema.nullable(),
    }),
  ),
  usage: usageSchema.optional(),
});
export type Completion = z.infer<typeof completionSchema>;

/**
 * Streaming: `text/event-stream`, one `data: <Completion chunk>` event per token (choices[0].text
 * is the token's text, finish_reason null), then one chunk with finish_reason and `usage`,
 * then `data: [DONE]`. Errors after the stream started arrive as `data: {"error": …}`.
 * Every chunk from the first sampled token on carries `sampled_tokens`, the count of tokens
 * sampled so far (cumulative; it counts tokens whose text is "" too), so a stream cut before
 * its usage chunk is still billed for every token the runner produced. The edge strips it.
 */
export const SAMPLED_TOKENS_FIELD = "sampled_tokens";
export const completionChunkSchema = completionSchema.extend({
  [SAMPLED_TOKENS_FIELD]: z.number().int().nonnegative().optional(),
});

/**
 * Header of a streamed completion response: the prompt's token count, known before the first
 * event, so the edge can bill the prompt even when the stream ends before its usage chunk.
 */
export const PROMPT_TOKENS_HEADER = "x-loraedge-prompt-tokens";
export type CompletionChunk = z.infer<typeof completionChunkSchema>;

/**
 * Header of every completion response (unary and streamed, errors included once a model was
 * found): the runner's load when it answered — requests queued + running over all its models.
 * The edge keeps the latest per runner for bounded-load routing (also reported by /healthz).
 */
export const LOAD_HEADER = "x-loraedge-runner-load";

export const modelListSchema = z.object({
  object: z.literal("list"),
  data: z.array(
    z.object({
      id: z.string(),
      object: z.literal("model"),
      owned_by: z.string(),
      manifest: modelManifestSchema,
    }),
  ),
});
export type ModelList = z.infer<typeof modelListSchema>;

/** One model engine's liveness in /healthz (the runner's engine/liveness.ts). */
export const engineHealthSchema = z.object({
  model: z.string(),
  /** Requests queued or running. */
  busy: z.boolean(),
  /** Milliseconds since its last model step returned; null before the first. */
  last_step_age_ms: z.number().int().nonnegative().nullable(),
  /** Milliseconds it has held work without a step returning (0 when idle). */
  no_progress_ms: z.number().int().nonnegative(),
  /** Busy with no step returned for longer than the runner's stall limit: the runner is not ready. */
  stalled: z.boolean(),
});
export type EngineHealth = z.infer<typeof engineHealthSchema>;

/**
 * GET /healthz. `ready` (and status 200) only when `status` is "ok"; "stalled": an engine has work
 * but has not completed a model step within the runner's stall limit (a hung step), so the edge
 * takes the runner out of rotation like a dead one.
 */
export const healthSchema = z.object({
  status: z.enum(["ok", "starting", "draining", "stalled"]),
  ready: z.boolean(),
  models: z.array(z.string()),
  /** The runner's process id (which process answered: a restarted runner has a new one). */
  pid: z.number().int().optional(),
  /** Its load now: requests queued + running, over all its models (see LOAD_HEADER). */
  load: z.number().int().nonnegative().optional(),
  /** Each loaded model engine's liveness (absent while loading). */
  engines: z.array(engineHealthSchema).optional(),
});
export type Health = z.infer<typeof healthSchema>;

/** Error body used by both services: `{"error": {"type", "message"}}`. */
export const errorBodySchema = z.object({
  error: z.object({ type: z.string(), message: z.string() }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;
