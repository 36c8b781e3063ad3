/**
 * Merge on demand: per mix, track demand and step timings, ask the policy (`merge-policy.ts`,
 * pure) when a dedicated merged session (W′ = W + ΔW, built by the model layer with ONNX
 * Runtime) pays for itself and which idle session to give up first; keep merged sessions in the
 * runner's leased LRU (`../cache/leased-lru.ts`) bounded by weight bytes; route requests to them.
 *
 * Policy "auto": the cost model in `merge-policy.ts` (demand · overhead · horizon ≥ build cost).
 * "always" merges every non-empty mix before serving it; "never" only mixes that touch
 * merge-only targets (which have no per-row inputs and cannot run unmerged).
 *
 * A request that needs a merged session leases it through the LRU's single flight: it is pinned
 * the moment the build finishes, so no release in between can evict it before it is used.
 */
import type { ComposedMix } from "#core/lora/types";
import { LeasedLru } from "../cache/leased-lru.js";
import type { BaseModel, ModelVariant } from "../model/types.js";
import { EngineError } from "./errors.js";
import type { Logger } from "./logger.js";
import { silentLogger } from "./logger.js";
import {
  addTokens,
  decayedRate,
  decideMerge,
  evictionOrder,
  FORGET_BELOW_TOKENS_PER_S,
  mergeEstimates,
  type MergeEstimates,
} from "./merge-policy.js";
import type { RowTarget, StepObservation } from "./scheduler.js";

export type MergePolicyName = "auto" | "never" | "always";

/** A request's composed mix with its identity. */
export interface MixHandle {
  /** Identity of the mix (ordered adapter shas and weights). */
  key: string;
  mix: ComposedMix;
  /** Modules of the mix that are merge-only targets of the model (non-empty ⇒ merged path required). */
  mergeOnlyModules: string[];
  /**
   * A lease on the mix's arrays for a reader that may outlive the request (a background merge);
   * call the returned release when done. Absent: the arrays stay valid without one.
   */
  hold?(): () => void;
}

export interface MergeOptions {
  policy: MergePolicyName;
  budgetBytes: number;
  /** Seconds of future demand a merge is expected to serve (default 30). */
  horizonS?: number;
  /** Demand decay time constant in seconds (default 10). */
  tauS?: number;
  log?: Logger;
}

/** What the LRU holds per mix key. */
interface MergedSession {
  variant: ModelVariant;
  buildMs: number;
}

interface Demand {
  /** Decayed tokens/s as of `at`. */
  rate: number;
  at: number;
}

export interface MergeStats {
  policy: MergePolicyName;
  budgetBytes: number;
  bytes: number;
  sessions: { key: string; bytes: number; buildMs: number; hits: number; inUse: number }[];
  building: number;
  buildsTotal: number;
  buildFailuresTotal: number;
  evictionsTotal: number;
  hitsTotal: number;
  /** Latest inputs of the auto policy. */
  estimates: MergeEstimates;
  /** Mixes whose demand is tracked (cold ones are forgotten every SWEEP_EVERY_TOKEN_REPORTS reports). */
  trackedMixes: number;
}

const ewma = (previous: number | null, sample: number, alpha = 0.2) =>
  previous === null ? sample : previous + alpha * (sample - previous);

const BUILD_RETRY_AFTER_FAILURE_MS = 60_000;
/** How often (in onTokens reports) demand records of cold mixes and expired build failures are dropped. */
const SWEEP_EVERY_TOKEN_REPORTS = 1024;

export class MergeManager {
  private readonly sessions: LeasedLru<MergedSession>;
  private readonly failedAt = new Map<string, number>();
  private readonly demand = new Map<string, Demand>();
  private tokenReports = 0;
  private mixedRowMs: number | null = null;
  private plainRowMs: number | null = null;
  private buildMsEstimate: number | null = null;
  private sessionBytesEstimate: number;
  private readonly counters = { buildsTotal: 0, buildFailuresTotal: 0, hitsTotal: 0 };
  private readonly log: Logger;
  private readonly horizonS: number;
  private readonly tauS: number;

