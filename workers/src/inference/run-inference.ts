import type { Context } from "hono";
import { endTime, startTime, wrapTime } from "hono/timing";
import type { ChatTemplateSpec } from "#core/chat/chat-template";
import { mixKey } from "#core/wire/mix-key";
import { PROMPT_TOKENS_HEADER, type Completion, type GenerateOptions } from "#core/wire/runner-api";
import type { AppEnv } from "../app-env.js";
import { tenantOf } from "../auth/require-tenant.js";
import { findOwnComposition } from "../compositions/queries.js";
import { ApiError, badRequest, notFound, serviceUnavailable, unprocessable } from "../errors/api-error.js";
import { findVisibleAdapterCached, resolveAdapterCached } from "../adapters/visible-adapter-cache.js";
import { edgeCacheTtlMs, maxMixAdapters, runnerTimeouts } from "../limits/config.js";
import { admitRequest, countRefusedRequest, refuseIfRateLimitedHere } from "../limits/enforce.js";
import type { BudgetReservation } from "../limits/reservation.js";
import { findChatTemplate, type AdapterWithOwner } from "../adapters/queries.js";
import type { Db } from "../db/client.js";
import { log } from "../logging/log.js";
import { addRequestLogFields } from "../logging/request-id.js";
import { catalogModels, modelCatalog, runnersServing } from "../runners/catalog.js";
import { afterResponse } from "../util/after-response.js";
import { assertPromptFitsContext, promptTokensUpperBound } from "../validation/prompt-bounds.js";
import { runnerSecret } from "../runners/config.js";
import { dispatchCompletion } from "../runners/dispatch.js";
import { runnerHealth } from "../runners/health.js";
import { probeInBackground } from "../runners/probe.js";
import { mixRoutingKey } from "../runners/rendezvous.js";
import { RUNNER_LABEL_HEADER, runnerLabel } from "../runners/runner-label.js";
import { resolveMix, type MixRequestEntry, type ResolvedMix } from "./resolve-mix.js";
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
  if (!usesAdapterChatTemplate(adapters)) return undefined;
  return (await findChatTemplate(db, adapters[0]!.id)) ?? undefined;
}

/** Whether a chat on this mix renders with an adapter's own template (one adapter, repeats included, uploaded with one). */
function usesAdapterChatTemplate(adapters: readonly AdapterWithOwner[]): boolean {
  const only = adapters[0];
  return only !== undefined && only.hasChatTemplate && adapters.every((a) => a.id === only.id);
}

/**
 * What a request needs before the gate: its base model and mix (visibility, bounds), the runners
 * serving it, the prompt checked against the context, and the most tokens it can be billed
 * (an upper bound of the prompt + max_tokens: its budget reservation).
 */
async function planRequest(c: Context<AppEnv>, input: InferenceInput) {
  const db = c.var.db;
  const tenant = tenantOf(c);
  const ttlMs = edgeCacheTtlMs(c.env);
  // Refreshed behind a response once half its TTL is gone: steady traffic never waits for the runners' model lists.
  const catalog = await modelCatalog(c.env, db, { inBackground: (work) => afterResponse(c, work) });
  const served = catalogModels(catalog);
  const target = await resolveModelTarget(
    db,
    tenant.id,
    input.model,
    (id) => served.some((m) => m.id === id),
    (ref) => findVisibleAdapterCached(db, tenant.id, ref, ttlMs),
  );
  const baseModel = target.baseModel;
  const entries = await mixEntries(c, input, target);
  const mix = await resolveMix(db, tenant.id, baseModel, entries, maxMixAdapters(c.env), (ref) => resolveAdapterCached(db, tenant.id, ref, ttlMs));

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
  const maxTokens = input.generate.max_tokens ?? 16;
  if (manifest && bounded !== undefined) assertPromptFitsContext(manifest, bounded, maxTokens);
  const estimate = (bounded === undefined ? 0 : promptTokensUpperBound(manifest, bounded)) + maxTokens;
  // An adapter's own template (a tenant's program) may add any amount of text to a chat: reserve
  // the model's whole context then, the most a request can be billed (the runner refuses more),
  // so billed + held ≤ the daily limit holds for these chats too.
  const templated = messages !== undefined && usesAdapterChatTemplate(mix.adapters);
  const reserveTokens = templated && manifest ? Math.max(estimate, manifest.contextLength) : estimate;
  return { baseModel, runners, mix, reserveTokens };
}

/**
 * The inference path shared by /v1/completions and /v1/chat/completions: mix resolution
 * (visibility, base model; adapter records from this isolate's short cache), the gate (rate limit
 * and daily budget reservation in one D1 round trip: limits/enforce.ts), runner choice
 * (rendezvous on the mix, health, fail-over before any token), then the runner's answer as JSON
 * or as an SSE pass-through. The reservation is settled exactly once (limits/reservation.ts):
 * with what was billed when a response went out (after it, through waitUntil, for JSON; before
 * `[DONE]` for a stream, or when the client went away), released when nothing was served.
 */
