/**
 * Active health probes: GET /healthz of every runner within RUNNER_PROBE_TIMEOUT_S, so a hung runner
 * (SIGSTOP: connections accepted, nothing answered) leaves the rotation without traffic having
 * to find it, and a recovered one rejoins without waiting for its back-off to run out.
 *
 * An isolate serving traffic probes every RUNNER_PROBE_INTERVAL_S in the background
 * (`probeInBackground`, through waitUntil: no request waits for it); GET /v1/admin/runners
 * probes on demand. A probe updates the health tracker (ready → success, anything else →
 * failure) and the load tracker (the runner's `load`).
 */
import { healthSchema, RUNNER_PATHS, type Health } from "#core/wire/runner-api";
import type { Env } from "../env.js";
import { runnerTimeouts } from "../limits/config.js";
import { log } from "../logging/log.js";
import { invalidateCatalog } from "./catalog.js";
import { runnerUrls } from "./config.js";
import { runnerHealth, type HealthTracker } from "./health.js";
import { runnerLoads, type LoadTracker } from "./load.js";

export interface ProbeResult {
  url: string;
  ok: boolean;
  /** The runner's own status, or "unreachable" (connection error, timeout, bad body). */
  status: Health["status"] | "unreachable";
  pid: number | null;
  load: number | null;
  models: string[];
  error: string | null;
  ms: number;
}

/**
 * One runner's /healthz (unsigned, like a load balancer's check). Longer than `timeoutMs` is a
 * failure; the runner answers from its event loop, which a model step blocks (seconds on CPU), so
 * the timeout (RUNNER_PROBE_TIMEOUT_S) must outlast the longest legitimate step.
 */
export async function probeRunner(url: string, timeoutMs: number): Promise<ProbeResult> {
  const started = Date.now();
  const result = (over: Partial<ProbeResult>): ProbeResult => ({
    url, ok: false, status: "unreachable", pid: null, load: null, models: [], error: null, ms: Date.now() - started, ...over,
  });
  try {
    const res = await fetch(url + RUNNER_PATHS.health, { signal: AbortSignal.timeout(timeoutMs) });
    const parsed = healthSchema.safeParse(await res.json().catch(() => null));
    if (!parsed.success) return result({ error: `GET ${RUNNER_PATHS.health} → ${res.status} with an unexpected body` });
    const h = parsed.data;
    const ok = res.ok && h.ready;
    return result({ ok, status: h.status, pid: h.pid ?? null, load: h.load ?? null, models: h.models, error: ok ? null : `not ready (${h.status})` });
  } catch (e) {
    const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return result({ error: `probe failed: ${why}` });
  }
}

export interface ProbeOptions {
  /** Per probe (RUNNER_PROBE_TIMEOUT_S). */
  timeoutMs: number;
  health?: HealthTracker;
  loads?: LoadTracker;
}

/** Probes every runner at once and records what it found. */
export async function probeRunners(urls: readonly string[], opts: ProbeOptions): Promise<ProbeResult[]> {
  const health = opts.health ?? runnerHealth;
  const loads = opts.loads ?? runnerLoads;
  const started = Date.now();
  const results = await Promise.all(urls.map((u) => probeRunner(u, opts.timeoutMs)));
  let recovered = false;
  for (const r of results) {
    if (r.ok) {
      if (health.get(r.url).consecutiveFailures > 0) recovered = true;
      // A failure that traffic saw while the probe was in flight is newer: it wins.
      health.markSuccess(r.url, Date.now(), started);
      if (r.load !== null) loads.record(r.url, r.load);
    } else {
      health.markFailure(r.url, r.error ?? "probe failed");
      log("warn", "runner probe failed", { runner: r.url, status: r.status, error: r.error });
    }
  }
  // A runner that was failing answers again: refresh the catalogue now (it may have been left out as unreachable).
  if (recovered) invalidateCatalog();
  return results;
}

let lastProbeAt = 0;

/** Forgets when the last background probe ran (tests). */
export function resetProbeClock(): void {
  lastProbeAt = 0;
}

/**
 * Starts a background probe of every runner when the last one is at least
 * RUNNER_PROBE_INTERVAL_S old (0: never). Never delays the caller: the probe runs under `waitUntil`.
 */
export function probeInBackground(env: Env, waitUntil: (p: Promise<unknown>) => void, now = Date.now()): void {
  const { probeIntervalMs, probeTimeoutMs } = runnerTimeouts(env);
  if (probeIntervalMs <= 0 || now - lastProbeAt < probeIntervalMs) return;
  lastProbeAt = now;
  waitUntil(probeRunners(runnerUrls(env), { timeoutMs: probeTimeoutMs }).catch((e: unknown) => log("error", "runner probes failed", { error: String(e) })));
}
