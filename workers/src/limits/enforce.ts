import { and, eq, sql } from "drizzle-orm";
import type { AuthTenant } from "../app-env.js";
import { batchOf, type Db } from "../db/client.js";
import { rateWindows, usageDaily } from "../db/schema.js";
import type { Env } from "../env.js";
import { tooManyRequests } from "../errors/api-error.js";
import { minuteOf, secondsUntilNextMinute, secondsUntilUtcMidnight, utcDay } from "../util/time.js";
import { leaseSettings, tenantLimits } from "./config.js";
import { existingLedger, ledgerFor, track, waitForRunning, type IsolateLedger, type RefillRefusal } from "./isolate-ledger.js";
import { giveBackSlots, rateWindowStatements } from "./rate-limit.js";
import { BudgetReservation } from "./reservation.js";

/**
 * The gate of inference calls. The common request passes it **without D1**: it takes a request
 * slot of this minute and its tokens from what this isolate holds of the tenant's limits (its
 * lease, limits/isolate-ledger.ts). Only when the lease runs short does a request refill it, in
 * one D1 round trip (one batch: one transaction):
 *   1. the per-minute counter of this tenant += k (rate-limit.ts: k slots, a block of
 *      RATE_LEASE_REQUESTS, at most 1/16 of the rpm limit, at least 1; the slots within the limit
 *      are this isolate's, and a refused request still counts), and its older windows are pruned;
 *   2. the daily budget on `usage_daily` of today (UTC): the row is made to exist, then one
 *      conditional UPDATE does reserved_tokens += `want` only while the minute allows this request
 *      and prompt_tokens + completion_tokens + reserved_tokens + `want` ≤ the daily limit, `want`
 *      being what the request lacks, rounded up to a block (BUDGET_LEASE_TOKENS, at most 1/16 of
 *      the daily limit). A block that does not fit is retried as exactly what the request lacks
 *      (a second round trip, only within one block of the limit).
 * `tokens` is the most the request can be billed: an upper bound of its prompt plus max_tokens.
 * Refused: 429 + Retry-After (seconds to the next minute, or to UTC midnight), nothing reserved.
 * With BUDGET_LEASE_TOKENS = RATE_LEASE_REQUESTS = 0 every request makes that round trip for itself.
 *
 * Semantics: at any moment, today's billed tokens + the reservations held (requests in flight and
 * the isolates' leases) ≤ the daily limit, so concurrent requests on any number of isolates cannot
 * overshoot it (each is billed at most what it reserved; a chat prompt's reservation is an
 * estimate, see promptTokensUpperBound), and the minute's requests ≤ the rpm limit. What leasing
 * changes is the other side: an isolate may hold up to one block of tokens and of slots that
 * another isolate then cannot use, until it goes idle (USAGE_FLUSH_MS after its last request:
 * limits/reservation.ts gives the lease back) — or until the UTC day (minute) ends when it dies
 * holding them. The caller settles the reservation once when the request ends (BudgetReservation).
 * Requests of one isolate wait for a refill in flight rather than starting their own (for at most
 * RUNNING_WORK_STALE_MS: a refill whose request was cancelled is then given up on); when D1 refuses
 * that refill, the waiting requests it refuses as well get the 429 at once (throwIfRefusedAlike),
 * and the unused slots of a block taken by a refill the budget refused go back in the round trip
 * that reads the budget's figures. The day and minute are read again after every wait.
 */
export async function admitRequest(
  env: Env,
  db: Db,
  tenant: AuthTenant,
  tokens: number,
  opts: { requestId?: string; schedule: (work: Promise<unknown>) => void },
  now = Date.now(),
): Promise<BudgetReservation> {
  const limits = tenantLimits(env, tenant);
  const lease = leaseSettings(env);
  // The day and minute are read again after every wait: a request that waited into a new minute counts in that one.
  for (let at = now; ; at = Date.now()) {
    const ledger = ledgerFor(tenant.id, utcDay(at));
    if (ledger.tryTake(tokens, minuteOf(at), at)) {
      return new BudgetReservation(db, ledger, tokens, { flushMs: lease.flushMs, schedule: opts.schedule }, opts.requestId);
    }
    const refilling = waitForRunning(ledger.refill);
    if (refilling) {
      const awaited = ledger.refills;
      ledger.refillWaiters++;
      try {
        await refilling;
      } finally {
        ledger.refillWaiters--;
      }
      throwIfRefusedAlike(ledger, awaited, tokens, limits, Date.now());
      continue;
    }
    const flushing = waitForRunning(ledger.flushing);
    if (flushing) {
      await flushing;
      continue;
    }
    const refill = refillLease(db, ledger, ++ledger.refills, { tenantId: tenant.id, ...limits, ...lease }, tokens, at);
    const work = track(refill);
    ledger.refill = work;
    // Kept alive past this request's own end (its client may leave mid-refill), so the requests waiting for it are not left hanging.
    opts.schedule(refill.catch(() => undefined));
    try {
      await refill;
    } finally {
      if (ledger.refill === work) ledger.refill = null;
    }
  }
}

