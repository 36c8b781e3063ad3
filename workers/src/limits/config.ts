import type { AuthTenant } from "../app-env.js";
import type { Env } from "../env.js";

function intVar(raw: string | undefined, fallback: number): number {
  const n = raw === undefined || raw === "" ? NaN : Number(raw);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

export const DEFAULT_RPM = 600;
export const DEFAULT_TOKENS_PER_DAY = 1_000_000;
export const DEFAULT_MAX_ADAPTER_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_ADAPTER_RANK = 64;
export const DEFAULT_MAX_MIX_ADAPTERS = 8;

/** Effective limits: the tenant's own, else the worker's vars, else the defaults above. */
export function tenantLimits(env: Env, tenant: Pick<AuthTenant, "rpmLimit" | "tokensPerDay">) {
  return {
    rpm: tenant.rpmLimit ?? intVar(env.RATE_LIMIT_RPM, DEFAULT_RPM),
    tokensPerDay: tenant.tokensPerDay ?? intVar(env.TOKENS_PER_DAY, DEFAULT_TOKENS_PER_DAY),
  };
}

export function uploadLimits(env: Env) {
  return {
    maxBytes: intVar(env.MAX_ADAPTER_BYTES, DEFAULT_MAX_ADAPTER_BYTES),
    maxRank: intVar(env.MAX_ADAPTER_RANK, DEFAULT_MAX_ADAPTER_RANK),
  };
}

export const maxMixAdapters = (env: Env) => intVar(env.MAX_MIX_ADAPTERS, DEFAULT_MAX_MIX_ADAPTERS);

export const DEFAULT_MAX_BAKE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_BAKE_DENSE_FLOATS = 16 * 1024 * 1024;

/**
 * What one bake may cost inside a Worker isolate (128 MB, limited CPU): the composition's adapter
 * files together (they are all read into memory), and for the dense strategies (ties, dare_*,
 * magnitude_prune) the dense ΔW floats they materialise, Σ over modules of terms × in × out.
 */
export function bakeLimits(env: Env) {
  return {
    maxBytes: intVar(env.MAX_BAKE_BYTES, DEFAULT_MAX_BAKE_BYTES),
    maxDenseFloats: intVar(env.MAX_BAKE_DENSE_FLOATS, DEFAULT_MAX_BAKE_DENSE_FLOATS),
  };
}
