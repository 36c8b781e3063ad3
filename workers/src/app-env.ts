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
  Variables: {
    requestId: string;
    db: Db;
    tenant?: AuthTenant;
  };
}
