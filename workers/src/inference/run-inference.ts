import type { Context } from "hono";
import type { ChatTemplateSpec } from "#core/chat/chat-template";
import { mixKey } from "#core/wire/mix-key";
import { PROMPT_TOKENS_HEADER, type Completion, type GenerateOptions } from "#core/wire/runner-api";
import type { AppEnv } from "../app-env.js";
import { tenantOf } from "../auth/require-tenant.js";
import { findOwnComposition } from "../compositions/queries.js";
import { ApiError, badRequest, notFound, serviceUnavailable, unprocessable } from "../errors/api-error.js";
import { maxMixAdapters } from "../limits/config.js";
import { enforceLimits } from "../limits/enforce.js";
import { recordUsage } from "../limits/usage.js";
import { findChatTemplate, incrementUses, type AdapterWithOwner } from "../adapters/queries.js";
import type { Db } from "../db/client.js";
import { log } from "../logging/log.js";
import { catalogModels, modelCatalog, runnersServing } from "../runners/catalog.js";
import { assertPromptFitsContext } from "../validation/prompt-bounds.js";
import { runnerSecret } from "../runners/config.js";
import { dispatchCompletion } from "../runners/dispatch.js";
import { mixRoutingKey } from "../runners/rendezvous.js";
import { resolveMix, type MixRequestEntry } from "./resolve-mix.js";
import { resolveModelTarget, type ModelTarget } from "./resolve-model.js";
import { billedCompletionTokens, passThroughSse } from "./sse.js";

export interface InferenceInput {
  model: string;
  adapters?: MixRequestEntry[];
  composition?: string;
  /** stream_options.include_usage: a final chunk with usage and no choices. */
  includeUsage?: boolean;
  /** Everything the runner gets besides model, adapters and request_id. */
  generate: GenerateOptions;
}

export interface InferenceShaping {
  /** Rewrites the runner's non-stream completion (default: as is). */
  mapCompletion?: (c: Completion) => unknown;
  /** Rewrites each streamed event (default: as is); null drops it. */
  mapChunk?: (c: Completion) => unknown;
}

/**
 * Resolves the request's mix: what `model` named (an adapter at weight 1, a composition's
 * entries, or nothing for a base model), followed by an ad-hoc `adapters` list or a saved
 * `composition` (at most one of the two).
 */
async function mixEntries(c: Context<AppEnv>, input: InferenceInput, target: ModelTarget): Promise<MixRequestEntry[]> {
  if (input.adapters !== undefined && input.composition !== undefined) {
    throw badRequest("give either `adapters` or `composition`, not both");
  }
  const named: MixRequestEntry[] =
    target.kind === "adapter"
      ? [{ id: target.adapter.id, weight: 1 }]
      : target.kind === "composition"
        ? target.composition.entries.map((e) => ({ id: e.adapterId, weight: e.weight }))
        : [];
  if (input.composition === undefined) return [...named, ...(input.adapters ?? [])];
  const comp = await findOwnComposition(c.var.db, tenantOf(c).id, input.composition);
  if (!comp) throw notFound(`composition '${input.composition}' not found`);
  if (comp.baseModel !== target.baseModel) {
    throw unprocessable(`composition '${comp.name}' is for base model '${comp.baseModel}', not '${target.baseModel}'`);
  }
  return [...named, ...comp.entries.map((e) => ({ id: e.adapterId, weight: e.weight }))];
}

/**
 * The chat template a chat request carries to the runner: the adapter's own when the mix is
 * exactly one adapter (repeats of it included) uploaded with a template; otherwise none, and the
 * runner renders the model's.
 */
async function adapterChatTemplateOf(db: Db, adapters: readonly AdapterWithOwner[]): Promise<ChatTemplateSpec | undefined> {
  const only = adapters[0];
  if (!only || adapters.some((a) => a.id !== only.id) || !only.hasChatTemplate) return undefined;
  return (await findChatTemplate(db, only.id)) ?? undefined;
}

/**
 * The inference path shared by /v1/completions and /v1/chat/completions: limits, mix
 * resolution (visibility, base model), runner choice (rendezvous on the mix, health,
 * fail-over before any token), then the runner's answer as JSON or as an SSE pass-through.
 * Usage (requests, prompt and completion tokens) is recorded per tenant per UTC day.
 */
