// Upload crash safety (#12): the scheduled sweeper deletes R2 blobs no D1 row references after a
// grace period; an upload's Idempotency-Key makes a retry after a lost response return the first
// result (same status and body) instead of 409.
import { env } from "cloudflare:workers";
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import worker from "../../workers/src/index.js";
import { describe, expect, it, vi } from "vitest";
import { createDb } from "../../workers/src/db/client.js";
import { blobKey } from "../../workers/src/adapters/blob-store.js";
import { sweepOrphanBlobs } from "../../workers/src/maintenance/sweep-blobs.js";
import { IDEMPOTENCY_LEASE_MS } from "../../workers/src/idempotency/queries.js";
import { pruneUsageBatches, USAGE_BATCH_KEEP_MS, USAGE_BATCH_RETRY_MS } from "../../workers/src/limits/usage-batch.js";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { installFakeRunners, useFakeRunners } from "./fake-runner.js";
import { callJson, expectError, failAdapterInserts, newTenant, r2Keys, rowCount, uploadAdapter } from "./helpers.js";

useFakeRunners();

const HOUR = 3600_000;
const orphanSha = "ab".repeat(32);

/** Runs the worker's Cron Trigger handler as the runtime would, at `scheduledTime`, to its end. */
async function runCron(scheduledTime: number): Promise<void> {
  const ctx = createExecutionContext();
  worker.scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime }), env, ctx);
  await waitOnExecutionContext(ctx);
}

