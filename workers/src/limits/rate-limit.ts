import { and, eq, lt, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { rateWindows } from "../db/schema.js";
import { minuteOf } from "../util/time.js";

/**
 * Fixed-window request counter per tenant per UTC minute, kept in D1 so every isolate sees it.
 * Semantics: count(tenant, ⌊now/60 s⌋) += `slots` atomically (1, or a block an isolate leases:
 * enforce.ts); the i-th of them is allowed iff count − slots + i ≤ limit. (A refused request
 * still counts, so hammering does not reopen the window early.) `giveBack` returns slots an
 * isolate leased and did not use. The statements are returned unsent, for the gate's one batch.
 */
export function rateWindowStatements(db: Db, tenantId: string, now = Date.now(), slots = 1) {
  const minute = minuteOf(now);
  return {
    minute,
    /** count += slots for this minute, returning the new count. */
    take: db
      .insert(rateWindows)
      .values({ tenantId, windowStart: minute, count: slots })
      .onConflictDoUpdate({
        target: [rateWindows.tenantId, rateWindows.windowStart],
        set: { count: sql`${rateWindows.count} + ${slots}` },
      })
      .returning({ count: rateWindows.count }),
    /** This tenant's older windows (no longer read). */
    pruneOlder: db.delete(rateWindows).where(and(eq(rateWindows.tenantId, tenantId), lt(rateWindows.windowStart, minute))),
    retryAfterSeconds: Math.ceil(((minute + 1) * 60_000 - now) / 1000),
  };
}

/** Gives back `slots` leased for `minute` and not used (count −= slots, never below 0), when `onlyIf` holds. */
export function giveBackSlots(db: Db, tenantId: string, minute: number, slots: number, onlyIf?: SQL) {
  return db
    .update(rateWindows)
    .set({ count: sql`max(0, ${rateWindows.count} - ${slots})` })
    .where(and(eq(rateWindows.tenantId, tenantId), eq(rateWindows.windowStart, minute), onlyIf));
}