  constructor(
    private readonly model: BaseModel,
    private readonly options: MergeOptions,
  ) {
    this.log = options.log ?? silentLogger;
    this.horizonS = options.horizonS ?? 30;
    this.tauS = options.tauS ?? 10;
    const bytesPerParam = model.manifest.dtype === "float16" ? 2 : 4;
    this.sessionBytesEstimate = model.manifest.parameters * bytesPerParam;
    this.sessions = new LeasedLru<MergedSession>({
      budgetBytes: options.budgetBytes,
      sizeOf: (s) => s.variant.weightBytes,
      onEvict: (key, s) => {
        this.log("info", "merged session evicted", { mix: key, bytes: s.variant.weightBytes, buildMs: Math.round(s.buildMs) });
        return s.variant.dispose();
      },
      // A failed release is logged, never thrown into a build or a request's release; the session is gone either way.
      onEvictError: (key, e) => this.log("error", "merged session dispose failed", { mix: key, error: (e as Error).message }),
      evictionOrder: (idle) =>
        evictionOrder(
          idle.map((e) => ({ ...e, demandTokensPerS: this.demandNow(e.key), buildMs: e.value.buildMs })),
          this.estimates().overheadMsPerToken,
          this.horizonS,
        ),
    });
  }

  /**
   * Where a new request with this mix runs, plus a release to call when it leaves the batch.
   * Waits for a merged build when the mix needs one (merge-only targets, policy "always").
   */
  async target(handle: MixHandle | null): Promise<{ target: RowTarget; release: () => void }> {
    const noop = () => {};
    if (!handle) return { target: { variant: this.model, mix: null, mixKey: "", merged: false }, release: noop };
    const mustMerge = handle.mergeOnlyModules.length > 0 || this.options.policy === "always";
    let lease = this.sessions.tryAcquire(handle.key);
    if (!lease && mustMerge) {
      if (!this.sessions.isLoading(handle.key)) this.refuseIfTooLarge(handle);
      lease = await this.sessions.acquire(handle.key, () => this.build(handle, true));
    }
    if (!lease) {
      if (this.options.policy === "auto") this.considerMerge(handle);
      return { target: { variant: this.model, mix: handle.mix, mixKey: handle.key, merged: false }, release: noop };
    }
    this.counters.hitsTotal++;
    return { target: { variant: lease.value.variant, mix: null, mixKey: handle.key, merged: true }, release: lease.release };
  }

  /** Scheduler observer: step timings feed the per-token LoRA overhead estimate. */
  onStep(observation: StepObservation): void {
    if (observation.kind !== "decode" || observation.rows === 0) return;
    const perRow = observation.ms / observation.rows;
    if (observation.mixedRows > 0) this.mixedRowMs = ewma(this.mixedRowMs, perRow);
    else this.plainRowMs = ewma(this.plainRowMs, perRow);
  }

  /** Scheduler observer: demand per mix. */
  onTokens(mixKey: string, tokens: number): void {
    if (!mixKey) return;
    const now = Date.now();
    const d = this.demand.get(mixKey);
    this.demand.set(mixKey, { rate: d ? addTokens(d.rate, d.at, now, tokens, this.tauS) : tokens / this.tauS, at: now });
    if (++this.tokenReports % SWEEP_EVERY_TOKEN_REPORTS === 0) this.forgetCold(now);
  }

  /** Bounds the books by the live mixes: drops cold demand records and expired build failures. */
  private forgetCold(now: number): void {
    for (const [key, d] of this.demand) {
      if (decayedRate(d.rate, d.at, now, this.tauS) < FORGET_BELOW_TOKENS_PER_S) this.demand.delete(key);
    }
    for (const [key, at] of this.failedAt) if (now - at >= BUILD_RETRY_AFTER_FAILURE_MS) this.failedAt.delete(key);
  }

  /** A mix's decayed demand now, tokens/s. */
  private demandNow(mixKey: string): number {
    const d = this.demand.get(mixKey);
    return d ? decayedRate(d.rate, d.at, Date.now(), this.tauS) : 0;
  }

