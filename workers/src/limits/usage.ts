import { and, asc, eq, gte, lte } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { usageDaily } from "../db/schema.js";

export type UsageRow = typeof usageDaily.$inferSelect;

/** Days from `from` to `to` inclusive (YYYY-MM-DD), ascending. (Written by enforce.ts and reservation.ts.) */
export async function usageBetween(db: Db, tenantId: string, from: string, to: string): Promise<UsageRow[]> {
  return db
    .select()
    .from(usageDaily)
    .where(and(eq(usageDaily.tenantId, tenantId), gte(usageDaily.day, from), lte(usageDaily.day, to)))
    .orderBy(asc(usageDaily.day));
}
