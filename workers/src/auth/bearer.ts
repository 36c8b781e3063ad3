import { unauthorized } from "../errors/api-error.js";

/** The token of an `Authorization: Bearer <token>` header; 401 when missing or malformed. */
export function bearerToken(header: string | undefined): string {
  if (!header) throw unauthorized("missing Authorization header (expected `Bearer <api key>`)");
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw unauthorized("malformed Authorization header (expected `Bearer <api key>`)");
  return m[1]!;
}
