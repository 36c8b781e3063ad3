import { pruneUsedSignatures } from "../auth/used-signatures.js";
import { createDb } from "../db/client.js";
import type { Env } from "../env.js";
import { pruneIdempotencyKeys } from "../idempotency/queries.js";
import { pruneUsageBatches } from "../limits/usage-batch.js";
import { log } from "../logging/log.js";
import { sweepOrphanBlobs } from "./sweep-blobs.js";

/** Default grace before an unreferenced blob is deleted (BLOB_SWEEP_GRACE_S). */
export const DEFAULT_BLOB_SWEEP_GRACE_S = 3600;

export interface ScheduledTask {
  name: string;
  run(env: Env, now: number): Promise<Record<string, unknown>>;
}

/** Storage hygiene: orphan blobs, expired replay signatures, expired idempotency keys, old usage batch ids. */
export const maintenanceTask: ScheduledTask = {
  name: "maintenance",
  async run(env, now) {
    const db = createDb(env.DB);
    const graceS = Number(env.BLOB_SWEEP_GRACE_S ?? DEFAULT_BLOB_SWEEP_GRACE_S);
    const sweep = await sweepOrphanBlobs(db, env.ADAPTERS, { graceMs: (Number.isFinite(graceS) && graceS >= 0 ? graceS : DEFAULT_BLOB_SWEEP_GRACE_S) * 1000, now });
    const signatures = await pruneUsedSignatures(db, now);
    const idempotency = await pruneIdempotencyKeys(db, now);
    const usageBatches = await pruneUsageBatches(db, now);
    return {
      blobs_scanned: sweep.scanned,
      blobs_deleted: sweep.deleted.length,
      signatures_pruned: signatures,
      idempotency_keys_pruned: idempotency,
      usage_batches_pruned: usageBatches,
    };
  },
};

/**
 * What the Cron Trigger runs (wrangler.toml `[triggers]`; locally `wrangler dev --test-scheduled`
 * then `curl http://127.0.0.1:8787/__scheduled`). Every task runs, each on its
 * own: one failing does not stop the others; each logs one line.
 */
export async function runScheduledTasks(env: Env, tasks: readonly ScheduledTask[], now = Date.now()): Promise<void> {
  await Promise.all(
    tasks.map(async (task) => {
      try {
        log("info", "scheduled task done", { task: task.name, ...(await task.run(env, now)) });
      } catch (e) {
        log("error", "scheduled task failed", { task: task.name, error: e instanceof Error ? e.message : String(e) });
      }
    }),
  );
}
