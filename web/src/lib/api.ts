import { LoraedgeClient, LoraedgeError } from "../../../client/src/index.js";
import { getApiKey, signOut } from "./session.js";

export { LoraedgeError };
export type * from "../../../client/src/index.js";

/** The public API client for the signed-in key, on this page's origin (the edge serves the app). */
export function api(): LoraedgeClient {
  return new LoraedgeClient({ baseUrl: location.origin, apiKey: getApiKey() ?? undefined });
}

/** A readable message for any failure; a 401 (key revoked elsewhere) signs the page out. */
export function errorMessage(e: unknown): string {
  if (e instanceof LoraedgeError) {
    if (e.status === 401) signOut();
    return `${e.message}${e.status ? ` (HTTP ${e.status}${e.type ? `, ${e.type}` : ""})` : ""}`;
  }
  if ((e as Error)?.name === "AbortError") return "stopped";
  return e instanceof Error ? e.message : String(e);
}
