import { z } from "zod";
import type { AuthTenant } from "../app-env.js";
import type { Env } from "../env.js";
import { ApiError } from "../errors/api-error.js";
import { log } from "../logging/log.js";

export const DEFAULT_RPM = 600;
export const DEFAULT_TOKENS_PER_DAY = 1_000_000;
export const DEFAULT_MAX_ADAPTER_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_ADAPTER_RANK = 64;
export const DEFAULT_MAX_MIX_ADAPTERS = 8;
/** Seconds to wait for a runner's response headers before failing over (a unary answer's headers come with its body). */
export const DEFAULT_RUNNER_HEADERS_TIMEOUT_S = 60;
/** Seconds an open runner stream may send nothing (no event, no keep-alive comment) before it is ended. */
export const DEFAULT_RUNNER_STREAM_IDLE_TIMEOUT_S = 30;
/** Seconds between active /healthz probes of every runner from an isolate that has traffic (0: none). */
export const DEFAULT_RUNNER_PROBE_INTERVAL_S = 5;
/**
 * Seconds a /healthz probe may take before it counts as a failure. A runner answers /healthz from
 * its event loop, which ONNX Runtime's `run` blocks for a whole model step: on CPU a legitimate
 * step takes 2–7 s under load (2.1 s at bench case 9's 64 streams, 7.3 s for a 512-token prefill
 * over 4 rows), so a shorter timeout would put a busy, healthy runner in back-off.
 */
export const DEFAULT_RUNNER_PROBE_TIMEOUT_S = 10;
export const DEFAULT_EDGE_CACHE_TTL_MS = 5_000;
/** Most tokens an isolate reserves for a tenant at once beyond the request at hand (also ≤ 1/16 of the daily limit). */
export const DEFAULT_BUDGET_LEASE_TOKENS = 16_384;
/** Most request slots of a minute an isolate counts for a tenant at once (also ≤ 1/16 of the rpm limit). */
export const DEFAULT_RATE_LEASE_REQUESTS = 256;
/** Milliseconds billed usage waits in an isolate before it is written (coalesced); an isolate idle this long gives its lease back. */
export const DEFAULT_USAGE_FLUSH_MS = 1_000;

/**
 * An optional integer var (a string, or a number when wrangler.toml writes it bare): unset or
 * "" → the default; anything else must be a safe integer ≥ `min` (1 unless said otherwise).
 */
const integerVar = (fallback: number, min: number) =>
  z
    .union([z.string(), z.number()])
    .optional()
    .transform((raw, ctx) => {
      const text = raw === undefined ? "" : String(raw).trim();
      if (text === "") return fallback;
      const n = Number(text);
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
        const what = min === 0 ? "a non-negative integer" : "a positive integer";
        ctx.addIssue({ code: "custom", message: `must be ${what} (got ${JSON.stringify(String(raw))})` });
        return z.NEVER;
      }
      return n;
    });
const positiveInt = (fallback: number) => integerVar(fallback, 1);

/** The worker's numeric vars (wrangler.toml [vars]; see workers/README.md "Configuration"). */
const edgeVarsSchema = z.object({
  RATE_LIMIT_RPM: positiveInt(DEFAULT_RPM),
  TOKENS_PER_DAY: positiveInt(DEFAULT_TOKENS_PER_DAY),
  MAX_ADAPTER_BYTES: positiveInt(DEFAULT_MAX_ADAPTER_BYTES),
  MAX_ADAPTER_RANK: positiveInt(DEFAULT_MAX_ADAPTER_RANK),
  MAX_MIX_ADAPTERS: positiveInt(DEFAULT_MAX_MIX_ADAPTERS),
  RUNNER_HEADERS_TIMEOUT_S: positiveInt(DEFAULT_RUNNER_HEADERS_TIMEOUT_S),
  RUNNER_STREAM_IDLE_TIMEOUT_S: positiveInt(DEFAULT_RUNNER_STREAM_IDLE_TIMEOUT_S),
  RUNNER_PROBE_INTERVAL_S: integerVar(DEFAULT_RUNNER_PROBE_INTERVAL_S, 0),
  RUNNER_PROBE_TIMEOUT_S: positiveInt(DEFAULT_RUNNER_PROBE_TIMEOUT_S),
  EDGE_CACHE_TTL_MS: integerVar(DEFAULT_EDGE_CACHE_TTL_MS, 0),
  BUDGET_LEASE_TOKENS: integerVar(DEFAULT_BUDGET_LEASE_TOKENS, 0),
  RATE_LEASE_REQUESTS: integerVar(DEFAULT_RATE_LEASE_REQUESTS, 0),
  USAGE_FLUSH_MS: integerVar(DEFAULT_USAGE_FLUSH_MS, 0),
});
export type EdgeVars = z.infer<typeof edgeVarsSchema>;

const parsed = new WeakMap<object, EdgeVars>();

/**
 * The worker's vars, validated once per env object (an isolate keeps one). A bad value is a
 * deployment error, not the caller's: every request then fails with 500 `internal_error` naming
 * the variable (like the runner, which exits 2 naming it), instead of silently using a default.
 */
export function edgeVars(env: Env): EdgeVars {
  const cached = parsed.get(env);
  if (cached) return cached;
  const result = edgeVarsSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ");
    log("error", "worker misconfigured", { problems });
    throw new ApiError("internal_error", `worker misconfigured: ${problems}`);
  }
  parsed.set(env, result.data);
  return result.data;
}

/** Effective limits: the tenant's own, else the worker's vars, else the defaults above. */
export function tenantLimits(env: Env, tenant: Pick<AuthTenant, "rpmLimit" | "tokensPerDay">) {
  const vars = edgeVars(env);
  return {
    rpm: tenant.rpmLimit ?? vars.RATE_LIMIT_RPM,
    tokensPerDay: tenant.tokensPerDay ?? vars.TOKENS_PER_DAY,
  };
}

export function uploadLimits(env: Env) {
  const vars = edgeVars(env);
  return { maxBytes: vars.MAX_ADAPTER_BYTES, maxRank: vars.MAX_ADAPTER_RANK };
}

export const maxMixAdapters = (env: Env) => edgeVars(env).MAX_MIX_ADAPTERS;

/** Hang detection (see workers/README.md "Routing"): all in milliseconds. */
export function runnerTimeouts(env: Env): { headersMs: number; streamIdleMs: number; probeIntervalMs: number; probeTimeoutMs: number } {
  const vars = edgeVars(env);
  return {
    headersMs: vars.RUNNER_HEADERS_TIMEOUT_S * 1000,
    streamIdleMs: vars.RUNNER_STREAM_IDLE_TIMEOUT_S * 1000,
    probeIntervalMs: vars.RUNNER_PROBE_INTERVAL_S * 1000,
    probeTimeoutMs: vars.RUNNER_PROBE_TIMEOUT_S * 1000,
  };
}

/** How long this isolate may reuse an API key's tenant and adapter records (ms; 0: never cached). */
export const edgeCacheTtlMs = (env: Env) => edgeVars(env).EDGE_CACHE_TTL_MS;

/**
 * How an isolate leases the tenants' limits (limits/enforce.ts, limits/isolate-ledger.ts): block
 * sizes (0: each request reserves exactly its own) and how long billed usage waits before it is
 * written (0: after each request).
 */
export function leaseSettings(env: Env): { budgetTokens: number; rateRequests: number; flushMs: number } {
  const vars = edgeVars(env);
  return { budgetTokens: vars.BUDGET_LEASE_TOKENS, rateRequests: vars.RATE_LEASE_REQUESTS, flushMs: vars.USAGE_FLUSH_MS };
}
