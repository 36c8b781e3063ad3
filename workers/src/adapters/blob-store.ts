import { eq } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { adapters } from "../db/schema.js";

/** R2 prefix of every adapter blob. */
export const BLOB_PREFIX = "adapters/sha256/";
/** Content-addressed R2 key of an adapter_model.safetensors blob. */
export const blobKey = (sha256: string) => `${BLOB_PREFIX}${sha256}.safetensors`;

/** Stores the blob under its content address (idempotent: same bytes, same key). */
export async function putBlob(bucket: R2Bucket, sha256: string, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const key = blobKey(sha256);
  await bucket.put(key, bytes, {
    httpMetadata: { contentType: "application/octet-stream" },
    customMetadata: { sha256 },
    sha256,
  });
  return key;
}

/** How many adapter rows point at this blob. */
export async function blobReferences(db: Db, sha256: string): Promise<number> {
  const rows = await db.select({ id: adapters.id }).from(adapters).where(eq(adapters.sha256, sha256)).limit(1);
  return rows.length;
}

/**
 * Deletes the blob unless an adapter row still references it. Returns whether it was deleted.
 * Known narrow race (documented in workers/README.md): a failed upload's clean-up can delete
 * the blob just as a concurrent upload of identical bytes commits its row; that row's blob
 * then reads as missing (503 on download) until the same bytes are uploaded again.
 */
export async function deleteBlobIfUnreferenced(db: Db, bucket: R2Bucket, sha256: string): Promise<boolean> {
  if ((await blobReferences(db, sha256)) > 0) return false;
  await bucket.delete(blobKey(sha256));
  return true;
}
