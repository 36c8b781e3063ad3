import type { TenantScope } from "../app-env.js";
import { ApiError, unprocessable } from "../errors/api-error.js";
import { idempotencyKeyOf, IDEMPOTENCY_HEADER } from "../idempotency/idempotency-key.js";
import { beginIdempotent, finishIdempotent, finishIdempotentStatement, releaseIdempotent } from "../idempotency/queries.js";
import { uploadLimits } from "../limits/config.js";
import { log } from "../logging/log.js";
import { sha256Hex } from "../util/crypto.js";
import { registerUploadForm } from "./adapter-service.js";
import { adapterJson } from "./record.js";
import { readUploadForm, type UploadForm } from "./upload-form.js";

/** The answer to an upload: status and JSON body text; `replayed` when it repeats an earlier request's. */
export interface UploadOutcome {
  status: number;
  body: string;
  replayed: boolean;
}

/** What makes two uploads "the same request": every field and the sha256 of both files (not the multipart framing). */
async function uploadFingerprint(form: UploadForm): Promise<string> {
  const { weights, config: _parsed, configText, ...fields } = form;
  return sha256Hex(JSON.stringify({ ...fields, config: await sha256Hex(configText), weights: await sha256Hex(weights) }));
}

/**
 * POST /v1/adapters with an optional `Idempotency-Key` header (per tenant, kept 24 h):
 * - first use: the upload runs; its result is recorded in the same D1 transaction as the
 *   adapter row (201), or on its own for a refusal (4xx); a 5xx forgets the key (retry runs again);
 * - a retry with the same key and the same request: the first result, same status and body;
 * - the same key with a different request: 422; while the first is still running: 409 +
 *   Retry-After (a first request that died is taken over after IDEMPOTENCY_LEASE_MS).
 */
export async function uploadAdapterOnce(s: TenantScope, request: Request): Promise<UploadOutcome> {
  const key = idempotencyKeyOf(request.headers);
  const form = await readUploadForm(request, uploadLimits(s.env).maxBytes);
  if (key === null) {
    return { status: 201, body: JSON.stringify(adapterJson(await registerUploadForm(s, form))), replayed: false };
  }
  const begun = await beginIdempotent(s.db, s.tenant.id, key, await uploadFingerprint(form));
  if (begun.kind === "replay") return { status: begun.status, body: begun.body, replayed: true };
  if (begun.kind === "mismatch") throw unprocessable(`this ${IDEMPOTENCY_HEADER} was used for a different upload; use a new key`);
  if (begun.kind === "in_progress") {
    throw new ApiError("conflict_error", `an upload with this ${IDEMPOTENCY_HEADER} is still in progress; retry later`, {
      "retry-after": String(begun.retryAfterS),
    });
  }
  try {
    const row = await registerUploadForm(s, form, (stored) =>
      finishIdempotentStatement(s.db, s.tenant.id, key, 201, JSON.stringify(adapterJson(stored))),
    );
    return { status: 201, body: JSON.stringify(adapterJson(row)), replayed: false };
  } catch (e) {
    try {
      if (e instanceof ApiError && e.status < 500) await finishIdempotent(s.db, s.tenant.id, key, e.status, JSON.stringify(e.body()));
      else await releaseIdempotent(s.db, s.tenant.id, key);
    } catch (record) {
      log("error", "idempotency record failed", { request_id: s.requestId, error: record instanceof Error ? record.message : String(record) });
    }
    throw e;
  }
}
