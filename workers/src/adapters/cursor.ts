import { badRequest } from "../errors/api-error.js";

/** Opaque pagination cursor: base64url(JSON [sort, sortValue, id]). Bound to the sort it was made for. */
export function encodeCursor(sort: string, key: [string | number, string]): string {
  return btoa(JSON.stringify([sort, ...key]))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

export function decodeCursor(sort: string, cursor: string): [string | number, string] {
  try {
    const b64 = cursor.replace(/-/g, "+").replace(/_/g, "/");
    const v = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4))) as unknown;
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      v[0] === sort &&
      (typeof v[1] === "string" || typeof v[1] === "number") &&
      typeof v[2] === "string"
    ) {
      return [v[1], v[2]];
    }
  } catch {
    // fall through
  }
  throw badRequest("invalid cursor (it must come from a previous page with the same sort)");
}
