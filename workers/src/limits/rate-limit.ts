import { and, eq, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { rateWindows } from "../db/schema.js";

/**
 * Fixed-window request counter per tenant per UTC minute, kept in D1 so every isolate sees it.
 * Semantics: count(tenant, ⌊now/60 s⌋) += 1 atomically; allowed iff the new count ≤ limit.
 * (A refused request still counts, so hammering does not reopen the window early.)
 * The statements are returned unsent, for the gate's one batch (enforce.ts).
 */
export function rateWindowStatements(db: Db, tenantId: string, now = Date.now()) {
  const minute = Math.floor(now / 60_000);
  return {
    minute,
    /** count += 1 for this minute, returning the new count. */
    take: db
      .insert(rateWindows)
      .values({ tenantId, windowStart: minute, count: 1 })
      .onConflictDoUpdate({
        target: [rateWindows.tenantId, rateWindows.windowStart],
        set: { count: sql`${rateWindows.count} + 1` },
      })
      .returning({ count: rateWindows.count }),
    /** This tenant's older windows (no longer read). */
    pruneOlder: db.delete(rateWindows).where(and(eq(rateWindows.tenantId, tenantId), lt(rateWindows.windowStart, minute))),
    retryAfterSeconds: Math.ceil(((minute + 1) * 60_000 - now) / 1000),
  };
}