  /** The policy check for one mix, called as its requests arrive. */
  private considerMerge(handle: MixHandle): void {
    if (this.sessions.isLoading(handle.key) || this.sessions.has(handle.key)) return;
    const failed = this.failedAt.get(handle.key);
    if (failed !== undefined && Date.now() - failed < BUILD_RETRY_AFTER_FAILURE_MS) return;
    if (!this.demand.has(handle.key)) return;
    const rate = this.demandNow(handle.key);
    const estimates = this.estimates();
    const decision = decideMerge(rate, estimates, this.horizonS, this.sessions.budgetBytes);
    if (!decision.merge) return;
    this.log("info", "merge decision: building a merged session", {
      mix: handle.key,
      demandTokensPerS: Number(rate.toFixed(2)),
      overheadMsPerToken: Number(estimates.overheadMsPerToken.toFixed(3)),
      expectedBenefitMs: Math.round(decision.benefitMs),
      expectedBuildMs: Math.round(estimates.buildMs),
    });
    // The build reads the mix after its request may have left: it holds the mix until done (mix-resolver.ts recycles released mixes).
    const release = handle.hold?.() ?? (() => {});
    void this.sessions
      .prefetch(handle.key, () => this.build(handle, false))
      .catch(() => {})
      .finally(release);
  }

  estimates(): MergeEstimates {
    return mergeEstimates({
      mixedRowMs: this.mixedRowMs,
      plainRowMs: this.plainRowMs,
      buildMs: this.buildMsEstimate,
      sessionBytes: this.sessionBytesEstimate,
    });
  }

  /** A required merge that no session can fit is the request's error (422), before any build. */
  private refuseIfTooLarge(handle: MixHandle): void {
    if (this.sessionBytesEstimate <= this.sessions.budgetBytes) return;
    const why = handle.mergeOnlyModules.length
      ? `the mix touches merge-only targets (${handle.mergeOnlyModules.slice(0, 3).join(", ")}${handle.mergeOnlyModules.length > 3 ? ", …" : ""}) that need a merged session`
      : "the merge policy requires a merged session";
    throw new EngineError(
      "unprocessable_entity_error",
      `${why}, which needs ${(this.sessionBytesEstimate / 2 ** 20).toFixed(1)} MB, more than RUNNER_MERGED_MB (${(this.sessions.budgetBytes / 2 ** 20).toFixed(1)} MB)`,
    );
  }

  /** The LRU's load for one mix (it runs once per miss, however many requests wait on it). */
  private async build(handle: MixHandle, required: boolean): Promise<MergedSession> {
    try {
      await this.sessions.makeRoom(this.sessionBytesEstimate);
      const started = performance.now();
      const variant = await this.model.createMerged(handle.mix);
      const buildMs = performance.now() - started;
      this.counters.buildsTotal++;
      this.buildMsEstimate = ewma(this.buildMsEstimate, buildMs, 0.5);
      if (variant.weightBytes > 0) this.sessionBytesEstimate = variant.weightBytes;
      this.log("info", "merged session ready", {
        mix: handle.key,
        buildMs: Math.round(buildMs),
        deltaMs: Math.round(variant.buildMs.delta),
        sessionMs: Math.round(variant.buildMs.session),
        bytes: variant.weightBytes,
        required,
      });
      return { variant, buildMs };
    } catch (e) {
      this.failedAt.set(handle.key, Date.now());
      this.counters.buildFailuresTotal++;
      this.log("error", "merged session build failed", { mix: handle.key, error: (e as Error).message });
      throw e instanceof EngineError ? e : new EngineError("internal_error", `building the merged session failed: ${(e as Error).message}`);
    }
  }

  stats(): MergeStats {
    const lru = this.sessions.stats();
    return {
      policy: this.options.policy,
      budgetBytes: lru.budgetBytes,
      bytes: lru.bytes,
      sessions: this.sessions.list().map((e) => ({ key: e.key, bytes: e.bytes, buildMs: e.value.buildMs, hits: e.leases, inUse: e.pins })),
      building: lru.loading,
      ...this.counters,
      evictionsTotal: lru.evictions,
      estimates: this.estimates(),
      trackedMixes: this.demand.size,
    };
  }

  /** Disposes every merged session (shutdown), after the builds in flight. */
  async dispose(): Promise<void> {
    await this.sessions.clear();
  }
}
