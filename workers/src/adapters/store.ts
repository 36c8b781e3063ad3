import { forgetCachedAdapters } from "./visible-adapter-cache.js";
import type { AuthTenant } from "../app-env.js";
import type { Db } from "../db/client.js";
import { conflict, serviceUnavailable } from "../errors/api-error.js";
import { log } from "../logging/log.js";
import { newId, sha256Hex } from "../util/crypto.js";
import { deleteBlobIfUnreferenced, putBlob } from "./blob-store.js";
import { adapterVersionExists, insertAdapter, type AdapterRow, type AdapterWithOwner, type CommitWith } from "./queries.js";
import { encodeTags } from "./refs.js";

export interface NewAdapter {
  name: string;
  version: string;
  baseModel: string;
  visibility: "private" | "public";
  description: string;
  tags: string[];
  rank: number;
  alpha: number;
  scale: number;
  targets: string[];
  dtype: string;
  configJson: string;
  weights: Uint8Array<ArrayBuffer>;
  /** JSON of a baked adapter's report (null for uploads). */
  bakeReport?: string | null;
  /** JSON of the adapter's own chat template (core's ChatTemplateSpec), validated; null/absent: none. */
  chatTemplate?: string | null;
}

const isUniqueViolation = (e: unknown) => /UNIQUE constraint failed/i.test(String((e as Error)?.message ?? e) + String((e as { cause?: unknown })?.cause ?? ""));

/**
 * Stores an adapter atomically: blob into R2 under its content address first, the D1 row
 * last. If the row insert fails, the blob is deleted again unless another row references the
 * same bytes; if the R2 put fails, no row is written. 409 when name@version exists.
 * `commitWith(row)`: a statement committed in the same D1 transaction as the row (e.g. the
 * upload's idempotency record), so a crash can never leave one without the other.
 */
export async function storeAdapter(
  db: Db,
  bucket: R2Bucket,
  owner: AuthTenant,
  input: NewAdapter,
  commitWith?: (row: AdapterWithOwner) => CommitWith,
): Promise<AdapterWithOwner> {
  if (await adapterVersionExists(db, owner.id, input.name, input.version)) {
    throw conflict(`adapter ${owner.name}/${input.name}@${input.version} already exists (versions are immutable)`);
  }
  const sha256 = await sha256Hex(input.weights);
  let r2Key: string;
  try {
    r2Key = await putBlob(bucket, sha256, input.weights);
  } catch (e) {
    log("error", "R2 put failed", { sha256, error: e instanceof Error ? e.message : String(e) });
    throw serviceUnavailable("adapter storage is unavailable; nothing was stored", 5);
  }
  const row: AdapterRow = {
    id: newId("ad"),
    ownerId: owner.id,
    name: input.name,
    version: input.version,
    baseModel: input.baseModel,
    rank: input.rank,
    alpha: input.alpha,
    scale: input.scale,
    targets: JSON.stringify(input.targets),
    dtype: input.dtype,
    sizeBytes: input.weights.byteLength,
    sha256,
    r2Key,
    configJson: input.configJson,
    visibility: input.visibility,
    description: input.description,
    tags: encodeTags(input.tags),
    downloads: 0,
    uses: 0,
    createdAt: Date.now(),
    bakeReport: input.bakeReport ?? null,
    chatTemplate: input.chatTemplate ?? null,
  };
  const { chatTemplate, ...listed } = row;
  const stored: AdapterWithOwner = { ...listed, ownerName: owner.name, hasChatTemplate: chatTemplate !== null };
  try {
    await insertAdapter(db, row, commitWith?.(stored));
    forgetCachedAdapters(); // `owner/name` (latest) now means this upload
  } catch (e) {
    try {
      await deleteBlobIfUnreferenced(db, bucket, sha256);
    } catch (cleanup) {
      log("error", "orphan blob clean-up failed", { sha256, error: cleanup instanceof Error ? cleanup.message : String(cleanup) });
    }
    if (isUniqueViolation(e)) {
      throw conflict(`adapter ${owner.name}/${input.name}@${input.version} already exists (versions are immutable)`);
    }
    log("error", "D1 insert failed", { sha256, error: e instanceof Error ? e.message : String(e) });
    throw serviceUnavailable("adapter registry is unavailable; nothing was stored", 5);
  }
  return stored;
}
