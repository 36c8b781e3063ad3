import { inArray, lt, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { usesIncrement } from "../adapters/queries.js";
import { batchOf, type Db } from "../db/client.js";
import { usageBatches, usageDaily } from "../db/schema.js";
import type { LedgerFlush } from "./isolate-ledger.js";
import { giveBackSlots } from "./rate-limit.js";

/**
 * One flush of an isolate's ledger as D1 applies it: the pending usage (billed tokens moved from
 * reserved to billed), the use counts, and what the lease gives back — under an id unique to this
 * flush of this isolate, so that writing it again is harmless.
 *
 * Semantics: `usageBatchStatements` is one D1 batch (one transaction) whose last statement records
 * the id in `usage_batches` and whose other statements change nothing once that row exists. So a
 * batch is applied at most once however many times it is sent (a retry after a failure, after a
 * lost reply, or beside a write of it still under way), and exactly once when one write of it
 * succeeds. Cost: one round trip per write, 2 + (distinct use counts) + (0 or 1) statements.
 */
export interface UsageBatch {
  /** `<isolate id>:<sequence>`. */
  id: string;
  tenantId: string;
  /** UTC day the tokens were reserved on (YYYY-MM-DD). */
  day: string;
  flush: LedgerFlush;
  /** Writes of it that failed so far. */
  attempts: number;
  /** When it was first written (epoch ms; 0 before). */
  firstTriedAt: number;
  /** Earliest time of its next write (epoch ms; 0: at once). */
  retryAt: number;
}

/**
 * This isolate, among every isolate that writes usage (an isolate's module state lives as long as
 * it); drawn at its first batch, since a Worker may not generate random values in global scope.
 */
let isolateId: string | null = null;
let sequence = 0;

/** The batch of a flush, or null when it writes nothing. */
export function newUsageBatch(tenantId: string, day: string, flush: LedgerFlush): UsageBatch | null {
  const { usage, returnedTokens, returnedSlots } = flush;
  if (usage.requests === 0 && usage.promptTokens + usage.completionTokens + returnedTokens === 0 && returnedSlots === 0) return null;
  isolateId ??= crypto.randomUUID();
  return { id: `${isolateId}:${++sequence}`, tenantId, day, flush, attempts: 0, firstTriedAt: 0, retryAt: 0 };
}

/** Delay before the n-th retry (n ≥ 1) of a batch whose write failed: 1 s, 2 s, 4 s, … at most 30 s. */
export function usageRetryDelayMs(attempts: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, attempts - 1));
}

/**
 * How long an isolate keeps retrying a batch before giving it up (logged with its content): its
 * tokens then stay reserved until the day ends, as when an isolate dies before writing.
 */
export const USAGE_BATCH_RETRY_MS = 3_600_000;

/** How long `usage_batches` rows are kept: longer than any retry of their batch can come (USAGE_BATCH_RETRY_MS). */
export const USAGE_BATCH_KEEP_MS = 2 * 3_600_000;

/** Rows one prune statement deletes at most, and statements one prune runs at most (a busy isolate writes one id a second). */
export const USAGE_BATCH_PRUNE = { chunk: 5_000, chunks: 20 };

/** The batch's D1 statements (see UsageBatch). */
export function usageBatchStatements(db: Db, batch: UsageBatch, now = Date.now()): [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]] {
  const { usage, returnedTokens, returnedSlots, minute } = batch.flush;
  const p = usage.promptTokens;
  const c = usage.completionTokens;
  const released = p + c + returnedTokens;
  const notApplied = sql`NOT EXISTS (SELECT 1 FROM ${usageBatches} WHERE ${usageBatches.id} = ${batch.id})`;
  const statements: BatchItem<"sqlite">[] = [];
  if (usage.requests > 0 || released > 0) {
    statements.push(
      db
        .insert(usageDaily)
        .values({ tenantId: batch.tenantId, day: batch.day, requests: usage.requests, promptTokens: p, completionTokens: c })
        .onConflictDoUpdate({
          target: [usageDaily.tenantId, usageDaily.day],
          set: {
            requests: sql`${usageDaily.requests} + ${usage.requests}`,
            promptTokens: sql`${usageDaily.promptTokens} + ${p}`,
            completionTokens: sql`${usageDaily.completionTokens} + ${c}`,
            reservedTokens: sql`max(0, ${usageDaily.reservedTokens} - ${released})`,
          },
          // The row exists once tokens were reserved on it, so a batch already applied always takes this path.
          setWhere: notApplied,
        }),
    );
  }
  // The marketplace's use count ("most used"): every adapter of each served mix, grouped by count.
  const byCount = new Map<number, string[]>();
  for (const [id, n] of usage.adapterUses) byCount.set(n, [...(byCount.get(n) ?? []), id]);
  for (const [n, ids] of byCount) {
    const uses = usesIncrement(db, ids, n, notApplied);
    if (uses) statements.push(uses);
  }
  if (returnedSlots > 0) statements.push(giveBackSlots(db, batch.tenantId, minute, returnedSlots, notApplied));
  statements.push(db.insert(usageBatches).values({ id: batch.id, appliedAt: now }).onConflictDoNothing());
  return batchOf(statements);
}

/** Writes the batch in one round trip; throws what D1 threw (the batch may or may not have been applied). */
export async function writeUsageBatch(db: Db, batch: UsageBatch, now = Date.now()): Promise<void> {
  await db.batch(usageBatchStatements(db, batch, now));
}

/**
 * Deletes the ids of batches applied before `now − USAGE_BATCH_KEEP_MS` (scheduled sweeper), in
 * statements of at most `chunk` rows (by primary key), at most `chunks` of them: each one a short
 * write, and one run bounded; what is left goes at the next run. Returns how many were deleted.
 */
export async function pruneUsageBatches(db: Db, now: number, { chunk, chunks } = USAGE_BATCH_PRUNE): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < chunks; i++) {
    const expired = db.select({ id: usageBatches.id }).from(usageBatches).where(lt(usageBatches.appliedAt, now - USAGE_BATCH_KEEP_MS)).limit(chunk);
    // Counted by D1, not returned.
    const { changes } = (await db.delete(usageBatches).where(inArray(usageBatches.id, expired)).run()).meta;
    deleted += changes;
    if (changes < chunk) break;
  }
  return deleted;
}
