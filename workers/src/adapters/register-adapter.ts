import type { ChatTemplateSpec } from "#core/chat/chat-template";
import type { ModelManifest } from "#core/manifest/model-manifest";
import type { AuthTenant } from "../app-env.js";
import type { Db } from "../db/client.js";
import type { AdapterWithOwner, CommitWith } from "./queries.js";
import { storedNumbers } from "./stored-numbers.js";
import { storeAdapter, type NewAdapter } from "./store.js";
import { validateAdapterFiles } from "./validate.js";

/** PEFT files as received (upload) or produced (bake). */
export interface AdapterFiles {
  /** adapter_config.json parsed. */
  config: unknown;
  /** adapter_config.json as stored and served back. */
  configJson: string;
  /** adapter_model.safetensors. */
  weights: Uint8Array<ArrayBuffer>;
  /** The adapter's own chat template, already validated (upload-form.ts); absent: none. */
  chatTemplate?: ChatTemplateSpec | null;
}

/** What the caller says about the adapter; the rest of the record comes from the files. */
export type AdapterListing = Pick<NewAdapter, "name" | "version" | "baseModel" | "visibility" | "description" | "tags" | "bakeReport">;

/**
 * Every way into the registry (upload, bake) goes through here: the files are validated with
 * core against the base model's manifest (400/422), the record's numbers follow the stored-scale
 * rule (`storedNumbers`), and the blob and row are stored atomically (409 when name@version exists).
 */
export async function registerAdapter(
  db: Db,
  bucket: R2Bucket,
  owner: AuthTenant,
  manifest: ModelManifest,
  maxRank: number,
  listing: AdapterListing,
  files: AdapterFiles,
  commitWith?: (row: AdapterWithOwner) => CommitWith,
): Promise<AdapterWithOwner> {
  const { summary } = validateAdapterFiles(files.config, files.weights, manifest, maxRank);
  return storeAdapter(db, bucket, owner, {
    ...listing,
    ...storedNumbers(summary),
    targets: summary.targets,
    dtype: summary.dtype ?? "unknown",
    configJson: files.configJson,
    weights: files.weights,
    chatTemplate: files.chatTemplate ? JSON.stringify(files.chatTemplate) : null,
  }, commitWith);
}