/**
 * Answers a request that waited for refill number `refill` with that refill's refusal when it
 * refuses this request as well: the same minute and no slot of it here, or at least as many tokens
 * lacking as the refused reservation. So concurrent requests refused by the minute or the budget
 * all get their 429 when the first does, not one D1 round trip after another; a request the
 * refusal does not cover (fewer tokens lacking, a new minute) goes on to its own refill. Nothing
 * is granted this way, so it cannot overshoot a limit. A request refused by the budget so counts
 * against the minute: the refusal kept a slot of its block for each waiting request.
 */
function throwIfRefusedAlike(ledger: IsolateLedger, refill: number, tokens: number, limits: { rpm: number; tokensPerDay: number }, now: number): void {
  const refusal = ledger.refusal;
  if (refusal?.refill !== refill) return;
  const minute = minuteOf(now);
  if (refusal.kind === "rate") {
    if (refusal.minute === minute && ledger.slotsOf(minute) < 1) throw rateRefusal(limits.rpm, secondsUntilNextMinute(now));
    return;
  }
  if (tokens - ledger.free < refusal.lacking) return;
  ledger.trySpendSlot(minute);
  throw budgetRefusal(tokens, limits.tokensPerDay, refusal, now);
}

/** Sizes of what one refill takes from D1 beyond the request at hand (see admitRequest). */
export function leaseBlocks(limits: { rpm: number; tokensPerDay: number }, lease: { rateRequests: number; budgetTokens: number }) {
  return {
    slots: Math.max(1, Math.min(lease.rateRequests, Math.floor(limits.rpm / 16))),
    tokens: Math.min(lease.budgetTokens, Math.floor(limits.tokensPerDay / 16)),
  };
}

/**
 * Refill number `refill` of the ledger in D1 for a request of `tokens`: a block of slots when this
 * minute has none left here, a block of tokens when the free ones fall short. Throws the 429 when
 * the minute or the budget refuses (a refused request still counts against the minute), and
 * records the refusal in the ledger for the requests waiting for this refill.
 */
async function refillLease(
  db: Db,
  ledger: IsolateLedger,
  refill: number,
  limits: { tenantId: string; rpm: number; tokensPerDay: number; rateRequests: number; budgetTokens: number },
  tokens: number,
  now: number,
): Promise<void> {
  const minute = minuteOf(now);
  const blocks = leaseBlocks(limits, limits);
  const slots = ledger.slotsOf(minute) < 1 ? blocks.slots : 0;
  const lacking = Math.max(0, tokens - ledger.free);
  const want = lacking > 0 ? Math.max(lacking, blocks.tokens) : 0;
  const rate = rateWindowStatements(db, limits.tenantId, now, slots || 1);
  // With slots taken in this batch, the budget is only reserved when the first of them is within the limit.
  const minuteAllows = slots > 0 ? slots + limits.rpm - 1 : null;
  const budget = want > 0 ? reserveStatements(db, limits.tenantId, ledger.day, want, limits.tokensPerDay, minuteAllows === null ? null : { minute, atMost: minuteAllows }) : null;
  const results = await db.batch(batchOf([...(slots > 0 ? [rate.take, rate.pruneOlder] : []), ...(budget ? [budget.ensureDay, budget.reserve] : [])]));
  let grantedSlots = 0;
  if (slots > 0) {
    const count = (results[0] as { count: number }[])[0]?.count ?? slots;
    const first = count - slots + 1; // this request's place in the minute
    if (first > limits.rpm) ledger.refusal = { refill, minute, kind: "rate" };
    assertWithinRate(limits.tenantId, first, limits.rpm, rate);
    grantedSlots = Math.min(slots, limits.rpm - first + 1);
    ledger.addSlots(grantedSlots, minute);
  }
  if (!budget) return;
  let granted = (results[slots > 0 ? 3 : 1] as unknown[]).length > 0 ? want : 0;
  if (granted === 0 && want > lacking) {
    // The block does not fit: what this request lacks may (the minute was counted above).
    const exact = reserveStatements(db, limits.tenantId, ledger.day, lacking, limits.tokensPerDay, null);
    if ((await exact.reserve).length > 0) granted = lacking;
  }
  if (granted > 0) {
    ledger.addTokens(granted);
    return;
  }
  ledger.trySpendSlot(minute); // refused by the budget: its request still counts
  // The rest of the block of slots this refill took, beyond one for each request waiting for it (answered with
  // this refusal, they count), goes back now, in the round trip that reads how the budget stands, not when the
  // isolate goes idle: a refused request schedules no flush.
  const unused = ledger.dropSlots(grantedSlots - 1 - ledger.refillWaiters, minute);
  const [figures] = await db.batch(
    batchOf([budgetFigures(db, limits.tenantId, ledger.day), ...(unused > 0 ? [giveBackSlots(db, limits.tenantId, minute, unused)] : [])]),
  );
  const row = (figures as { used: number; held: number }[])[0];
  const refusal: RefillRefusal = { refill, minute, kind: "budget", lacking, used: row?.used ?? 0, held: row?.held ?? 0 };
  ledger.refusal = refusal;
  throw budgetRefusal(tokens, limits.tokensPerDay, refusal, now);
}

