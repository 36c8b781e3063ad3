import { and, asc, desc, eq } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { adapters, compositionAdapters, compositions, tenants } from "../db/schema.js";
import { newId } from "../util/crypto.js";

export type CompositionRow = typeof compositions.$inferSelect;

export interface CompositionEntry {
  adapterId: string;
  /** `owner/name@version` */
  ref: string;
  weight: number;
}

export interface CompositionWithEntries extends CompositionRow {
  entries: CompositionEntry[];
}

/** Inserts the composition and its entries in one D1 batch (all or nothing). */
export async function insertComposition(
  db: Db,
  input: { ownerId: string; name: string; baseModel: string; entries: { adapterId: string; weight: number }[] },
): Promise<CompositionRow> {
  const row: CompositionRow = { id: newId("cmp"), ownerId: input.ownerId, name: input.name, baseModel: input.baseModel, createdAt: Date.now() };
  const inserts = input.entries.map((e, position) =>
    db.insert(compositionAdapters).values({ compositionId: row.id, position, adapterId: e.adapterId, weight: e.weight }),
  );
  await db.batch([db.insert(compositions).values(row), ...inserts]);
  return row;
}

export async function compositionNameExists(db: Db, ownerId: string, name: string): Promise<boolean> {
  const rows = await db
    .select({ id: compositions.id })
    .from(compositions)
    .where(and(eq(compositions.ownerId, ownerId), eq(compositions.name, name)))
    .limit(1);
  return rows.length > 0;
}

async function entriesOf(db: Db, compositionId: string): Promise<CompositionEntry[]> {
  const rows = await db
    .select({
      adapterId: compositionAdapters.adapterId,
      weight: compositionAdapters.weight,
      owner: tenants.name,
      name: adapters.name,
      version: adapters.version,
    })
    .from(compositionAdapters)
    .innerJoin(adapters, eq(compositionAdapters.adapterId, adapters.id))
    .innerJoin(tenants, eq(adapters.ownerId, tenants.id))
    .where(eq(compositionAdapters.compositionId, compositionId))
    .orderBy(asc(compositionAdapters.position));
  return rows.map((r) => ({ adapterId: r.adapterId, weight: r.weight, ref: `${r.owner}/${r.name}@${r.version}` }));
}

/** The tenant's own composition (by id or name), with entries; null otherwise. */
export async function findOwnComposition(db: Db, ownerId: string, idOrName: string): Promise<CompositionWithEntries | null> {
  const byId = await db
    .select()
    .from(compositions)
    .where(and(eq(compositions.ownerId, ownerId), eq(compositions.id, idOrName)))
    .limit(1);
  const row =
    byId[0] ??
    (
      await db
        .select()
        .from(compositions)
        .where(and(eq(compositions.ownerId, ownerId), eq(compositions.name, idOrName)))
        .limit(1)
    )[0];
  if (!row) return null;
  return { ...row, entries: await entriesOf(db, row.id) };
}

export async function listOwnCompositions(db: Db, ownerId: string): Promise<CompositionWithEntries[]> {
  const rows = await db.select().from(compositions).where(eq(compositions.ownerId, ownerId)).orderBy(desc(compositions.createdAt));
  return Promise.all(rows.map(async (r) => ({ ...r, entries: await entriesOf(db, r.id) })));
}

export async function deleteComposition(db: Db, id: string): Promise<void> {
  await db.delete(compositions).where(eq(compositions.id, id));
}
