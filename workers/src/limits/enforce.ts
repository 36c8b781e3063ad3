import { and, eq, sql } from "drizzle-orm";
import type { AuthTenant } from "../app-env.js";
import type { Db } from "../db/client.js";
import { rateWindows, usageDaily } from "../db/schema.js";
import type { Env } from "../env.js";
import { tooManyRequests } from "../errors/api-error.js";
import { secondsUntilUtcMidnight, utcDay } from "../util/time.js";
import { tenantLimits } from "./config.js";
import { rateWindowStatements } from "./rate-limit.js";
import { BudgetReservation } from "./reservation.js";

/**
 * The gate of inference calls, in one D1 round trip (one batch: one transaction):
 *   1. the per-minute counter of this tenant += 1 (rate-limit.ts; a refused request still counts),
 *      and its older windows are pruned;
 *   2. the daily budget reservation on `usage_daily` of today (UTC): the row is made to exist, then
 *      one conditional UPDATE does reserved_tokens += `tokens` only when this minute's count ≤ the
 *      rpm limit and prompt_tokens + completion_tokens + reserved_tokens + `tokens` ≤ the daily limit
 *      (D1 runs the batch's statements in order, in one transaction: no request sees another's half).
 * `tokens` is the most the request can be billed: an upper bound of its prompt plus max_tokens.
 * Refused: 429 + Retry-After (seconds to the next minute, or to UTC midnight), nothing reserved.
 *
 * Semantics: at any moment, today's billed tokens + the reservations held ≤ the daily limit, so
 * concurrent requests cannot overshoot it (each is billed at most what it reserved; a chat prompt's
 * reservation is an estimate, see promptTokensUpperBound). The caller settles the reservation once
 * when the request ends (BudgetReservation). A reservation never settled (its isolate died) holds
 * its tokens until the UTC day ends: each day has its own row, so tomorrow's budget is whole.
 */
export async function admitRequest(
  env: Env,
  db: Db,
  tenant: AuthTenant,
  tokens: number,
  requestId?: string,
  now = Date.now(),
): Promise<BudgetReservation> {
  const limits = tenantLimits(env, tenant);
  const day = utcDay(now);
  const rate = rateWindowStatements(db, tenant.id, now);
  // The reservation: the day's row exists (an insert that does nothing when it does), then one
  // conditional UPDATE takes the tokens only while the minute's count and the budget allow it.
  const ensureDay = db.insert(usageDaily).values({ tenantId: tenant.id, day }).onConflictDoNothing();
  const reserve = db
    .update(usageDaily)
    .set({ reservedTokens: sql`${usageDaily.reservedTokens} + ${tokens}` })
    .where(
      and(
        eq(usageDaily.tenantId, tenant.id),
        eq(usageDaily.day, day),
        sql`${usageDaily.promptTokens} + ${usageDaily.completionTokens} + ${usageDaily.reservedTokens} + ${tokens} <= ${limits.tokensPerDay}`,
        sql`(SELECT ${rateWindows.count} FROM ${rateWindows} WHERE ${rateWindows.tenantId} = ${tenant.id} AND ${rateWindows.windowStart} = ${rate.minute}) <= ${limits.rpm}`,
      ),
    )
    .returning({ reserved: usageDaily.reservedTokens });
  const [taken, , , reserved] = await db.batch([rate.take, rate.pruneOlder, ensureDay, reserve]);
  assertWithinRate(tenant.id, taken[0]?.count ?? 1, limits.rpm, rate);
  if (reserved.length === 0) throw await budgetRefusal(db, tenant.id, day, tokens, limits.tokensPerDay, now);
  return new BudgetReservation(db, tenant.id, day, tokens, requestId);
}

/** The 429 of a refused reservation, saying how the budget stands (read only on this path). */
async function budgetRefusal(db: Db, tenantId: string, day: string, tokens: number, limit: number, now: number) {
  const retry = secondsUntilUtcMidnight(now);
  if (tokens > limit) {
    return tooManyRequests(
      `this request may use up to ${tokens} tokens (prompt + max_tokens), more than the daily limit of ${limit}; lower max_tokens`,
      retry,
    );
  }
  const rows = await db
    .select({ used: sql<number>`${usageDaily.promptTokens} + ${usageDaily.completionTokens}`, reserved: usageDaily.reservedTokens })
    .from(usageDaily)
    .where(and(eq(usageDaily.tenantId, tenantId), eq(usageDaily.day, day)));
  const used = rows[0]?.used ?? 0;
  const held = rows[0]?.reserved ?? 0;
  return tooManyRequests(
    `daily token limit exceeded: ${used} of ${limit} tokens used today (UTC)` +
      (held > 0 ? `, ${held} reserved by requests in flight` : "") +
      `; this request may use up to ${tokens} (prompt + max_tokens)`,
    retry,
  );
}

/**
 * Tenants this isolate refused for the per-minute limit, with that minute: until it ends they are
 * refused again here at once, before any D1 work (a flood of requests, valid or not, stops
 * costing queries). Not counting those refusals cannot reopen the fixed window early.
 */
const refusedInMinute = new Map<string, number>();

function assertWithinRate(tenantId: string, count: number, rpm: number, rate: { minute: number; retryAfterSeconds: number }): void {
  if (count <= rpm) return;
  if (refusedInMinute.size >= 10_000) refusedInMinute.clear();
  refusedInMinute.set(tenantId, rate.minute);
  throw tooManyRequests(`rate limit exceeded: ${rpm} requests per minute`, rate.retryAfterSeconds);
}

/** 429 at once when this isolate already refused the tenant in the current minute. */
export function refuseIfRateLimitedHere(tenantId: string, now = Date.now()): void {
  const minute = Math.floor(now / 60_000);
  const refused = refusedInMinute.get(tenantId);
  if (refused === undefined) return;
  if (refused !== minute) {
    refusedInMinute.delete(tenantId);
    return;
  }
  throw tooManyRequests("rate limit exceeded: too many requests this minute", Math.ceil(((minute + 1) * 60_000 - now) / 1000));
}

/**
 * Counts a request refused before the gate (bad model, adapter or prompt: a 4xx) against the
 * per-minute limit, as the gate would have: one D1 batch. Over the limit, its answer becomes the
 * 429 (as when the limit was checked first).
 */
export async function countRefusedRequest(env: Env, db: Db, tenant: AuthTenant, now = Date.now()): Promise<void> {
  const rpm = tenantLimits(env, tenant).rpm;
  const rate = rateWindowStatements(db, tenant.id, now);
  const [taken] = await db.batch([rate.take, rate.pruneOlder]);
  assertWithinRate(tenant.id, taken[0]?.count ?? 1, rpm, rate);
}
