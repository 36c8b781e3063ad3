import { eq } from "drizzle-orm";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { modelManifestSchema } from "#core/manifest/model-manifest";
import { modelListSchema, RUNNER_PATHS, type ModelList } from "#core/wire/runner-api";
import type { Db } from "../db/client.js";
import { models } from "../db/schema.js";
import type { Env } from "../env.js";
import { serviceUnavailable } from "../errors/api-error.js";
import { log } from "../logging/log.js";
import { runnerSecret, runnerUrls } from "./config.js";
import { runnerHealth } from "./health.js";
import { signedFetch } from "./signed-fetch.js";

export type CatalogModel = ModelList["data"][number];

/** What the runners serve, as last fetched: per runner its model list. */
export interface ModelCatalog {
  fetchedAt: number;
  /** Runners that answered, with their models. */
  byRunner: Map<string, CatalogModel[]>;
  /** Runners that did not answer (connection error, timeout, non-2xx, bad body). */
  unreachable: string[];
}

/** Per-isolate cache lifetime of the catalogue. */
export const CATALOG_TTL_MS = 15_000;
const FETCH_TIMEOUT_MS = 5_000;

let cached: { key: string; catalog: ModelCatalog } | null = null;
/** A refresh ahead under way (one at a time). */
let refreshing: Promise<unknown> | null = null;
/** Bumped by invalidateCatalog(): a fetch that began before it stores nothing. */
let generation = 0;
/** The manifests this isolate last upserted into D1 (their JSON, sorted by id): unchanged → no write. */
let storedFingerprint: string | null = null;

/** The cached catalogue, if any, without fetching (however old). */
export function cachedCatalog(): ModelCatalog | null {
  return cached?.catalog ?? null;
}

/** Forgets the cached catalogue and what was stored from it (tests; also after a routing failure). */
export function invalidateCatalog(): void {
  generation++;
  cached = null;
  storedFingerprint = null;
}

