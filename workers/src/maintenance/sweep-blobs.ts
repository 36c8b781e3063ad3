import { inArray } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { adapters } from "../db/schema.js";
import { BLOB_PREFIX } from "../adapters/blob-store.js";

export interface SweepReport {
  /** Blobs listed under the adapter prefix. */
  scanned: number;
  /** Keys of the orphan blobs deleted. */
  deleted: string[];
}

/** D1 allows at most 100 bound parameters per statement. */
const IN_CHUNK = 90;

const shaOfKey = (key: string) => /^adapters\/sha256\/([0-9a-f]{64})\.safetensors$/.exec(key)?.[1] ?? null;

/**
 * Deletes R2 adapter blobs that no D1 row references and that were last written more than
 * `graceMs` ago (a crash between the R2 put and the D1 insert leaves such a blob; the grace
 * keeps uploads in flight safe, since every upload re-puts its blob, refreshing `uploaded`).
 * Each candidate is checked against D1 and re-read (head) just before its deletion, so a blob
 * re-uploaded meanwhile is kept. Cost: one R2 list per 1000 blobs, one D1 query per 90 old blobs.
 */
export async function sweepOrphanBlobs(db: Db, bucket: R2Bucket, opts: { graceMs: number; now?: number }): Promise<SweepReport> {
  const now = opts.now ?? Date.now();
  const cutoff = now - opts.graceMs;
  const old: { key: string; sha256: string }[] = [];
  let scanned = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: BLOB_PREFIX, cursor, limit: 1000 });
    for (const o of page.objects) {
      scanned++;
      const sha256 = shaOfKey(o.key);
      if (sha256 && o.uploaded.getTime() < cutoff) old.push({ key: o.key, sha256 });
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);

  const deleted: string[] = [];
  for (let i = 0; i < old.length; i += IN_CHUNK) {
    const chunk = old.slice(i, i + IN_CHUNK);
    const referenced = new Set(
      (
        await db
          .selectDistinct({ sha256: adapters.sha256 })
          .from(adapters)
          .where(
            inArray(
              adapters.sha256,
              chunk.map((c) => c.sha256),
            ),
          )
      ).map((r) => r.sha256),
    );
    for (const c of chunk) {
      if (referenced.has(c.sha256)) continue;
      const head = await bucket.head(c.key);
      if (!head || head.uploaded.getTime() >= cutoff) continue;
      await bucket.delete(c.key);
      deleted.push(c.key);
    }
  }
  return { scanned, deleted };
}
