import type { TimingVariables } from "hono/timing";
import type { Db } from "./db/client.js";
import type { Env } from "./env.js";

/** The authenticated tenant of a /v1 request. */
export interface AuthTenant {
  id: string;
  name: string;
  rpmLimit: number | null;
  tokensPerDay: number | null;
  keyId: string;
}

/** Hono generics shared by every route: bindings plus per-request variables. */
export interface AppEnv {
  Bindings: Env;
  Variables: TimingVariables & {
    requestId: string;
    db: Db;
    tenant?: AuthTenant;
    /** More fields for this request's one log line (logging/request-id.ts: `addRequestLogFields`). */
    logFields?: Record<string, unknown>;
  };
}

/** What a service needs of a tenant's request: bindings, the db, the caller, the request id for logs. */
export interface TenantScope {
  env: Env;
  db: Db;
  tenant: AuthTenant;
  requestId: string;
}