export async function runInference(c: Context<AppEnv>, input: InferenceInput, shaping: InferenceShaping = {}): Promise<Response> {
  const db = c.var.db;
  const tenant = tenantOf(c);
  // Hung runners leave the rotation (and recovered ones rejoin) without traffic finding them.
  probeInBackground(c.env, (p) => afterResponse(c, p));
  // Over the per-minute limit (known here): refused before any D1 work. A request refused while
  // resolving (bad model, adapter, prompt) still counts against the limit, as it did before the gate moved.
  refuseIfRateLimitedHere(tenant.id);
  const plan = await wrapTime(c, "plan", planRequest(c, input)).catch(async (e: unknown) => {
    if (e instanceof ApiError && e.status < 500) await countRefusedRequest(c.env, db, tenant);
    throw e;
  });
  const { baseModel, runners, mix, reserveTokens } = plan;
  const requestId = c.get("requestId");
  const reservation = await wrapTime(
    c,
    "gate",
    admitRequest(c.env, db, tenant, reserveTokens, { requestId, schedule: (work) => afterResponse(c, work) }),
  );
  // From here on the reservation is settled on every path: handed to the response below, or released.
  let handedOver = false;
  try {
    const response = await dispatchAndServe(c, input, shaping, { baseModel, runners, mix, requestId, reservation });
    handedOver = true;
    return response;
  } finally {
    if (!handedOver) await reservation.release();
  }
}

/** Dispatch and the response; settles `reservation` once the response is out (or hands it to the stream). */
async function dispatchAndServe(
  c: Context<AppEnv>,
  input: InferenceInput,
  shaping: InferenceShaping,
  ctx: { baseModel: string; runners: readonly string[]; mix: ResolvedMix; requestId: string; reservation: BudgetReservation },
): Promise<Response> {
  const { baseModel, runners, mix, requestId, reservation } = ctx;
  // The one definition of "same mix" (core's canonical key), computed once here: it routes, and the
  // runner (which derives it again from the entries and refuses a mismatch) composes and batches by it.
  const key = mixKey(mix.wire);
  const chatTemplate = input.generate.messages ? await adapterChatTemplateOf(c.var.db, mix.adapters) : undefined;
  const secret = runnerSecret(c.env);
  const timeouts = runnerTimeouts(c.env);
  // Server-Timing `runner`: signing, sending and waiting, up to the whole answer (unary) or its first event (stream).
  startTime(c, "runner");
  const { response, runner, failovers } = await dispatchCompletion({
    secret,
    runners,
    routingKey: mixRoutingKey(baseModel, key),
    body: { ...input.generate, model: baseModel, adapters: mix.wire, mix_key: key, request_id: requestId, ...(chatTemplate ? { chat_template: chatTemplate } : {}) },
    requestId,
    timeoutMs: timeouts.headersMs,
    streamIdleMs: timeouts.streamIdleMs,
  });
  const label = await runnerLabel(secret, runner);
  addRequestLogFields(c, {
    model: input.model,
    base_model: baseModel,
    adapters: mix.wire.length,
    stream: input.generate.stream ?? false,
    runner,
    runner_label: label,
    runner_status: response.status,
    failovers: failovers.map((f) => `${f.runner}: ${f.error}`),
  });
  const adapterIds = mix.wire.map((w) => w.id);

  // Responses name the model as the client did (an adapter or composition, not its base), as vLLM.
  const named = (x: Completion): Completion => ({ ...x, model: input.model });
  if (!input.generate.stream) {
    const completion = (await response.json()) as Completion;
    endTime(c, "runner");
    // Usage and use counts are written after the response (one batch, off the latency path).
    afterResponse(
      c,
      reservation.settle({ promptTokens: completion.usage?.prompt_tokens ?? 0, completionTokens: completion.usage?.completion_tokens ?? 0 }, adapterIds),
    );
    c.header(RUNNER_LABEL_HEADER, label);
    return c.json(shaping.mapCompletion ? shaping.mapCompletion(named(completion)) : named(completion), 200);
  }
  endTime(c, "runner");
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
    // A stream cut before its usage chunk still bills the prompt (the runner sends its size up front)
    // and every token sampled so far; a disconnected client's settlement runs through waitUntil.
    onDone: (o) => {
      if (o.error) log("warn", "stream ended early", { request_id: requestId, error: o.error });
      return reservation.settle(
        {
          promptTokens: o.usage?.prompt_tokens ?? (Number(response.headers.get(PROMPT_TOKENS_HEADER)) || 0),
          completionTokens: billedCompletionTokens(o),
        },
        adapterIds,
        "now", // written before `[DONE]`: a client that read it sees its usage
      );
    },
    waitUntil: (p) => afterResponse(c, p),
    // A runner silent for this long (not even its keep-alive comments) is hung: end the stream
    // cleanly and mark it down, so the next requests go elsewhere until it answers again.
    idleTimeoutMs: timeouts.streamIdleMs,
    onIdle: () => {
      runnerHealth.markFailure(runner, "stream went silent (idle timeout)");
      log("warn", "runner stream idle, ended", { request_id: requestId, runner, idle_ms: timeouts.streamIdleMs });
    },
  });
  return new Response(stream, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      [RUNNER_LABEL_HEADER]: label,
    },
  });
}
