import { and, asc, eq, gte, lte, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { usageDaily } from "../db/schema.js";
import { utcDay } from "../util/time.js";

export type UsageRow = typeof usageDaily.$inferSelect;

/** Adds to the tenant's counters for the UTC day of `now` (one atomic upsert). */
export async function recordUsage(
  db: Db,
  tenantId: string,
  delta: { requests: number; promptTokens: number; completionTokens: number },
  now = Date.now(),
): Promise<void> {
  await db
    .insert(usageDaily)
    .values({ tenantId, day: utcDay(now), ...delta })
    .onConflictDoUpdate({
      target: [usageDaily.tenantId, usageDaily.day],
      set: {
        requests: sql`${usageDaily.requests} + ${delta.requests}`,
        promptTokens: sql`${usageDaily.promptTokens} + ${delta.promptTokens}`,
        completionTokens: sql`${usageDaily.completionTokens} + ${delta.completionTokens}`,
      },
    });
}

/** Prompt + completion tokens used today (UTC). */
export async function tokensUsedToday(db: Db, tenantId: string, now = Date.now()): Promise<number> {
  const rows = await db
    .select({ total: sql<number>`${usageDaily.promptTokens} + ${usageDaily.completionTokens}` })
    .from(usageDaily)
    .where(and(eq(usageDaily.tenantId, tenantId), eq(usageDaily.day, utcDay(now))));
  return rows[0]?.total ?? 0;
}

/** Days from `from` to `to` inclusive (YYYY-MM-DD), ascending. */
export async function usageBetween(db: Db, tenantId: string, from: string, to: string): Promise<UsageRow[]> {
  return db
    .select()
    .from(usageDaily)
    .where(and(eq(usageDaily.tenantId, tenantId), gte(usageDaily.day, from), lte(usageDaily.day, to)))
    .orderBy(asc(usageDaily.day));
}
