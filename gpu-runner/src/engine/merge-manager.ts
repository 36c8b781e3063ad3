/**
 * Merge on demand: per mix, track demand and decide when a dedicated merged session
 * (W′ = W + ΔW, built by the model layer with ONNX Runtime) pays for itself; keep merged
 * sessions in an LRU bounded by bytes; route requests to them.
 *
 * Policy "auto" (cost-based, all terms measured at run time):
 *   demand(mix)      = exponentially decayed generated tokens/s of the mix (τ = 10 s)
 *   overhead/token   = per-row decode ms with LoRA inputs − per-row decode ms without (EWMA)
 *   build cost       = EWMA of measured merged builds (delta + session), initially estimated
 *                      from the model's weight bytes
 *   merge when       demand · overhead · horizon ≥ build cost, and a session fits the budget.
 * "always" merges every non-empty mix before serving it; "never" only mixes that touch
 * merge-only targets (which have no per-row inputs and cannot run unmerged).
 */
import type { ComposedMix } from "#core/lora/types";
import type { BaseModel, ModelVariant } from "../model/types.js";
import { EngineError } from "./errors.js";
import type { Logger } from "./logger.js";
import { silentLogger } from "./logger.js";
import type { RowTarget, StepObservation } from "./scheduler.js";

export type MergePolicyName = "auto" | "never" | "always";

/** A request's composed mix with its identity. */
export interface MixHandle {
  /** Identity of the mix (ordered adapter shas and weights). */
  key: string;
  mix: ComposedMix;
  /** Modules of the mix that are merge-only targets of the model (non-empty ⇒ merged path required). */
  mergeOnlyModules: string[];
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

interface MergedEntry {
  key: string;
  variant: ModelVariant;
  bytes: number;
  buildMs: number;
  hits: number;
  refs: number;
  lastUsed: number;
}

interface Demand {
  rate: number;
  at: number;
  lastCheck: number;
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
  estimates: { buildMs: number; overheadMsPerToken: number; sessionBytes: number };
}

const ewma = (previous: number | null, sample: number, alpha = 0.2) =>
  previous === null ? sample : previous + alpha * (sample - previous);

const BUILD_RETRY_AFTER_FAILURE_MS = 60_000;

export class MergeManager {
  private readonly sessions = new Map<string, MergedEntry>();
  private readonly building = new Map<string, Promise<MergedEntry>>();
  private readonly failedAt = new Map<string, number>();
  private readonly demand = new Map<string, Demand>();
  private mixedRowMs: number | null = null;
  private plainRowMs: number | null = null;
  private buildMsEstimate: number | null = null;
  private sessionBytesEstimate: number;
  private readonly counters = { buildsTotal: 0, buildFailuresTotal: 0, evictionsTotal: 0, hitsTotal: 0 };
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
  }

  /**
   * Where a new request with this mix runs, plus a release to call when it leaves the batch.
   * Waits for a merged build when the mix needs one (merge-only targets, policy "always").
   */
  async target(handle: MixHandle | null): Promise<{ target: RowTarget; release: () => void }> {
    const noop = () => {};
    if (!handle) return { target: { variant: this.model, mix: null, mixKey: "", merged: false }, release: noop };
    const mustMerge = handle.mergeOnlyModules.length > 0 || this.options.policy === "always";
    let entry = this.sessions.get(handle.key);
    // A required build resolves before this continuation runs; by then another request's release
    // may have evicted the new (still unreferenced) session. Take it only while it is in the map
    // (checked and referenced in the same tick); else build again, a bounded number of times.
    for (let attempt = 0; !entry && mustMerge; attempt++) {
      if (attempt === 3) throw new EngineError("overloaded", "the merged session for this mix was evicted before it could be used; retry");
      const built = await this.build(handle, true);
      if (this.sessions.get(handle.key) === built) entry = built;
    }
    if (!entry && this.options.policy === "auto") this.considerMerge(handle);
    if (!entry) return { target: { variant: this.model, mix: handle.mix, mixKey: handle.key, merged: false }, release: noop };
    const merged = entry;
    merged.refs++;
    merged.hits++;
    merged.lastUsed = Date.now();
    this.counters.hitsTotal++;
    let released = false;
    return {
      target: { variant: merged.variant, mix: null, mixKey: handle.key, merged: true },
      release: () => {
        if (released) return;
        released = true;
        merged.refs--;
        merged.lastUsed = Date.now();
        void this.evictOverBudget();
      },
    };
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
    const d = this.demand.get(mixKey) ?? { rate: 0, at: now, lastCheck: 0 };
    d.rate = d.rate * Math.exp(-(now - d.at) / 1000 / this.tauS) + tokens / this.tauS;
    d.at = now;
    this.demand.set(mixKey, d);
  }

