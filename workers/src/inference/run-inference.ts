import type { Context } from "hono";
import { PROMPT_TOKENS_HEADER, type Completion, type GenerateRequestInput } from "#core/wire/runner-api";
import type { AppEnv } from "../app-env.js";
import { tenantOf } from "../auth/require-tenant.js";
import { findOwnComposition } from "../compositions/queries.js";
import { ApiError, badRequest, notFound, serviceUnavailable, unprocessable } from "../errors/api-error.js";
import { maxMixAdapters } from "../limits/config.js";
import { enforceLimits } from "../limits/enforce.js";
import { recordUsage } from "../limits/usage.js";
import { log } from "../logging/log.js";
import { catalogModels, modelCatalog, runnersServing } from "../runners/catalog.js";
import { assertPromptFitsContext } from "../validation/prompt-bounds.js";
import { runnerSecret } from "../runners/config.js";
import { dispatchCompletion } from "../runners/dispatch.js";
import { mixRoutingKey } from "../runners/rendezvous.js";
import { resolveMix, type MixRequestEntry } from "./resolve-mix.js";
import { billedCompletionTokens, passThroughSse } from "./sse.js";

export interface InferenceInput {
  model: string;
  adapters?: MixRequestEntry[];
  composition?: string;
  /** Everything the runner gets besides model, adapters and request_id. */
  generate: Omit<GenerateRequestInput, "model" | "adapters" | "request_id">;
}

export interface InferenceShaping {
  /** Rewrites the runner's non-stream completion (default: as is). */
  mapCompletion?: (c: Completion) => unknown;
  /** Rewrites each streamed event (default: as is). */
  mapChunk?: (c: Completion) => unknown | null;
}

/** Resolves the request's mix: an ad-hoc `adapters` list, a saved `composition`, or neither (base). */
async function mixEntries(c: Context<AppEnv>, input: InferenceInput): Promise<MixRequestEntry[]> {
  if (input.adapters !== undefined && input.composition !== undefined) {
    throw badRequest("give either `adapters` or `composition`, not both");
  }
  if (input.composition === undefined) return input.adapters ?? [];
  const comp = await findOwnComposition(c.var.db, tenantOf(c).id, input.composition);
  if (!comp) throw notFound(`composition '${input.composition}' not found`);
  if (comp.baseModel !== input.model) {
    throw unprocessable(`composition '${comp.name}' is for base model '${comp.baseModel}', not '${input.model}'`);
  }
  return comp.entries.map((e) => ({ id: e.adapterId, weight: e.weight }));
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
  const entries = await mixEntries(c, input);
  const mix = await resolveMix(db, tenant.id, input.model, entries, maxMixAdapters(c.env));

  const catalog = await modelCatalog(c.env, db);
  const runners = runnersServing(catalog, input.model);
  if (runners.length === 0) {
    if (catalog.byRunner.size === 0) throw serviceUnavailable("no runner is reachable", 5);
    throw notFound(`model '${input.model}' is not served by any healthy runner (see GET /v1/models)`);
  }
  const manifest = catalogModels(catalog).find((m) => m.id === input.model)?.manifest;
  if (manifest) assertPromptFitsContext(manifest, input.generate.prompt, input.generate.max_tokens ?? 16);
  const requestId = c.get("requestId");
  const { response, runner, failovers } = await dispatchCompletion({
    secret: runnerSecret(c.env),
    runners,
    routingKey: mixRoutingKey(input.model, mix.wire),
    body: { ...input.generate, model: input.model, adapters: mix.wire, request_id: requestId },
    requestId,
  });
  c.header("x-loraedge-runner", new URL(runner).host);
  log("info", "inference routed", {
    request_id: requestId,
    tenant: tenant.name,
    model: input.model,
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
  };

  if (!input.generate.stream) {
    const completion = (await response.json()) as Completion;
    await account(completion.usage?.prompt_tokens ?? 0, completion.usage?.completion_tokens ?? 0);
    return c.json(shaping.mapCompletion ? shaping.mapCompletion(completion) : completion, 200);
  }
  if (!response.body) throw new ApiError("runner_error", "the runner sent an empty stream");
  const stream = passThroughSse(response.body, {
    map: shaping.mapChunk ?? null,
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