/**
 * The budget reservation of `tokens` on `day`'s row: the row made to exist (an insert that does
 * nothing when it does), then one conditional UPDATE that takes them only while the budget (and,
 * given, the minute's count) allows.
 */
function reserveStatements(
  db: Db,
  tenantId: string,
  day: string,
  tokens: number,
  limit: number,
  minute: { minute: number; atMost: number } | null,
) {
  const ensureDay = db.insert(usageDaily).values({ tenantId, day }).onConflictDoNothing();
  const reserve = db
    .update(usageDaily)
    .set({ reservedTokens: sql`${usageDaily.reservedTokens} + ${tokens}` })
    .where(
      and(
        eq(usageDaily.tenantId, tenantId),
        eq(usageDaily.day, day),
        sql`${usageDaily.promptTokens} + ${usageDaily.completionTokens} + ${usageDaily.reservedTokens} + ${tokens} <= ${limit}`,
        minute
          ? sql`(SELECT ${rateWindows.count} FROM ${rateWindows} WHERE ${rateWindows.tenantId} = ${tenantId} AND ${rateWindows.windowStart} = ${minute.minute}) <= ${minute.atMost}`
          : undefined,
      ),
    )
    .returning({ reserved: usageDaily.reservedTokens });
  return { ensureDay, reserve };
}

/** How the day's budget stands (read only when a reservation was refused). */
function budgetFigures(db: Db, tenantId: string, day: string) {
  return db
    .select({ used: sql<number>`${usageDaily.promptTokens} + ${usageDaily.completionTokens}`, held: usageDaily.reservedTokens })
    .from(usageDaily)
    .where(and(eq(usageDaily.tenantId, tenantId), eq(usageDaily.day, day)));
}

/** The 429 of a request of `tokens` the budget refuses, saying how it stands. */
function budgetRefusal(tokens: number, limit: number, budget: { used: number; held: number }, now: number) {
  const retry = secondsUntilUtcMidnight(now);
  if (tokens > limit) {
    return tooManyRequests(
      `this request may use up to ${tokens} tokens (prompt + max_tokens), more than the daily limit of ${limit}; lower max_tokens`,
      retry,
    );
  }
  return tooManyRequests(
    `daily token limit exceeded: ${budget.used} of ${limit} tokens used today (UTC)` +
      (budget.held > 0 ? `, ${budget.held} reserved (requests in flight, and what isolates serving them hold)` : "") +
      `; this request may use up to ${tokens} (prompt + max_tokens)`,
    retry,
  );
}

/** The 429 of a request the per-minute limit refuses. */
function rateRefusal(rpm: number, retryAfterSeconds: number) {
  return tooManyRequests(`rate limit exceeded: ${rpm} requests per minute`, retryAfterSeconds);
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
  throw rateRefusal(rpm, rate.retryAfterSeconds);
}

/** 429 at once when this isolate already refused the tenant in the current minute. */
export function refuseIfRateLimitedHere(tenantId: string, now = Date.now()): void {
  const minute = minuteOf(now);
  const refused = refusedInMinute.get(tenantId);
  if (refused === undefined) return;
  if (refused !== minute) {
    refusedInMinute.delete(tenantId);
    return;
  }
  throw tooManyRequests("rate limit exceeded: too many requests this minute", secondsUntilNextMinute(now));
}

/**
 * Counts a request refused before the gate (bad model, adapter or prompt: a 4xx) against the
 * per-minute limit, as the gate would have: a slot of this isolate's lease, else one D1 batch. Over the limit, its answer becomes the
 * 429 (as when the limit was checked first).
 */
export async function countRefusedRequest(env: Env, db: Db, tenant: AuthTenant, now = Date.now()): Promise<void> {
  // A slot this isolate holds for the minute is already counted in D1: spending it counts the request.
  if (existingLedger(tenant.id, utcDay(now))?.trySpendSlot(minuteOf(now))) return;
  const rpm = tenantLimits(env, tenant).rpm;
  const rate = rateWindowStatements(db, tenant.id, now);
  const [taken] = await db.batch([rate.take, rate.pruneOlder]);
  assertWithinRate(tenant.id, taken[0]?.count ?? 1, rpm, rate);
}