describe("orphan blob sweeper", () => {
  it("deletes unreferenced blobs older than the grace period, keeps referenced and recent ones", async () => {
    const t = await newTenant("acme");
    const up = (await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" }))).body;
    await env.ADAPTERS.put(blobKey(orphanSha), new Uint8Array(100));
    await env.ADAPTERS.put("other/prefix/file", new Uint8Array(1)); // not an adapter blob: never touched
    const db = createDb(env.DB);
    // Within the grace period nothing goes.
    expect((await sweepOrphanBlobs(db, env.ADAPTERS, { graceMs: HOUR })).deleted).toEqual([]);
    // After it, only the orphan goes.
    const later = await sweepOrphanBlobs(db, env.ADAPTERS, { graceMs: HOUR, now: Date.now() + 2 * HOUR });
    expect(later).toEqual({ scanned: 2, deleted: [blobKey(orphanSha)] });
    expect(await r2Keys()).toEqual([blobKey(up.sha256), "other/prefix/file"].sort());
  });

  it("a crash between the R2 put and the D1 insert leaks a blob; the scheduled handler removes it after the grace", async () => {
    const t = await newTenant("acme");
    // The insert fails and the clean-up cannot run (as if the isolate died): the blob stays.
    failAdapterInserts();
    vi.spyOn(env.ADAPTERS, "delete").mockRejectedValue(new Error("isolate gone"));
    expectError(await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" })), 503);
    vi.restoreAllMocks();
    installFakeRunners();
    expect(await rowCount("adapters")).toBe(0);
    expect(await r2Keys()).toHaveLength(1);
    // The Cron Trigger's handler, at a time within the grace: kept; after it: deleted.
    await runCron(Date.now() + 60_000);
    expect(await r2Keys()).toHaveLength(1);
    await runCron(Date.now() + 2 * HOUR);
    expect(await r2Keys()).toEqual([]);
  });

  it("the scheduled handler also prunes expired replay signatures, idempotency keys and usage batch ids", async () => {
    const t = await newTenant("acme");
    const now = Date.now();
    await env.DB.prepare("INSERT INTO used_signatures (signature, expires_at) VALUES ('old', ?), ('live', ?)").bind(now - 1000, now + 300_000).run();
    await env.DB.prepare("INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, body, created_at) VALUES (?, 'old', 'h', 201, '{}', ?), (?, 'new', 'h', 201, '{}', ?)")
      .bind(t.id, now - 25 * HOUR, t.id, now)
      .run();
    // A usage batch's id is kept longer than its isolate retries it (USAGE_BATCH_RETRY_MS < USAGE_BATCH_KEEP_MS).
    expect(USAGE_BATCH_RETRY_MS).toBeLessThan(USAGE_BATCH_KEEP_MS);
    await env.DB.prepare("INSERT INTO usage_batches (id, applied_at) VALUES ('old', ?), ('kept', ?)").bind(now - USAGE_BATCH_KEEP_MS - 1, now - USAGE_BATCH_RETRY_MS).run();
    await runCron(now);
    expect((await env.DB.prepare("SELECT id FROM usage_batches").all()).results).toEqual([{ id: "kept" }]);
    expect((await env.DB.prepare("SELECT signature FROM used_signatures").all()).results).toEqual([{ signature: "live" }]);
    expect((await env.DB.prepare("SELECT key FROM idempotency_keys").all()).results).toEqual([{ key: "new" }]);
  });

  it("usage batch ids are pruned in bounded chunks: one run deletes at most chunk × chunks rows, the next run the rest, never a kept one", async () => {
    const now = Date.now();
    const expired = now - USAGE_BATCH_KEEP_MS - 1;
    await env.DB.prepare("INSERT INTO usage_batches (id, applied_at) VALUES ('e1', ?), ('e2', ?), ('e3', ?), ('e4', ?), ('e5', ?), ('kept', ?)")
      .bind(expired, expired, expired - HOUR, expired, expired, now - USAGE_BATCH_KEEP_MS + 1000)
      .run();
    const db = createDb(env.DB);
    expect(await pruneUsageBatches(db, now, { chunk: 2, chunks: 2 })).toBe(4);
    expect(await rowCount("usage_batches")).toBe(2);
    expect(await pruneUsageBatches(db, now, { chunk: 2, chunks: 2 })).toBe(1);
    expect((await env.DB.prepare("SELECT id FROM usage_batches").all()).results).toEqual([{ id: "kept" }]);
    expect(await pruneUsageBatches(db, now, { chunk: 2, chunks: 2 })).toBe(0);
  });
});

describe("Idempotency-Key on uploads", () => {
  const upload = (key: string, idem: string | null, name = "p", seed = 1) =>
    callJson("/v1/adapters", {
      key,
      method: "POST",
      body: uploadForm(peftFiles(tinyAdapter(seed, 4)), { name }),
      headers: idem === null ? {} : { "idempotency-key": idem },
    });

  it("a retry with the same key returns the first result (status and body), not 409; one row", async () => {
    const t = await newTenant("acme");
    const first = await upload(t.key, "k-1");
    expect(first.status).toBe(201);
    expect(first.res.headers.get("idempotent-replayed")).toBeNull();
    const retry = await upload(t.key, "k-1");
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.res.headers.get("idempotent-replayed")).toBe("true");
    expect(await rowCount("adapters")).toBe(1);
    // Without the key the same upload is a new request: 409 (versions are immutable).
    expectError(await upload(t.key, null), 409);
    // Another tenant's identical key is its own.
    const u = await newTenant("umbrella");
    expect((await upload(u.key, "k-1")).status).toBe(201);
  });

  it("the same key with a different request is 422; a refusal is replayed as is", async () => {
    const t = await newTenant("acme");
    expect((await upload(t.key, "k")).status).toBe(201);
    expectError(await upload(t.key, "k", "other-name"), 422, "unprocessable_entity_error");
    expectError(await upload(t.key, "k", "p", 2), 422); // same fields, other bytes
    // A 409 is a final answer: its retry gets the same 409.
    const dup = await upload(t.key, "k2");
    expectError(dup, 409);
    const again = await upload(t.key, "k2");
    expect(again.status).toBe(409);
    expect(again.body).toEqual(dup.body);
    expectError(await upload(t.key, "bad key with spaces"), 400);
  });

  it("a transient failure (503) releases the key, so the retry runs again and succeeds", async () => {
    const t = await newTenant("acme");
    vi.spyOn(env.ADAPTERS, "put").mockRejectedValueOnce(new Error("R2 down"));
    expectError(await upload(t.key, "k"), 503);
    const retry = await upload(t.key, "k");
    expect(retry.status).toBe(201);
    expect(retry.res.headers.get("idempotent-replayed")).toBeNull();
  });

  it("the row and its recorded result commit together: a failing insert records nothing", async () => {
    const t = await newTenant("acme");
    failAdapterInserts();
    expectError(await upload(t.key, "k"), 503);
    vi.mocked(env.DB.prepare).mockRestore();
    expect(await rowCount("adapters")).toBe(0);
    expect(await rowCount("idempotency_keys")).toBe(0);
  });

  it("while the first request is in flight a retry gets 409 + Retry-After; once its lease is over (it died) a retry takes over", async () => {
    const t = await newTenant("acme");
    const first = await upload(t.key, "k");
    expect(first.status).toBe(201);
    // Undo it and re-open the key as pending, as a request that died before its insert leaves it.
    await env.DB.prepare("DELETE FROM adapters").run();
    await env.DB.prepare("UPDATE idempotency_keys SET status = NULL, body = NULL, created_at = ?").bind(Date.now()).run();
    const busy = await upload(t.key, "k");
    expectError(busy, 409, "conflict_error");
    expect(Number(busy.res.headers.get("retry-after"))).toBeGreaterThan(0);
    await env.DB.prepare("UPDATE idempotency_keys SET created_at = ?").bind(Date.now() - IDEMPOTENCY_LEASE_MS - 1000).run();
    const taken = await upload(t.key, "k");
    expect(taken.status).toBe(201);
    expect(taken.body.id).not.toBe(first.body.id);
    expect((await upload(t.key, "k")).body).toEqual(taken.body);
  });
});
