/**
 * `GET /v1/adapters/acme/pirate@1.0.0[/download]` with a literal slash is accepted as the
 * URL-encoded form `/v1/adapters/acme%2Fpirate@1.0.0[/download]` (the route parameter is one
 * path segment). Only `owner/name@version` (with an @) is rewritten, so `/v1/adapters/:id/download`
 * keeps its meaning.
 */
const RAW_REF = /^\/v1\/adapters\/([^/@]+)\/([^/@]+@[^/@]+)(\/download|\/config)?$/;

export function normalizeAdapterRefPath(request: Request): Request {
  // Most requests name no adapter ref: no URL parse for them (this runs before every route).
  if (!request.url.includes("@")) return request;
  const url = new URL(request.url);
  const m = RAW_REF.exec(url.pathname);
  if (!m) return request;
  url.pathname = `/v1/adapters/${m[1]}%2F${m[2]}${m[3] ?? ""}`;
  return new Request(url.toString(), request);
}
