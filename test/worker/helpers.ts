// Shared helpers for the worker integration tests: call the worker through its fetch handler.
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import { afterResponseSettled } from "../../workers/src/util/after-response.js";

export const ADMIN = "test-admin-token";
export const EDGE = "http://edge";

export interface CallOptions {
  method?: string;
  key?: string | null;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
}

/**
 * One request through the worker's fetch handler. Returns once the response is there and the
 * work the edge does after a response (usage settlement, use counts: ctx.waitUntil) has finished,
 * as a client's next request would usually find it; `callRaw` does not wait for that work.
 */
export async function call(path: string, opts: CallOptions = {}): Promise<Response> {
  const res = await callRaw(path, opts);
  await afterResponseSettled();
  return res;
}

export async function callRaw(path: string, opts: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  return exports.default.fetch(new Request(EDGE + path, { method: opts.method ?? (body ? "POST" : "GET"), headers, body }));
}

export async function callJson<T = any>(path: string, opts: CallOptions = {}): Promise<{ status: number; body: T; res: Response }> {
  const res = await call(path, opts);
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, res };
}

/** Creates a tenant through the admin API and returns its id and first key. */
export async function newTenant(
  name: string,
  limits: { rpm_limit?: number; tokens_per_day?: number } = {},
): Promise<{ id: string; name: string; key: string }> {
  const { status, body } = await callJson("/v1/tenants", { key: ADMIN, json: { name, ...limits } });
  if (status !== 201) throw new Error(`tenant create failed: ${status} ${JSON.stringify(body)}`);
  return { id: body.id, name: body.name, key: body.api_key.key };
}

export function expectError(r: { status: number; body: any }, status: number, type?: string): void {
  if (r.status !== status || typeof r.body?.error?.message !== "string" || (type && r.body.error.type !== type)) {
    throw new Error(`expected ${status}${type ? ` ${type}` : ""}, got ${r.status} ${JSON.stringify(r.body)}`);
  }
}

/** POST /v1/adapters with a multipart form. */
export async function uploadAdapter(key: string, form: FormData): Promise<{ status: number; body: any; res: Response }> {
  return callJson("/v1/adapters", { key, method: "POST", body: form });
}

/** The keys in the adapter bucket (R2), sorted. */
export async function r2Keys(): Promise<string[]> {
  return (await env.ADAPTERS.list()).objects.map((o) => o.key).sort();
}

/** Rows in a D1 table. */
export async function rowCount(table: string): Promise<number> {
  return (await env.DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<{ n: number }>())!.n;
}

/**
 * Fault injection (a D1 failure cannot be produced for real): every `insert into "adapters"`
 * statement throws until the returned spy is restored (`mockRestore`, or `vi.restoreAllMocks`).
 */
export function failAdapterInserts() {
  const prepare = env.DB.prepare.bind(env.DB);
  return vi.spyOn(env.DB, "prepare").mockImplementation((query: string) => {
    if (/^insert into "adapters"/i.test(query)) throw new Error("D1_ERROR: injected failure");
    return prepare(query);
  });
}