export async function runInference(c: Context<AppEnv>, input: InferenceInput, shaping: InferenceShaping = {}): Promise<Response> {
  const db = c.var.db;
  const tenant = tenantOf(c);
  await enforceLimits(c.env, db, tenant);
  const catalog = await modelCatalog(c.env, db);
  const served = catalogModels(catalog);
  const target = await resolveModelTarget(db, tenant.id, input.model, (id) => served.some((m) => m.id === id));
  const baseModel = target.baseModel;
  const entries = await mixEntries(c, input, target);
  const mix = await resolveMix(db, tenant.id, baseModel, entries, maxMixAdapters(c.env));

  const runners = runnersServing(catalog, baseModel);
  if (runners.length === 0) {
    if (catalog.byRunner.size === 0) throw serviceUnavailable("no runner is reachable", 5);
    throw notFound(`model '${baseModel}' is not served by any healthy runner (see GET /v1/models)`);
  }
  const manifest = served.find((m) => m.id === baseModel)?.manifest;
  // Chat messages are rendered by the runner with the model's own template (unknown here): the edge
  // bounds them from below by their last message; the runner's exact count answers the rest.
  const { prompt, messages } = input.generate;
  const bounded = prompt ?? (messages ? { messages } : undefined);
  if (manifest && bounded !== undefined) assertPromptFitsContext(manifest, bounded, input.generate.max_tokens ?? 16);
  const requestId = c.get("requestId");
  // The one definition of "same mix" (core's canonical key), computed once here: it routes, and the
  // runner (which derives it again from the entries and refuses a mismatch) composes and batches by it.
  const key = mixKey(mix.wire);
  const chatTemplate = messages ? await adapterChatTemplateOf(db, mix.adapters) : undefined;
  const { response, runner, failovers } = await dispatchCompletion({
    secret: runnerSecret(c.env),
    runners,
    routingKey: mixRoutingKey(baseModel, key),
    body: { ...input.generate, model: baseModel, adapters: mix.wire, mix_key: key, request_id: requestId, ...(chatTemplate ? { chat_template: chatTemplate } : {}) },
    requestId,
  });
  c.header("x-loraedge-runner", new URL(runner).host);
  log("info", "inference routed", {
    request_id: requestId,
    tenant: tenant.name,
    model: input.model,
    base_model: baseModel,
    adapters: mix.wire.length,
    stream: input.generate.stream ?? false,
    runner,
    status: response.status,
    failovers: failovers.map((f) => `${f.runner}: ${f.error}`),
  });

  const account = async (promptTokens: number, completionTokens: number) => {
    try {
      await recordUsage(db, tenant.id, { requests: 1, promptTokens, completionTokens });
    } catch (e) {
      log("error", "usage recording failed", { request_id: requestId, error: e instanceof Error ? e.message : String(e) });
    }
    try {
      // The marketplace's use count ("most used"): every adapter of the served mix.
      await incrementUses(db, mix.wire.map((w) => w.id));
    } catch (e) {
      log("error", "use count update failed", { request_id: requestId, error: e instanceof Error ? e.message : String(e) });
    }
  };

  // Responses name the model as the client did (an adapter or composition, not its base), as vLLM.
  const named = (x: Completion): Completion => ({ ...x, model: input.model });
  if (!input.generate.stream) {
    const completion = (await response.json()) as Completion;
    await account(completion.usage?.prompt_tokens ?? 0, completion.usage?.completion_tokens ?? 0);
    return c.json(shaping.mapCompletion ? shaping.mapCompletion(named(completion)) : named(completion), 200);
  }
  if (!response.body) throw new ApiError("runner_error", "the runner sent an empty stream");
  const mapChunk = shaping.mapChunk ?? ((x: Completion) => x);
  const stream = passThroughSse(response.body, {
    // OpenAI's stream_options.include_usage: usage travels in one extra chunk with no choices
    // after the last one. Without it the last chunk carries `usage` as before (an extension
    // OpenAI clients ignore).
    map: (event) => {
      if (!event.usage || !input.includeUsage) return mapChunk(named(event));
      const { usage, ...chunk } = named(event);
      return [mapChunk(chunk), mapChunk({ ...chunk, choices: [], usage })];
    },
    // A stream cut before its usage chunk still bills the prompt (the runner sends its size up front).
    onDone: (o) =>
      account(o.usage?.prompt_tokens ?? (Number(response.headers.get(PROMPT_TOKENS_HEADER)) || 0), billedCompletionTokens(o)),
    waitUntil: (p) => c.executionCtx.waitUntil(p),
  });
  return new Response(stream, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-loraedge-runner": new URL(runner).host,
    },
  });
}
