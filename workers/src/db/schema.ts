/**
 * The single D1 schema (drizzle). `npm run db:generate` turns changes here into SQL under
 * migrations/, which wrangler applies. Times are unix milliseconds.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  /** Unique, url-safe; used in `owner/name@version` adapter references. */
  name: text("name").notNull().unique(),
  /** Overrides RATE_LIMIT_RPM when set. */
  rpmLimit: integer("rpm_limit"),
  /** Overrides TOKENS_PER_DAY when set. */
  tokensPerDay: integer("tokens_per_day"),
  createdAt: integer("created_at").notNull(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    /** hex sha256 of the key; the key itself is never stored. */
    keyHash: text("key_hash").notNull().unique(),
    /** First characters of the key, to recognise it in listings. */
    prefix: text("prefix").notNull(),
    createdAt: integer("created_at").notNull(),
    revokedAt: integer("revoked_at"),
  },
  (t) => [index("api_keys_tenant_idx").on(t.tenantId)],
);

export const adapters = sqliteTable(
  "adapters",
  {
    id: text("id").primaryKey(),
    ownerId: text("owner_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    version: text("version").notNull(),
    baseModel: text("base_model").notNull(),
    /** Largest module rank. */
    rank: integer("rank").notNull(),
    /** lora_alpha from the config. */
    alpha: real("alpha").notNull(),
    /** The modules' scale (alpha/r or alpha/√r) when they all agree, else the largest one. */
    scale: real("scale").notNull(),
    /** JSON array of PEFT module paths the adapter touches. */
    targets: text("targets").notNull(),
    /** Tensor dtype in the safetensors file (F32/F16/BF16). */
    dtype: text("dtype").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    /** hex sha256 of adapter_model.safetensors; the R2 key is derived from it. */
    sha256: text("sha256").notNull(),
    r2Key: text("r2_key").notNull(),
    /** adapter_config.json as uploaded. */
    configJson: text("config_json").notNull(),
    visibility: text("visibility", { enum: ["private", "public"] }).notNull().default("private"),
    description: text("description").notNull().default(""),
    /** Normalised ",tag1,tag2," so a tag filter is one LIKE. */
    tags: text("tags").notNull().default(","),
    downloads: integer("downloads").notNull().default(0),
    /** Completions served with this adapter in the mix (ad-hoc or through a composition). */
    uses: integer("uses").notNull().default(0),
    /**
     * For an adapter baked from a composition: JSON of core's BakeReportBody (core/src/wire/bake.ts:
     * strategy, density, rank, discarded energy, and the fidelity measured on the model). Null for uploads.
     */
    bakeReport: text("bake_report"),
    /**
     * The adapter's own chat template, uploaded beside it (tokenizer_config.json's chat_template or
     * chat_template.jinja, validated at upload): JSON of core's ChatTemplateSpec
     * ({template, bos_token, eos_token}, ≤ 64 KB of template). Null: the model's template is used.
     */
    chatTemplate: text("chat_template"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    uniqueIndex("adapters_owner_name_version_uq").on(t.ownerId, t.name, t.version),
    index("adapters_sha256_idx").on(t.sha256),
    index("adapters_base_model_idx").on(t.baseModel),
    index("adapters_visibility_idx").on(t.visibility),
  ],
);

export const compositions = sqliteTable(
  "compositions",
  {
    id: text("id").primaryKey(),
    ownerId: text("owner_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    baseModel: text("base_model").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [uniqueIndex("compositions_owner_name_uq").on(t.ownerId, t.name)],
);

export const compositionAdapters = sqliteTable(
  "composition_adapters",
  {
    compositionId: text("composition_id")
      .notNull()
      .references(() => compositions.id, { onDelete: "cascade" }),
    position: integer("position").notNull(),
    adapterId: text("adapter_id")
      .notNull()
      .references(() => adapters.id),
    weight: real("weight").notNull(),
  },
  (t) => [primaryKey({ columns: [t.compositionId, t.position] }), index("composition_adapters_adapter_idx").on(t.adapterId)],
);

/** Usage per tenant per UTC day (`day` = YYYY-MM-DD). */
export const usageDaily = sqliteTable(
  "usage_daily",
  {
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    day: text("day").notNull(),
    requests: integer("requests").notNull().default(0),
    promptTokens: integer("prompt_tokens").notNull().default(0),
    completionTokens: integer("completion_tokens").notNull().default(0),
    /**
     * Tokens held against the daily limit: the isolates' leases (limits/isolate-ledger.ts), out of
     * which requests in flight take their reservations (each: an upper bound of its prompt +
     * max_tokens) and in which usage not yet written waits; taken by limits/enforce.ts only while
     * used + reserved + it ≤ the daily limit, moved to the billed columns or given back by a flush
     * (limits/reservation.ts). What an isolate that died held stays on its day's row and expires with the day.
     */
    reservedTokens: integer("reserved_tokens").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day] })],
);

/**
 * Usage batches applied to `usage_daily` (limits/usage-batch.ts): an isolate's flush gives each
 * batch an id (isolate id + sequence) and writes this row in the same D1 batch (one transaction)
 * as the usage, every other statement of it running only while the row is absent, so a retry of
 * a batch already applied (its reply lost) changes nothing: usage is billed exactly once. Rows are
 * pruned by the scheduled sweeper once no retry can come (USAGE_BATCH_KEEP_MS).
 */
export const usageBatches = sqliteTable(
  "usage_batches",
  {
    /** `<isolate id>:<sequence>`, unique per flush of any isolate. */
    id: text("id").primaryKey(),
    /** When the batch was applied (unix ms). */
    appliedAt: integer("applied_at").notNull(),
  },
  (t) => [index("usage_batches_applied_idx").on(t.appliedAt)],
);

/** Fixed one-minute request counters for the rpm limit (`window_start` = unix minute). */
export const rateWindows = sqliteTable(
  "rate_windows",
  {
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    windowStart: integer("window_start").notNull(),
    count: integer("count").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.windowStart] })],
);

/** Last manifest seen per base model, so uploads validate while runners are down. */
export const models = sqliteTable("models", {
  id: text("id").primaryKey(),
  /** ModelManifest JSON. */
  manifest: text("manifest").notNull(),
  updatedAt: integer("updated_at")
    .notNull()
    .default(sql`0`),
});

/**
 * Signatures of internal (runner → worker) calls already accepted, so a signed request cannot
 * be replayed within its validity window (shared by every isolate). Rows past `expires_at` are
 * deleted by the scheduled sweeper.
 */
export const usedSignatures = sqliteTable(
  "used_signatures",
  {
    /** hex HMAC of the accepted request. */
    signature: text("signature").primaryKey(),
    /** When the signature's timestamp leaves the window (unix ms); after that it is refused anyway. */
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("used_signatures_expires_idx").on(t.expiresAt)],
);

/**
 * `Idempotency-Key` of uploads: the first request's result, replayed to a retry with the same
 * key (same status and body). `status` is null while the first request is in flight.
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    /** hex sha256 fingerprint of the request (fields and file hashes); a different request under the same key is refused. */
    requestHash: text("request_hash").notNull(),
    status: integer("status"),
    /** The response body (JSON text) once finished. */
    body: text("body"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] }), index("idempotency_keys_created_idx").on(t.createdAt)],
);
