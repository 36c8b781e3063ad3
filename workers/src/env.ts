/** Bindings and variables the worker receives (see wrangler.toml). */
export interface Env {
  DB: D1Database;
  ADAPTERS: R2Bucket;
  /** Comma-separated runner base URLs. */
  RUNNER_URLS: string;
  ENVIRONMENT: string;
  ADMIN_TOKEN?: string;
  RUNNER_SECRET?: string;
  /** Default requests per minute per tenant (a tenant row may override). Default 600. */
  RATE_LIMIT_RPM?: string;
  /** Default prompt+completion tokens per UTC day per tenant (a tenant row may override). Default 1000000. */
  TOKENS_PER_DAY?: string;
  /** Largest adapter_model.safetensors accepted, in bytes. Default 67108864 (64 MiB). */
  MAX_ADAPTER_BYTES?: string;
  /** Largest adapter rank accepted at upload (also capped by the model manifest's maxRank). Default 64. */
  MAX_ADAPTER_RANK?: string;
  /** Most adapters in one mix or composition. Default 8. */
  MAX_MIX_ADAPTERS?: string;
  /** Seconds to wait for a runner's response headers (unary: its whole answer) before failing over. Default 60. */
  RUNNER_HEADERS_TIMEOUT_S?: string;
  /** Seconds an open runner stream may send no byte (events or keep-alive comments) before it is ended with an error. Default 30. */
  RUNNER_STREAM_IDLE_TIMEOUT_S?: string;
  /** Seconds between active /healthz probes of every runner (from an isolate serving traffic); 0: none. Default 5. */
  RUNNER_PROBE_INTERVAL_S?: string;
  /** Seconds a /healthz probe may take before it counts as a failure (a busy runner's event loop is blocked for a whole model step). Default 10. */
  RUNNER_PROBE_TIMEOUT_S?: string;
  /** Seconds an R2 blob no D1 row references is kept before the scheduled sweeper deletes it. Default 3600. */
  BLOB_SWEEP_GRACE_S?: string;
  /**
   * Milliseconds an isolate reuses an API key → tenant lookup and adapter records on the inference
   * path (revocation, limit and visibility changes reach other isolates within it). Default 5000; 0 disables.
   */
  EDGE_CACHE_TTL_MS?: string;
  /**
   * Most tokens an isolate reserves for a tenant in one D1 round trip beyond the request at hand
   * (also at most 1/16 of the tenant's daily limit); later requests spend them without D1. Default 16384; 0: each request reserves its own.
   */
  BUDGET_LEASE_TOKENS?: string;
  /** Most request slots of a minute an isolate counts for a tenant at once (also ≤ 1/16 of its rpm limit). Default 256; 0: one per request. */
  RATE_LEASE_REQUESTS?: string;
  /** Milliseconds billed usage waits in an isolate before it is written (one batch for all of it); idle this long, an isolate gives its lease back. Default 1000; 0: after each request. */
  USAGE_FLUSH_MS?: string;
  /** "debug" | "info" (default) | "warn" | "error" | "silent": lowest level of log lines written. */
  LOG_LEVEL?: string;
  /** Public base URL of this worker as runners reach it (for their adapter fetches); informational. */
  EDGE_PUBLIC_URL?: string;
}
