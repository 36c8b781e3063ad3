import { lt } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { usedSignatures } from "../db/schema.js";

/**
 * Records an accepted internal-call signature in D1; false when it was recorded before (a
 * replay, whichever isolate saw it first). One D1 write per accepted internal call.
 */
export async function claimSignature(db: Db, signature: string, expiresAtMs: number): Promise<boolean> {
  const rows = await db
    .insert(usedSignatures)
    .values({ signature: signature.toLowerCase(), expiresAt: expiresAtMs })
    .onConflictDoNothing()
    .returning({ signature: usedSignatures.signature });
  return rows.length === 1;
}

/** Deletes signatures whose window has passed (their timestamps are refused anyway). Returns how many. */
export async function pruneUsedSignatures(db: Db, nowMs: number): Promise<number> {
  const rows = await db.delete(usedSignatures).where(lt(usedSignatures.expiresAt, nowMs)).returning({ signature: usedSignatures.signature });
  return rows.length;
}
