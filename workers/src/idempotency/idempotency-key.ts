import { badRequest } from "../errors/api-error.js";

export const IDEMPOTENCY_HEADER = "Idempotency-Key";
/** Set on a response that repeats the first result of its Idempotency-Key. */
export const IDEMPOTENT_REPLAYED_HEADER = "idempotent-replayed";
const KEY_RE = /^[\x21-\x7e]{1,255}$/;

/** The request's Idempotency-Key (1–255 visible ASCII characters), null when absent; 400 when malformed. */
export function idempotencyKeyOf(headers: Headers): string | null {
  const key = headers.get(IDEMPOTENCY_HEADER);
  if (key === null) return null;
  if (!KEY_RE.test(key)) throw badRequest(`${IDEMPOTENCY_HEADER} must be 1-255 visible ASCII characters`);
  return key;
}
