import type { BatchItem } from "drizzle-orm/batch";
import { and, asc, desc, eq, gt, inArray, lt, or, sql, type SQL, type SQLWrapper } from "drizzle-orm";
import { chatTemplateSpecSchema } from "#core/chat/adapter-chat-template";
import type { ChatTemplateSpec } from "#core/chat/chat-template";
import type { Db } from "../db/client.js";
import { adapters, compositionAdapters, compositions, tenants } from "../db/schema.js";
import type { AdapterRef } from "./refs.js";

export type AdapterRow = typeof adapters.$inferSelect;
/**
 * An adapter row plus its owner's tenant name; the chat template's text is left in D1 (read only
 * by `findChatTemplate` for a chat request), only whether there is one comes along.
 */
export type AdapterWithOwner = Omit<AdapterRow, "chatTemplate"> & { ownerName: string; hasChatTemplate: boolean };

const withOwner = { ...getColumns(), ownerName: tenants.name };

function getColumns() {
  return {
    id: adapters.id,
    ownerId: adapters.ownerId,
    name: adapters.name,
    version: adapters.version,
    baseModel: adapters.baseModel,
    rank: adapters.rank,
    alpha: adapters.alpha,
    scale: adapters.scale,
    targets: adapters.targets,
    dtype: adapters.dtype,
    sizeBytes: adapters.sizeBytes,
    sha256: adapters.sha256,
    r2Key: adapters.r2Key,
    configJson: adapters.configJson,
    visibility: adapters.visibility,
    description: adapters.description,
    tags: adapters.tags,
    downloads: adapters.downloads,
    uses: adapters.uses,
    createdAt: adapters.createdAt,
    bakeReport: adapters.bakeReport,
    hasChatTemplate: sql<number>`(${adapters.chatTemplate} IS NOT NULL)`.mapWith((v: unknown) => Boolean(v)),
  };
}

/** Rows the tenant may see: public ones and its own. */
const visibleTo = (tenantId: string) => or(eq(adapters.visibility, "public"), eq(adapters.ownerId, tenantId))!;

/** A statement committed in the same D1 batch (transaction) as an adapter row. */
export type CommitWith = BatchItem<"sqlite">;

/** Inserts the row; with `also`, in one D1 batch with it (both commit or neither). */
export async function insertAdapter(db: Db, row: AdapterRow, also?: CommitWith): Promise<void> {
  if (also) await db.batch([db.insert(adapters).values(row), also]);
  else await db.insert(adapters).values(row);
}

export async function adapterVersionExists(db: Db, ownerId: string, name: string, version: string): Promise<boolean> {
  const rows = await db
    .select({ id: adapters.id })
    .from(adapters)
    .where(and(eq(adapters.ownerId, ownerId), eq(adapters.name, name), eq(adapters.version, version)))
    .limit(1);
  return rows.length > 0;
}

/** Any adapter by id, regardless of visibility (internal use: runner fetches). */
export async function findAdapterById(db: Db, id: string): Promise<AdapterRow | null> {
  const rows = await db.select().from(adapters).where(eq(adapters.id, id)).limit(1);
  return rows[0] ?? null;
}

/**
 * The stored chat template of an adapter, or null when it has none. Written by upload-form.ts
 * after validation: a row that does not read back is a server fault (throws → 500).
 */
export async function findChatTemplate(db: Db, id: string): Promise<ChatTemplateSpec | null> {
  const rows = await db.select({ chatTemplate: adapters.chatTemplate }).from(adapters).where(eq(adapters.id, id)).limit(1);
  const stored = rows[0]?.chatTemplate ?? null;
  return stored === null ? null : chatTemplateSpecSchema.parse(JSON.parse(stored));
}

/** An adapter by id, only when visible to the tenant. */
export async function findVisibleAdapter(db: Db, tenantId: string, id: string): Promise<AdapterWithOwner | null> {
  const rows = await db
    .select(withOwner)
    .from(adapters)
    .innerJoin(tenants, eq(adapters.ownerId, tenants.id))
    .where(and(eq(adapters.id, id), visibleTo(tenantId)))
    .limit(1);
  return rows[0] ?? null;
}

/** An adapter by `owner/name@version` (latest upload when version is null), only when visible. */
export async function findVisibleAdapterByRef(db: Db, tenantId: string, ref: AdapterRef): Promise<AdapterWithOwner | null> {
  const conds = [eq(tenants.name, ref.owner), eq(adapters.name, ref.name), visibleTo(tenantId)];
  if (ref.version !== null) conds.push(eq(adapters.version, ref.version));
  const rows = await db
    .select(withOwner)
    .from(adapters)
    .innerJoin(tenants, eq(adapters.ownerId, tenants.id))
    .where(and(...conds))
    // Latest = last inserted: SQLite's rowid breaks a tie between uploads in the same millisecond
    // (ids are random, so ordering by id would pick either).
    .orderBy(desc(adapters.createdAt), desc(sql`${adapters}.rowid`))
    .limit(1);
  return rows[0] ?? null;
}

export type AdapterSort = "downloads" | "uses" | "recent" | "name";

