/** Bindings and variables the worker receives (see wrangler.toml). */
export interface Env {
  DB: D1Database;
  ADAPTERS: R2Bucket;
  /** Comma-separated runner base URLs. */
  RUNNER_URLS: string;
  ENVIRONMENT: string;
  ADMIN_TOKEN?: string;
  RUNNER_SECRET?: string;
}
