/**
 * The runner's Prometheus metrics: request histograms observed by the routes, everything
 * else read from the engines and the adapter cache at scrape time.
 */
import type { AdapterCache } from "../adapters/index.js";
import type { LeasedLruStats } from "../cache/index.js";
import type { ModelEngine } from "../engine/index.js";
import { createHash, randomBytes } from "node:crypto";
import { Exposition, Histogram } from "./prometheus.js";

/** Per-process salt: a mix label is stable within one runner's life but cannot be matched to adapter ids. */
const MIX_LABEL_SALT = randomBytes(16);

/**
 * The `mix` label of per-session metrics: an opaque salted hash of the mix key. /metrics is
 * unauthenticated, so labels carry no tenant data (adapter ids, weights).
 */
export function opaqueMixLabel(mixKey: string): string {
  return createHash("sha256").update(MIX_LABEL_SALT).update(mixKey).digest("hex").slice(0, 12);
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class RunnerMetrics {
  readonly requestSeconds = new Histogram(
    "loraedge_runner_request_duration_seconds",
    "Completion request latency, from arrival to the last byte, by model, mode and outcome.",
    SECONDS,
  );
  readonly firstTokenSeconds = new Histogram(
    "loraedge_runner_time_to_first_token_seconds",
    "Time from arrival to the first generated token.",
    SECONDS,
  );
  private readonly requests = new Map<string, number>();

  countRequest(labels: { model: string; status: string }): void {
    const key = `${labels.model}\u0000${labels.status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  render(engines: readonly ModelEngine[], adapters: AdapterCache | null): string {
    const out = new Exposition();
    const perModel = <T>(fn: (e: ModelEngine) => T) => engines.map((e) => ({ model: e.id, value: fn(e) }));
    const scheduler = perModel((e) => e.scheduler.stats());
    const merges = perModel((e) => e.merges.stats());
    const mixes = perModel((e) => e.mixes.stats());

    out.metric(
      "loraedge_runner_requests_total",
      "counter",
      "Completion requests by model and HTTP status.",
      [...this.requests].map(([key, value]) => {
        const [model, status] = key.split("\u0000");
        return { labels: { model: model!, status: status! }, value };
      }),
    );
    out.metric("loraedge_runner_queue_length", "gauge", "Requests waiting for a batch row.",
      scheduler.map((s) => ({ labels: { model: s.model }, value: s.value.queued })));
    out.metric("loraedge_runner_batch_rows", "gauge", "Rows in the running batch.",
      scheduler.map((s) => ({ labels: { model: s.model }, value: s.value.running })));
    out.metric("loraedge_runner_batch_occupancy", "gauge", "Running rows / RUNNER_MAX_BATCH.",
      scheduler.map((s) => ({ labels: { model: s.model }, value: s.value.running / s.value.maxBatch })));
    out.metric("loraedge_runner_reserved_tokens", "gauge", "Σ(prompt + max_tokens) over running rows (RUNNER_MAX_TOKENS budget).",
      scheduler.map((s) => ({ labels: { model: s.model }, value: s.value.reservedTokens })));
    out.metric("loraedge_runner_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s.",
      scheduler.map((s) => ({ labels: { model: s.model }, value: s.value.tokensPerSecond })));
    out.metric("loraedge_runner_prompt_tokens_total", "counter", "Prompt tokens prefilled.",
      scheduler.map((s) => ({ labels: { model: s.model }, value: s.value.promptTokensTotal })));
    out.metric("loraedge_runner_completion_tokens_total", "counter", "Tokens generated.",
      scheduler.map((s) => ({ labels: { model: s.model }, value: s.value.completionTokensTotal })));
    out.metric("loraedge_runner_steps_total", "counter", "Batched forward steps by kind.",
      scheduler.flatMap((s) => (["prefill", "decode"] as const).map((kind) => ({ labels: { model: s.model, kind }, value: s.value.stepsTotal[kind] }))));
    out.metric("loraedge_runner_rejected_total", "counter", "Requests refused by admission control.",
      scheduler.flatMap((s) => (["queue_full", "draining"] as const).map((reason) => ({ labels: { model: s.model, reason }, value: s.value.rejectedTotal[reason] }))));
    out.metric("loraedge_runner_aborted_total", "counter", "Requests whose client went away (row freed).",
      scheduler.map((s) => ({ labels: { model: s.model }, value: s.value.abortedTotal })));
    out.metric("loraedge_runner_engine_no_progress_seconds", "gauge",
      "Seconds the engine has held work without a model step returning (0 when idle); beyond RUNNER_STALL_LIMIT_MS it is stalled.",
      perModel((e) => e.scheduler.liveness(0).noProgressMs / 1000).map((m) => ({ labels: { model: m.model }, value: m.value })));

    out.metric("loraedge_runner_merged_sessions", "gauge", "Merged sessions held.",
      merges.map((m) => ({ labels: { model: m.model }, value: m.value.sessions.length })));
    out.metric("loraedge_runner_merged_bytes", "gauge", "Weight bytes of merged sessions (RUNNER_MERGED_MB budget).",
      merges.map((m) => ({ labels: { model: m.model }, value: m.value.bytes })));
    out.metric("loraedge_runner_merged_session_build_seconds", "gauge", "Per merged session (mix: an opaque per-process hash, no tenant data): how long its build took.",
      merges.flatMap((m) => m.value.sessions.map((s) => ({ labels: { model: m.model, mix: opaqueMixLabel(s.key) }, value: s.buildMs / 1000 }))));
    out.metric("loraedge_runner_merged_session_hits", "gauge", "Per merged session (mix): requests routed to it.",
      merges.flatMap((m) => m.value.sessions.map((s) => ({ labels: { model: m.model, mix: opaqueMixLabel(s.key) }, value: s.hits }))));
    out.metric("loraedge_runner_merged_hits_total", "counter", "Requests routed to a merged session.",
      merges.map((m) => ({ labels: { model: m.model }, value: m.value.hitsTotal })));
    out.metric("loraedge_runner_merged_builds_total", "counter", "Merged sessions built.",
      merges.map((m) => ({ labels: { model: m.model }, value: m.value.buildsTotal })));
    out.metric("loraedge_runner_merged_build_failures_total", "counter", "Merged session builds that failed.",
      merges.map((m) => ({ labels: { model: m.model }, value: m.value.buildFailuresTotal })));
    out.metric("loraedge_runner_merged_evictions_total", "counter", "Merged sessions evicted (LRU).",
      merges.map((m) => ({ labels: { model: m.model }, value: m.value.evictionsTotal })));
    out.metric("loraedge_runner_merge_policy_estimate", "gauge", "Inputs of the merge policy: expected build ms, LoRA overhead ms per token, session bytes.",
      merges.flatMap((m) => Object.entries(m.value.estimates).map(([name, value]) => ({ labels: { model: m.model, estimate: name }, value }))));

    const mixMetrics: [name: string, type: "gauge" | "counter", help: string, pick: (s: LeasedLruStats) => number][] = [
      ["loraedge_runner_composed_mixes", "gauge", "Composed mixes live (one per distinct mix in use, shared by its requests).", (s) => s.entries],
      ["loraedge_runner_composed_mix_bytes", "gauge", "Bytes of the live composed mixes' Aᵗ/Bᵗ factors.", (s) => s.bytes],
      ["loraedge_runner_mix_compositions_total", "counter", "Mixes composed (requests that find their mix live share it).", (s) => s.loads],
    ];
    for (const [name, type, help, pick] of mixMetrics) {
      out.metric(name, type, help, mixes.map((m) => ({ labels: { model: m.model }, value: pick(m.value) })));
    }
    const mixBuffers = perModel((e) => e.mixes.bufferStats());
    out.metric("loraedge_runner_mix_buffer_pool_bytes", "gauge", "Free buffers of composed mixes that left, kept for the next compositions (dropped after 30 s with no mix live).",
      mixBuffers.map((m) => ({ labels: { model: m.model }, value: m.value.freeBytes })));
    out.metric("loraedge_runner_mix_buffer_reuses_total", "counter", "Compositions' arrays taken from the free buffers instead of fresh memory.",
      mixBuffers.map((m) => ({ labels: { model: m.model }, value: m.value.reused })));

    if (adapters) {
      const a = adapters.stats();
      out.metric("loraedge_runner_adapter_cache_bytes", "gauge", "Bytes of parsed adapters held.", a.bytes);
      out.metric("loraedge_runner_adapter_cache_budget_bytes", "gauge", "RUNNER_ADAPTER_CACHE_MB in bytes.", a.budgetBytes);
      out.metric("loraedge_runner_adapter_cache_entries", "gauge", "Adapters held.", a.entries);
      out.metric("loraedge_runner_adapter_cache_hits_total", "counter", "Adapter lookups served from memory.", a.hitsTotal);
      out.metric("loraedge_runner_adapter_cache_misses_total", "counter", "Adapter lookups that needed a fetch (or joined one).", a.missesTotal);
      out.metric("loraedge_runner_adapter_fetches_total", "counter", "Adapter fetches from the edge.", a.fetchesTotal);
      out.metric("loraedge_runner_adapter_fetch_failures_total", "counter", "Failed fetches (network, sha256 mismatch, parse).", a.fetchFailuresTotal);
      out.metric("loraedge_runner_adapter_evictions_total", "counter", "Adapters evicted.", a.evictionsTotal);
    }
    out.histogram(this.requestSeconds);
    out.histogram(this.firstTokenSeconds);
    return out.text();
  }
}
