import { signRequest } from "#core/wire/hmac";

export interface SignedFetchInit {
  method: "GET" | "POST" | "DELETE";
  body?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A request to a runner, HMAC-signed over method, path+query and body (core/src/wire/hmac.ts). */
export async function signedFetch(secret: string, baseUrl: string, pathAndQuery: string, init: SignedFetchInit): Promise<Response> {
  const sig = await signRequest(secret, { method: init.method, pathAndQuery, body: init.body });
  const headers: Record<string, string> = { ...(init.headers ?? {}), ...sig };
  if (init.body !== undefined) headers["content-type"] ??= "application/json";
  return fetch(baseUrl + pathAndQuery, { method: init.method, body: init.body, headers, signal: init.signal });
}
