// Shared helpers for the worker integration tests: call the worker through its fetch handler.
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import type { Env } from "../../workers/src/env.js";
import worker from "../../workers/src/index.js";
import { afterResponseSettled } from "../../workers/src/util/after-response.js";
import { utcDay } from "../../workers/src/util/time.js";

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

/** Starts a test at least 5 s before the UTC minute ends, so its requests count in one minute. */
export async function awayFromMinuteEnd(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 5_000) await new Promise((r) => setTimeout(r, left + 50));
}

/** The tenant's usage row of today, straight from D1. */
export async function today(tenantId: string) {
  const row = await env.DB.prepare(
    "SELECT requests, prompt_tokens AS prompt, completion_tokens AS completion, reserved_tokens AS reserved FROM usage_daily WHERE tenant_id = ? AND day = ?",
  )
    .bind(tenantId, utcDay(Date.now()))
    .first<{ requests: number; prompt: number; completion: number; reserved: number }>();
  return row ?? { requests: 0, prompt: 0, completion: 0, reserved: 0 };
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

/**
 * Fault injection (a failed D1 write, or one applied whose reply was lost, cannot be produced for
 * real): the next `times` D1 batches with a statement whose SQL matches `pattern` throw — `before`
 * they run (nothing applied) or `after` (applied, the reply lost) — until the spies are restored
 * (`vi.restoreAllMocks`). `injected` counts the faults so far.
 */
export function failD1Batches(pattern: RegExp, when: "before" | "after", times = 1): { injected: number } {
  const sqlOf = new WeakMap<D1PreparedStatement, string>();
  const realPrepare = env.DB.prepare.bind(env.DB);
  const realBatch = env.DB.batch.bind(env.DB);
  const tag = (st: D1PreparedStatement, query: string): D1PreparedStatement => {
    sqlOf.set(st, query);
    const bind = st.bind.bind(st);
    st.bind = (...values: unknown[]) => tag(bind(...values), query);
    return st;
  };
  vi.spyOn(env.DB, "prepare").mockImplementation((query: string) => tag(realPrepare(query), query));
  const state = { injected: 0 };
  vi.spyOn(env.DB, "batch").mockImplementation(async (statements) => {
    const hit = state.injected < times && statements.some((st) => pattern.test(sqlOf.get(st) ?? ""));
    if (hit) state.injected++;
    if (hit && when === "before") throw new Error("D1_ERROR: injected failure");
    const results = await realBatch(statements);
    if (hit) throw new Error("D1_ERROR: network connection lost (injected, after the batch was applied)");
    return results;
  });
  return state;
}
