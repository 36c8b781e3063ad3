// Shared helpers for the worker integration tests: call the worker through its fetch handler.
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import type { Env } from "../../workers/src/env.js";
import worker from "../../workers/src/index.js";
import { afterResponseSettled } from "../../workers/src/util/after-response.js";

export const ADMIN = "test-admin-token";
export const EDGE = "http://edge";

/**
 * Leased limits as deployed (the test pool reserves per request: vitest.config.ts), pass as a
 * call's `vars`: blocks of 100 tokens and 8 request slots (each also ≤ 1/16 of the tenant's
 * limits), usage written 1 s after the first unwritten request.
 */
export const LEASED = { BUDGET_LEASE_TOKENS: "100", RATE_LEASE_REQUESTS: "8", USAGE_FLUSH_MS: "1000" };

export interface CallOptions {
  method?: string;
  key?: string | null;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Worker vars that differ from the test pool's (vitest.config.ts) for this request. */
  vars?: Partial<Record<keyof Env, string>>;
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
  const request = new Request(EDGE + path, { method: opts.method ?? (body ? "POST" : "GET"), headers, body });
  if (opts.vars) return worker.fetch(request, { ...env, ...opts.vars } as Env, createExecutionContext());
  return exports.default.fetch(request);
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

/**
 * Counts D1 round trips until the spies are restored (`vi.restoreAllMocks`): each batch as
 * `batch of N`, each statement run on its own as its SQL. A batch for which `hold(statements)` is
 * true waits until it turns false (polled in the worker's own request context: workerd allows no
 * I/O across contexts).
 */
export function countD1Trips(hold: (statements: D1PreparedStatement[]) => boolean = () => false): string[] {
  const trips: string[] = [];
  const realPrepare = env.DB.prepare.bind(env.DB);
  const realBatch = env.DB.batch.bind(env.DB);
  const wrap = (st: D1PreparedStatement, query: string): D1PreparedStatement => {
    const bind = st.bind.bind(st);
    for (const m of ["first", "all", "run", "raw"] as const) {
      const f = (st[m] as (...a: unknown[]) => unknown).bind(st);
      (st as any)[m] = (...args: unknown[]) => {
        trips.push(query);
        return f(...args);
      };
    }
    st.bind = (...values: unknown[]) => wrap(bind(...values), query);
    return st;
  };
  vi.spyOn(env.DB, "prepare").mockImplementation((query: string) => wrap(realPrepare(query), query));
  vi.spyOn(env.DB, "batch").mockImplementation(async (statements) => {
    trips.push(`batch of ${statements.length}`);
    while (hold(statements)) await new Promise((r) => setTimeout(r, 1));
    return realBatch(statements);
  });
  return trips;
}
