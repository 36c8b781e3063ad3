import { and, eq, isNull, lt } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { idempotencyKeys } from "../db/schema.js";

/** How long a finished result is replayed (Stripe keeps 24 h too); rows older are pruned. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** A first request still pending after this long is taken to have died; a retry takes over. */
export const IDEMPOTENCY_LEASE_MS = 60 * 1000;

export type IdempotencyBegin =
  /** First use (or a takeover of a dead/expired one): run the request, then finish or release. */
  | { kind: "new" }
  /** Finished before: answer with this. */
  | { kind: "replay"; status: number; body: string }
  /** The first request is still running. */
  | { kind: "in_progress"; retryAfterS: number }
  /** The key was used for a different request. */
  | { kind: "mismatch" };

type Row = typeof idempotencyKeys.$inferSelect;
const keyOf = (tenantId: string, key: string) => and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, key))!;

/** Claims the key for this request (fingerprint `requestHash`), or says what to answer instead. */
export async function beginIdempotent(db: Db, tenantId: string, key: string, requestHash: string, now = Date.now()): Promise<IdempotencyBegin> {
  const inserted = await db
    .insert(idempotencyKeys)
    .values({ tenantId, key, requestHash, status: null, body: null, createdAt: now })
    .onConflictDoNothing()
    .returning({ key: idempotencyKeys.key });
  if (inserted.length === 1) return { kind: "new" };
  const row: Row | undefined = (await db.select().from(idempotencyKeys).where(keyOf(tenantId, key)).limit(1))[0];
  if (!row) return beginIdempotent(db, tenantId, key, requestHash, now); // deleted in between
  const expired = row.createdAt < now - IDEMPOTENCY_TTL_MS;
  if (!expired && row.requestHash !== requestHash) return { kind: "mismatch" };
  if (!expired && row.status !== null) return { kind: "replay", status: row.status, body: row.body ?? "" };
  if (!expired && row.createdAt >= now - IDEMPOTENCY_LEASE_MS) {
    return { kind: "in_progress", retryAfterS: Math.max(1, Math.ceil((row.createdAt + IDEMPOTENCY_LEASE_MS - now) / 1000)) };
  }
  // Expired, or pending past its lease (the first request died): take it over, unless another retry just did.
  const taken = await db
    .update(idempotencyKeys)
    .set({ requestHash, status: null, body: null, createdAt: now })
    .where(and(keyOf(tenantId, key), eq(idempotencyKeys.createdAt, row.createdAt)))
    .returning({ key: idempotencyKeys.key });
  return taken.length === 1 ? { kind: "new" } : { kind: "in_progress", retryAfterS: 1 };
}

/** The statement that records the result; batch it with the request's own write so both commit together. */
export function finishIdempotentStatement(db: Db, tenantId: string, key: string, status: number, body: string) {
  return db.update(idempotencyKeys).set({ status, body }).where(and(keyOf(tenantId, key), isNull(idempotencyKeys.status)));
}

/** Records a result on its own (refusals: the same request would be refused the same way). */
export async function finishIdempotent(db: Db, tenantId: string, key: string, status: number, body: string): Promise<void> {
  await finishIdempotentStatement(db, tenantId, key, status, body);
}

/** Forgets a pending key (a transient failure: a retry should run the request again). */
export async function releaseIdempotent(db: Db, tenantId: string, key: string): Promise<void> {
  await db.delete(idempotencyKeys).where(and(keyOf(tenantId, key), isNull(idempotencyKeys.status)));
}

/** Deletes keys past their TTL. Returns how many. */
export async function pruneIdempotencyKeys(db: Db, now: number): Promise<number> {
  const rows = await db
    .delete(idempotencyKeys)
    .where(lt(idempotencyKeys.createdAt, now - IDEMPOTENCY_TTL_MS))
    .returning({ key: idempotencyKeys.key });
  return rows.length;
}
