import { forgetCachedAdapters } from "./visible-adapter-cache.js";
import type { TenantScope } from "../app-env.js";
import { badRequest, conflict, serviceUnavailable, unprocessable } from "../errors/api-error.js";
import { uploadLimits } from "../limits/config.js";
import { log } from "../logging/log.js";
import { findManifest } from "../runners/catalog.js";
import { deleteBlobIfUnreferenced } from "./blob-store.js";
import { decodeCursor, encodeCursor } from "./cursor.js";
import {
  compositionsUsing,
  deleteAdapterRow,
  incrementDownloads,
  listAdapters,
  updateAdapter,
  type AdapterSort,
  type AdapterWithOwner,
  type CommitWith,
} from "./queries.js";
import { encodeTags, parseTags } from "./refs.js";
import { registerAdapter } from "./register-adapter.js";
import { resolveAdapter, resolveOwnAdapter } from "./resolve.js";
import { readUploadForm, type UploadForm } from "./upload-form.js";

/** The registry's rules per operation; the routes in routes/adapters.ts only wire these to HTTP. */

/** POST /v1/adapters: reads the multipart form, checks the base model is served, registers the files. */
export async function uploadAdapter(s: TenantScope, request: Request): Promise<AdapterWithOwner> {
  return registerUploadForm(s, await readUploadForm(request, uploadLimits(s.env).maxBytes));
}

/** Registers a parsed upload form; `commitWith` as in storeAdapter. */
export async function registerUploadForm(
  s: TenantScope,
  form: UploadForm,
  commitWith?: (row: AdapterWithOwner) => CommitWith,
): Promise<AdapterWithOwner> {
  const limits = uploadLimits(s.env);
  const manifest = await findManifest(s.env, s.db, form.baseModel);
  if (!manifest) throw unprocessable(`unknown base_model '${form.baseModel}': no runner serves it (see GET /v1/models)`);
  return registerAdapter(
    s.db,
    s.env.ADAPTERS,
    s.tenant,
    manifest,
    limits.maxRank,
    {
      name: form.name,
      version: form.version,
      baseModel: form.baseModel,
      visibility: form.visibility,
      description: form.description,
      tags: form.tags,
    },
    { config: form.config, configJson: form.configText, weights: form.weights, chatTemplate: form.chatTemplate },
    commitWith,
  );
}

export interface BrowseQuery {
  q?: string;
  base_model?: string;
  tag?: string;
  owner?: "me";
  visibility?: "private" | "public";
  sort: AdapterSort;
  limit: number;
  cursor?: string;
}

/** One page of the public adapters plus the caller's private ones, with the next page's cursor. */
export async function browseAdapters(s: TenantScope, q: BrowseQuery): Promise<{ rows: AdapterWithOwner[]; nextCursor: string | null }> {
  const { rows, next } = await listAdapters(s.db, {
    tenantId: s.tenant.id,
    q: q.q || undefined,
    baseModel: q.base_model,
    tag: q.tag,
    ownerMe: q.owner === "me",
    visibility: q.visibility,
    sort: q.sort,
    limit: q.limit,
    after: q.cursor ? decodeCursor(q.sort, q.cursor) : undefined,
  });
  return { rows, nextCursor: next ? encodeCursor(q.sort, next) : null };
}

/** The weights blob of a visible adapter; counts a download. 503 when the blob is missing. */
export async function downloadAdapter(s: TenantScope, id: string): Promise<{ row: AdapterWithOwner; blob: R2ObjectBody }> {
  const row = await resolveAdapter(s.db, s.tenant.id, id);
  const blob = await s.env.ADAPTERS.get(row.r2Key);
  if (!blob) throw serviceUnavailable(`blob of adapter '${row.id}' is missing from storage`);
  await incrementDownloads(s.db, row.id);
  return { row, blob };
}

export interface AdapterPatch {
  visibility?: "private" | "public";
  description?: string;
  /** A list or a comma-separated string. */
  tags?: string[] | string;
}

/** Changes the listing of one of the caller's adapters (403 on another's; the files are immutable). */
export async function patchAdapter(s: TenantScope, id: string, patch: AdapterPatch): Promise<AdapterWithOwner> {
  const row = await resolveOwnAdapter(s.db, s.tenant.id, id);
  const set: Parameters<typeof updateAdapter>[2] = {};
  if (patch.visibility !== undefined) set.visibility = patch.visibility;
  if (patch.description !== undefined) set.description = patch.description;
  if (patch.tags !== undefined) {
    try {
      set.tags = encodeTags(parseTags(Array.isArray(patch.tags) ? patch.tags.join(",") : patch.tags));
    } catch (e) {
      throw badRequest((e as Error).message);
    }
  }
  await updateAdapter(s.db, row.id, set);
  forgetCachedAdapters(); // visibility decides who may run it
  return { ...row, ...set };
}

/**
 * Deletes one of the caller's adapters. Other tenants' data is never deleted on their behalf: an
 * adapter they compose stays (409; make it private to stop new uses). `force` deletes only the
 * caller's own compositions using it; without it those are a 409 too. Returns the deleted
 * compositions' ids.
 */
export async function deleteAdapter(s: TenantScope, id: string, force: boolean): Promise<{ row: AdapterWithOwner; deletedCompositions: string[] }> {
  const row = await resolveOwnAdapter(s.db, s.tenant.id, id);
  const using = await compositionsUsing(s.db, row.id, s.tenant.id);
  if (using.others > 0) {
    throw conflict("adapter is used by saved compositions of other tenants and cannot be deleted; set its visibility to private to stop new uses");
  }
  if (using.own.length && !force) {
    throw conflict(`adapter is used by ${using.own.length} of your saved composition(s); delete them first or pass ?force=true`);
  }
  await deleteAdapterRow(s.db, row.id, using.own);
  forgetCachedAdapters();
  try {
    await deleteBlobIfUnreferenced(s.db, s.env.ADAPTERS, row.sha256);
  } catch (e) {
    // The adapter is gone (its row committed); an undeleted blob is invisible garbage, not a failed delete.
    log("error", "orphan blob left after adapter delete", {
      request_id: s.requestId,
      sha256: row.sha256,
      error: e instanceof Error ? e.message : String(e),
    });
  }
  return { row, deletedCompositions: using.own };
}