async function fetchRunnerModels(secret: string, url: string): Promise<CatalogModel[]> {
  const res = await signedFetch(secret, url, RUNNER_PATHS.models, {
    method: "GET",
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`GET ${RUNNER_PATHS.models} → ${res.status}`);
  const parsed = modelListSchema.safeParse(await res.json());
  if (!parsed.success) throw new Error(`invalid model list: ${parsed.error.message.slice(0, 200)}`);
  return parsed.data.data;
}

export interface CatalogOptions {
  /** Fetch now, whatever the cache holds. */
  force?: boolean;
  /**
   * The request's waitUntil: a cached catalogue older than half its TTL is answered at once and
   * refreshed behind the response (one refresh at a time), so steady traffic never waits for it.
   */
  inBackground?: (work: Promise<unknown>) => void;
  /** The clock (tests pin it). */
  now?: number;
}

/**
 * The runners' model catalogue, cached per isolate for CATALOG_TTL_MS (never served older). A
 * refresh also upserts the manifests into D1 (`models`), so uploads validate while runners are
 * down — only when they differ from what this isolate last stored (steady traffic refreshes
 * every CATALOG_TTL_MS / 2 per isolate; the manifests rarely change).
 */
export async function modelCatalog(env: Env, db: Db, opts: CatalogOptions = {}): Promise<ModelCatalog> {
  const urls = runnerUrls(env);
  const key = urls.join(",");
  const now = opts.now ?? Date.now();
  if (!opts.force && cached && cached.key === key && now - cached.catalog.fetchedAt < CATALOG_TTL_MS) {
    if (opts.inBackground && !refreshing && now - cached.catalog.fetchedAt >= CATALOG_TTL_MS / 2) {
      const refresh = (refreshing = fetchCatalog(env, db, urls, key, now).finally(() => (refreshing = null)));
      // The caller's waitUntil discards a rejection: say it here (the message only; runner URLs carry no credentials).
      opts.inBackground(refresh.catch((e: unknown) => log("warn", "catalogue refresh failed", { error: errorMessage(e) })));
    }
    return cached.catalog;
  }
  return fetchCatalog(env, db, urls, key, now);
}

/** Asks every runner (but those in back-off) for its models, stores the manifests, caches the result. */
async function fetchCatalog(env: Env, db: Db, urls: string[], key: string, now: number): Promise<ModelCatalog> {
  const started = generation;
  const secret = runnerSecret(env);
  // A runner in its failure back-off is not asked again (a hung one would hold this refresh for
  // FETCH_TIMEOUT_MS): its last known list is kept (it stays a candidate, tried last), and the
  // probes (probe.ts) or the end of its back-off bring it back.
  const previous = cached?.key === key ? cached.catalog : null;
  const skipped = new Set(urls.filter((u) => !runnerHealth.isHealthy(u, now)));
  const results = await Promise.allSettled(
    urls.map((u) => (skipped.has(u) ? Promise.reject(new Error("in back-off")) : fetchRunnerModels(secret, u))),
  );
  const catalog: ModelCatalog = { fetchedAt: now, byRunner: new Map(), unreachable: [] };
  results.forEach((r, i) => {
    const url = urls[i]!;
    const kept = skipped.has(url) ? previous?.byRunner.get(url) : undefined;
    if (skipped.has(url)) {
      if (kept) catalog.byRunner.set(url, kept);
      else catalog.unreachable.push(url);
    } else if (r.status === "fulfilled") {
      runnerHealth.markSuccess(url);
      catalog.byRunner.set(url, r.value);
    } else {
      const reason = r.reason instanceof Error ? r.reason.message : String(r.reason);
      runnerHealth.markFailure(url, reason);
      catalog.unreachable.push(url);
      log("warn", "runner model list failed", { runner: url, error: reason });
    }
  });
  await storeManifests(db, catalog);
  if (started === generation) cached = { key, catalog };
  return catalog;
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Upserts the catalogue's manifests (first runner's entry per model) into D1, unless they equal
 * what this isolate stored last. A failed write is logged and retried at the next refresh.
 */
async function storeManifests(db: Db, catalog: ModelCatalog): Promise<void> {
  const seen = new Map<string, string>();
  for (const list of catalog.byRunner.values()) for (const m of list) if (!seen.has(m.id)) seen.set(m.id, JSON.stringify(m.manifest));
  if (seen.size === 0) return;
  const entries = [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const fingerprint = JSON.stringify(entries);
  if (fingerprint === storedFingerprint) return;
  const now = Date.now();
  const stmts = entries.map(([id, manifest]) =>
    db.insert(models).values({ id, manifest, updatedAt: now }).onConflictDoUpdate({ target: models.id, set: { manifest, updatedAt: now } }),
  );
  try {
    await db.batch(stmts as [(typeof stmts)[number], ...(typeof stmts)[number][]]);
    storedFingerprint = fingerprint;
  } catch (e) {
    log("warn", "storing manifests failed", { error: errorMessage(e) });
  }
}

/** Distinct models served by the catalogue's reachable runners (first runner's entry wins). */
export function catalogModels(catalog: ModelCatalog): CatalogModel[] {
  const out = new Map<string, CatalogModel>();
  for (const list of catalog.byRunner.values()) for (const m of list) if (!out.has(m.id)) out.set(m.id, m);
  return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Runners (reachable at the last refresh) serving `model`. */
export function runnersServing(catalog: ModelCatalog, model: string): string[] {
  return [...catalog.byRunner.entries()].filter(([, list]) => list.some((m) => m.id === model)).map(([u]) => u);
}

/**
 * The manifest of a base model: from the live catalogue, else the copy stored in D1.
 * null when neither knows the model; 503 when no runner answered and D1 has no copy.
 */
export async function findManifest(env: Env, db: Db, model: string): Promise<ModelManifest | null> {
  const catalog = await modelCatalog(env, db);
  const live = catalogModels(catalog).find((m) => m.id === model);
  if (live) return live.manifest;
  const rows = await db.select().from(models).where(eq(models.id, model)).limit(1);
  if (rows[0]) return modelManifestSchema.parse(JSON.parse(rows[0].manifest));
  if (catalog.byRunner.size === 0) {
    throw serviceUnavailable(`cannot validate against base model '${model}': no runner reachable and no stored manifest`, 5);
  }
  return null;
}
