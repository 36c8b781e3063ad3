/**
 * What GET /v1/admin/runners reports: every configured runner, probed now (probe.ts), with this
 * isolate's view of it — health back-off, last error, last success, the models the catalogue
 * lists for it, and its load. State is per isolate (another isolate may have seen other failures).
 */
import type { Health } from "#core/wire/runner-api";
import type { Env } from "../env.js";
import { runnerTimeouts } from "../limits/config.js";
import { isoTime } from "../util/time.js";
import { cachedCatalog } from "./catalog.js";
import { runnerUrls } from "./config.js";
import { runnerHealth } from "./health.js";
import { runnerLoads } from "./load.js";
import { probeRunners } from "./probe.js";

export interface RunnerStatus {
  url: string;
  /** Routable now: not in a back-off after failures. */
  healthy: boolean;
  /** The runner's own status from the probe just made, or "unreachable". */
  status: Health["status"] | "unreachable";
  pid: number | null;
  /** Requests queued + running (the probe's, else the last one reported). */
  load: number | null;
  /** Models it serves (from the probe; else from the catalogue). */
  models: string[];
  consecutive_failures: number;
  down_until: string | null;
  last_error: string | null;
  last_ok_at: string | null;
  probe_ms: number;
}

export async function runnerStatuses(env: Env): Promise<RunnerStatus[]> {
  const probes = await probeRunners(runnerUrls(env), { timeoutMs: runnerTimeouts(env).probeTimeoutMs });
  // The catalogue as cached (not refreshed here: a hung runner would hold this call for its fetch timeout).
  const catalog = cachedCatalog();
  const now = Date.now();
  return probes.map((p) => {
    const h = runnerHealth.get(p.url);
    return {
      url: p.url,
      healthy: runnerHealth.isHealthy(p.url, now),
      status: p.status,
      pid: p.pid,
      load: p.load ?? runnerLoads.loadOf(p.url, now),
      models: p.models.length ? p.models : (catalog?.byRunner.get(p.url) ?? []).map((m) => m.id),
      consecutive_failures: h.consecutiveFailures,
      down_until: h.downUntil > now ? isoTime(h.downUntil) : null,
      last_error: h.lastError,
      last_ok_at: h.lastOkAt === null ? null : isoTime(h.lastOkAt),
      probe_ms: p.ms,
    };
  });
}