  /** The policy check for one mix, called as its requests arrive. */
  private considerMerge(handle: MixHandle): void {
    if (this.building.has(handle.key) || this.sessions.has(handle.key)) return;
    const failed = this.failedAt.get(handle.key);
    if (failed !== undefined && Date.now() - failed < BUILD_RETRY_AFTER_FAILURE_MS) return;
    const d = this.demand.get(handle.key);
    if (!d) return;
    const now = Date.now();
    const rate = d.rate * Math.exp(-(now - d.at) / 1000 / this.tauS);
    const { buildMs, overheadMsPerToken, sessionBytes } = this.estimates();
    if (sessionBytes > this.options.budgetBytes) return;
    const benefitMs = rate * overheadMsPerToken * this.horizonS;
    if (benefitMs < buildMs) return;
    this.log("info", "merge decision: building a merged session", {
      mix: handle.key,
      demandTokensPerS: Number(rate.toFixed(2)),
      overheadMsPerToken: Number(overheadMsPerToken.toFixed(3)),
      expectedBenefitMs: Math.round(benefitMs),
      expectedBuildMs: Math.round(buildMs),
    });
    void this.build(handle, false).catch(() => {});
  }

  estimates(): MergeStats["estimates"] {
    const buildMs = this.buildMsEstimate ?? 100 + (5 * this.sessionBytesEstimate) / 2 ** 20;
    let overheadMsPerToken = 0;
    if (this.mixedRowMs !== null) {
      overheadMsPerToken =
        this.plainRowMs !== null ? Math.max(0, this.mixedRowMs - this.plainRowMs) : 0.2 * this.mixedRowMs;
    }
    return { buildMs, overheadMsPerToken, sessionBytes: this.sessionBytesEstimate };
  }

  /** Builds (single-flight) the merged session of a mix; `required` turns refusals into request errors. */
  private build(handle: MixHandle, required: boolean): Promise<MergedEntry> {
    const inFlight = this.building.get(handle.key);
    if (inFlight) return inFlight;
    if (this.sessionBytesEstimate > this.options.budgetBytes) {
      const why = handle.mergeOnlyModules.length
        ? `the mix touches merge-only targets (${handle.mergeOnlyModules.slice(0, 3).join(", ")}${handle.mergeOnlyModules.length > 3 ? ", …" : ""}) that need a merged session`
        : "the merge policy requires a merged session";
      return Promise.reject(
        new EngineError(
          "unprocessable_entity_error",
          `${why}, which needs ${(this.sessionBytesEstimate / 2 ** 20).toFixed(1)} MB, more than RUNNER_MERGED_MB (${(this.options.budgetBytes / 2 ** 20).toFixed(1)} MB)`,
        ),
      );
    }
    const promise = (async () => {
      await this.evictOverBudget(this.sessionBytesEstimate);
      const started = performance.now();
      const variant = await this.model.createMerged(handle.mix);
      const buildMs = performance.now() - started;
      const entry: MergedEntry = {
        key: handle.key,
        variant,
        bytes: variant.weightBytes,
        buildMs,
        hits: 0,
        refs: 0,
        lastUsed: Date.now(),
      };
      this.sessions.set(handle.key, entry);
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
      await this.evictOverBudget(0, entry);
      return entry;
    })();
    this.building.set(handle.key, promise);
    promise.then(
      () => this.building.delete(handle.key),
      (e: unknown) => {
        this.building.delete(handle.key);
        this.failedAt.set(handle.key, Date.now());
        this.counters.buildFailuresTotal++;
        this.log("error", "merged session build failed", { mix: handle.key, error: (e as Error).message });
      },
    );
    return promise.catch((e: unknown) => {
      throw e instanceof EngineError
        ? e
        : new EngineError("internal_error", `building the merged session failed: ${(e as Error).message}`);
    });
  }

  private bytes(): number {
    let total = 0;
    for (const e of this.sessions.values()) total += e.bytes;
    return total;
  }

  /**
   * Disposes least-recently-used idle sessions until `incoming` more bytes fit the budget
   * (never `keep`: a session just built for a waiting request).
   */
  private async evictOverBudget(incoming = 0, keep?: MergedEntry): Promise<void> {
    const idle = [...this.sessions.values()]
      .filter((e) => e.refs === 0 && e !== keep)
      .sort((a, b) => a.lastUsed - b.lastUsed);
    for (const entry of idle) {
      if (this.bytes() + incoming <= this.options.budgetBytes) break;
      // Already evicted by a concurrent call, or taken by a request, since `idle` was listed
      // (this loop awaits each dispose).
      if (this.sessions.get(entry.key) !== entry || entry.refs > 0) continue;
      this.sessions.delete(entry.key);
      this.counters.evictionsTotal++;
      this.log("info", "merged session evicted", { mix: entry.key, bytes: entry.bytes, hits: entry.hits });
      await this.disposeVariant(entry);
    }
  }

  /** Releases a session that left the map; a failure is logged, never thrown into a build or a request's release. */
  private async disposeVariant(entry: MergedEntry): Promise<void> {
    try {
      await entry.variant.dispose();
    } catch (e) {
      this.log("error", "merged session dispose failed", { mix: entry.key, error: (e as Error).message });
    }
  }

  stats(): MergeStats {
    return {
      policy: this.options.policy,
      budgetBytes: this.options.budgetBytes,
      bytes: this.bytes(),
      sessions: [...this.sessions.values()].map((e) => ({
        key: e.key,
        bytes: e.bytes,
        buildMs: e.buildMs,
        hits: e.hits,
        inUse: e.refs,
      })),
      building: this.building.size,
      ...this.counters,
      estimates: this.estimates(),
    };
  }

  /** Disposes every merged session (shutdown). */
  async dispose(): Promise<void> {
    await Promise.allSettled([...this.building.values()]);
    for (const entry of this.sessions.values()) await this.disposeVariant(entry);
    this.sessions.clear();
  }
}