export interface ListAdaptersQuery {
  tenantId: string;
  q?: string;
  baseModel?: string;
  /** Only adapters for one of these base models (an empty list matches none). */
  baseModelIn?: readonly string[];
  tag?: string;
  ownerMe?: boolean;
  visibility?: "private" | "public";
  sort: AdapterSort;
  limit: number;
  /** Keyset cursor from a previous page: [sort value, id]. */
  after?: [string | number, string];
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (ch) => `\\${ch}`);
const likeEscaped = (col: SQLWrapper, pattern: string) => sql`${col} LIKE ${pattern} ESCAPE '\\'`;

/** Keyset sort columns: (primary, id) in the page order. */
function sortSpec(sort: AdapterSort) {
  switch (sort) {
    case "downloads":
      return { col: adapters.downloads, dir: "desc" as const };
    case "uses":
      return { col: adapters.uses, dir: "desc" as const };
    case "recent":
      return { col: adapters.createdAt, dir: "desc" as const };
    case "name":
      return { col: adapters.name, dir: "asc" as const };
  }
}

function sortValue(sort: AdapterSort, row: AdapterWithOwner): string | number {
  switch (sort) {
    case "downloads":
      return row.downloads;
    case "uses":
      return row.uses;
    case "recent":
      return row.createdAt;
    case "name":
      return row.name;
  }
}

/** One page of the catalogue visible to the tenant, plus the keyset of its last row when more follow. */
export async function listAdapters(
  db: Db,
  query: ListAdaptersQuery,
): Promise<{ rows: AdapterWithOwner[]; next: [string | number, string] | null }> {
  const conds: SQL[] = [visibleTo(query.tenantId)];
  if (query.ownerMe) conds.push(eq(adapters.ownerId, query.tenantId));
  if (query.baseModel) conds.push(eq(adapters.baseModel, query.baseModel));
  if (query.baseModelIn) {
    if (query.baseModelIn.length === 0) return { rows: [], next: null };
    conds.push(inArray(adapters.baseModel, [...query.baseModelIn]));
  }
  if (query.visibility) conds.push(eq(adapters.visibility, query.visibility));
  if (query.tag) conds.push(likeEscaped(adapters.tags, `%,${escapeLike(query.tag.toLowerCase())},%`));
  if (query.q) {
    const p = `%${escapeLike(query.q)}%`;
    conds.push(or(likeEscaped(adapters.name, p), likeEscaped(adapters.description, p), likeEscaped(adapters.tags, p))!);
  }
  const { col, dir } = sortSpec(query.sort);
  if (query.after) {
    const [v, id] = query.after;
    const cmp = dir === "desc" ? lt : gt;
    // `as never`: `col` is one of three columns (number or string); the cursor's value was read
    // from that same column (cursor.ts), but drizzle's types cannot tie the union to the value.
    conds.push(or(cmp(col, v as never), and(eq(col, v as never), cmp(adapters.id, id)))!);
  }
  const order = dir === "desc" ? [desc(col), desc(adapters.id)] : [asc(col), asc(adapters.id)];
  const rows = await db
    .select(withOwner)
    .from(adapters)
    .innerJoin(tenants, eq(adapters.ownerId, tenants.id))
    .where(and(...conds))
    .orderBy(...order)
    .limit(query.limit + 1);
  const more = rows.length > query.limit;
  const page = more ? rows.slice(0, query.limit) : rows;
  const last = page[page.length - 1];
  const next: [string | number, string] | null =
    more && last
      ? [sortValue(query.sort, last), last.id]
      : null;
  return { rows: page, next };
}

export async function incrementDownloads(db: Db, id: string): Promise<void> {
  await db
    .update(adapters)
    .set({ downloads: sql`${adapters.downloads} + 1` })
    .where(eq(adapters.id, id));
}

/** +`by` uses (default 1: one served mix) for each adapter listed (one UPDATE; an id listed twice counts once) when `onlyIf` holds, unsent (for a batch); null for none. */
export function usesIncrement(db: Db, ids: readonly string[], by = 1, onlyIf?: SQL) {
  const distinct = [...new Set(ids)];
  if (distinct.length === 0) return null;
  return db
    .update(adapters)
    .set({ uses: sql`${adapters.uses} + ${by}` })
    .where(and(inArray(adapters.id, distinct), onlyIf));
}

export async function updateAdapter(
  db: Db,
  id: string,
  set: Partial<Pick<AdapterRow, "visibility" | "description" | "tags">>,
): Promise<void> {
  if (Object.keys(set).length) await db.update(adapters).set(set).where(eq(adapters.id, id));
}

/** Compositions (any owner) whose mix uses the adapter, split into the caller's and other tenants'. */
export async function compositionsUsing(db: Db, adapterId: string, tenantId: string): Promise<{ own: string[]; others: number }> {
  const rows = await db
    .selectDistinct({ id: compositionAdapters.compositionId, ownerId: compositions.ownerId })
    .from(compositionAdapters)
    .innerJoin(compositions, eq(compositions.id, compositionAdapters.compositionId))
    .where(eq(compositionAdapters.adapterId, adapterId));
  return { own: rows.filter((r) => r.ownerId === tenantId).map((r) => r.id), others: rows.filter((r) => r.ownerId !== tenantId).length };
}

/** Deletes the adapter row and (when given) the compositions that use it, in one D1 batch. */
export async function deleteAdapterRow(db: Db, id: string, compositionIds: string[]): Promise<void> {
  const delRow = db.delete(adapters).where(eq(adapters.id, id));
  if (compositionIds.length) {
    await db.batch([db.delete(compositions).where(inArray(compositions.id, compositionIds)), delRow]);
  } else {
    await delRow;
  }
}
