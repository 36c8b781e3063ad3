import { mixKey } from "#core/wire/mix-key";
import { bakeResponseSchema, RUNNER_BAKE_PATH, type BakeReportBody, type BakeRequest } from "#core/wire/bake";
import type { TenantScope } from "../app-env.js";
import { ApiError } from "../errors/api-error.js";
import { resolveMix } from "../inference/resolve-mix.js";
import { maxMixAdapters } from "../limits/config.js";
import { log } from "../logging/log.js";
import { modelCatalog, runnersServing } from "../runners/catalog.js";
import { runnerSecret } from "../runners/config.js";
import { dispatchToRunner } from "../runners/dispatch.js";
import { mixRoutingKey } from "../runners/rendezvous.js";
import type { CompositionWithEntries } from "./queries.js";

export interface BakeOptions {
  strategy: BakeRequest["strategy"];
  density?: number;
  rank?: number;
  seed?: number;
}

export interface BakedFiles {
  config: Record<string, unknown>;
  configJson: string;
  weights: Uint8Array<ArrayBuffer>;
  report: BakeReportBody;
}

/** A bake takes seconds to minutes (dense strategies on large targets): wait longer than for a completion's headers. */
const BAKE_TIMEOUT_MS = 10 * 60_000;

function fromBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Bakes a composition on a runner serving its base model (POST /internal/v1/bake, core/src/wire/bake.ts):
 * the runner fetches the adapters like for a completion, bakes off its event loop, and measures the
 * baked files against the exact mix on the model. Every adapter must still be visible to the caller
 * (404) and within the mix bounds (400); the runner's request errors come back as they are.
 * Routed like a completion of the same mix (rendezvous: the runner likely holds its adapters).
 */
export async function bakeOnRunner(s: TenantScope, comp: CompositionWithEntries, options: BakeOptions, requestId?: string): Promise<BakedFiles> {
  const mix = await resolveMix(s.db, s.tenant.id, comp.baseModel, comp.entries.map((e) => ({ id: e.adapterId, weight: e.weight })), maxMixAdapters(s.env));
  const runners = runnersServing(await modelCatalog(s.env, s.db), comp.baseModel);
  const body: BakeRequest = { model: comp.baseModel, adapters: mix.wire, ...options, request_id: requestId };
  const { response, runner } = await dispatchToRunner({
    secret: runnerSecret(s.env),
    runners,
    path: RUNNER_BAKE_PATH,
    routingKey: mixRoutingKey(comp.baseModel, mixKey(mix.wire)),
    body,
    requestId,
    timeoutMs: BAKE_TIMEOUT_MS,
  });
  // Error answers never reach here: dispatch throws them by fault class (the request's faults with
  // the runner's message, an adapter fetch failure as 502 adapter_unavailable, the rest after fail-over).
  const parsed = bakeResponseSchema.safeParse(await response.json().catch(() => null));
  if (!parsed.success) {
    log("error", "runner bake answer does not match the contract", { request_id: requestId, runner, issues: parsed.error.issues.slice(0, 3) });
    throw new ApiError("runner_error", "the runner's bake answer was malformed");
  }
  const out = parsed.data;
  log("info", "bake done on runner", { request_id: requestId, runner, timing_ms: out.timing_ms, kl_mean: out.report.fidelity.kl_mean });
  return { config: out.adapter_config, configJson: JSON.stringify(out.adapter_config), weights: fromBase64(out.safetensors_base64), report: out.report };
}
