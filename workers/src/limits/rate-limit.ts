import { and, eq, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { rateWindows } from "../db/schema.js";

/**
 * Fixed-window request counter per tenant per UTC minute, kept in D1 so every isolate sees it.
 * Semantics: count(tenant, ⌊now/60 s⌋) += 1 atomically; allowed iff the new count ≤ limit.
 * (A refused request still counts, so hammering does not reopen the window early.)
 */
export async function takeRequest(
  db: Db,
  tenantId: string,
  limit: number,
  now = Date.now(),
): Promise<{ allowed: boolean; count: number; retryAfterSeconds: number }> {
  const minute = Math.floor(now / 60_000);
  const rows = await db
    .insert(rateWindows)
    .values({ tenantId, windowStart: minute, count: 1 })
    .onConflictDoUpdate({
      target: [rateWindows.tenantId, rateWindows.windowStart],
      set: { count: sql`${rateWindows.count} + 1` },
    })
    .returning({ count: rateWindows.count });
  const count = rows[0]?.count ?? 1;
  if (count === 1) {
    // First request of a new window: drop this tenant's old windows.
    await db.delete(rateWindows).where(and(eq(rateWindows.tenantId, tenantId), lt(rateWindows.windowStart, minute)));
  }
  const retryAfterSeconds = Math.ceil(((minute + 1) * 60_000 - now) / 1000);
  return { allowed: count <= limit, count, retryAfterSeconds };
}
