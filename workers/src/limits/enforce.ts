import type { AuthTenant } from "../app-env.js";
import type { Db } from "../db/client.js";
import type { Env } from "../env.js";
import { tooManyRequests } from "../errors/api-error.js";
import { secondsUntilUtcMidnight } from "../util/time.js";
import { tenantLimits } from "./config.js";
import { takeRequest } from "./rate-limit.js";
import { tokensUsedToday } from "./usage.js";

/**
 * Gate for inference calls: counts the request against the per-minute limit and refuses it
 * when the tenant already used its tokens for the UTC day. 429 + Retry-After either way.
 */
export async function enforceLimits(env: Env, db: Db, tenant: AuthTenant, now = Date.now()): Promise<void> {
  const limits = tenantLimits(env, tenant);
  const rate = await takeRequest(db, tenant.id, limits.rpm, now);
  if (!rate.allowed) {
    throw tooManyRequests(`rate limit exceeded: ${limits.rpm} requests per minute`, rate.retryAfterSeconds);
  }
  const used = await tokensUsedToday(db, tenant.id, now);
  if (used >= limits.tokensPerDay) {
    throw tooManyRequests(
      `daily token limit exceeded: ${used} of ${limits.tokensPerDay} tokens used today (UTC)`,
      secondsUntilUtcMidnight(now),
    );
  }
}
