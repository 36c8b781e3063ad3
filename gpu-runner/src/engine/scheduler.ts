/**
 * Continuous batching over one base model.
 *
 * Requests wait in a bounded FIFO queue and join the running batch at token boundaries
 * while the batch has a free row and the token budget (Σ prompt + max_tokens over running
 * rows, which bounds KV-cache memory) allows, oldest first (time-to-first-token stays FIFO-fair).
 * Each iteration runs one prefill step (the oldest prefilling rows, each appending at most
 * `prefillChunk` prompt tokens) and one decode step (every decoding row appends its last token).
 * While rows are decoding, the prefill step takes what Sarathi-Serve's per-iteration token budget
 * leaves after one token per decoding row, or ¾ of a decode step's worth of prompt tokens (measured
 * costs), whichever is more, the former capped at 2 decode steps' time (`prefillBudget`): a running
 * stream waits at most one bounded prefill step between two of its tokens, however many prompts arrive, and a burst beside a few young
 * streams is still admitted quickly. A burst that arrives while nothing decodes (requests submitted in one turn of the event
 * loop: the loop starts on the next turn, so they are admitted together) is prefilled at the full budget: its rows that
 * already decode are its own, and they wait one prefill step of ≤ prefillTokens between tokens, as when nothing decoded.
 * Rows are grouped by model variant (base model with per-row
 * mixes, or a merged session): each group is one `step` call, one ONNX run. Rows leave as soon as
 * they finish or their client goes away.
 */
import type { ComposedMix } from "#core/lora/types";
import type { KvCache, ModelVariant, StepRow } from "../model/types.js";
import { EngineError } from "./errors.js";
import { assessLiveness, type Liveness, type SchedulerProgress } from "./liveness.js";
import type { GenerationResult, Sequence } from "./sequence.js";

export interface SchedulerLimits {
  maxBatch: number;
  maxTokens: number;
  maxQueue: number;
  prefillChunk: number;
  /** Prompt tokens one prefill step takes over all rows (default 4 × prefillChunk); at least one row always runs. */
  prefillTokens?: number;
  /** Tokens per iteration (decode rows + prompt tokens) while rows decode, Sarathi-Serve's token budget (default maxBatch); see prefillBudget. Internal: the runner does not expose it (it runs with maxBatch). */
  stepTokens?: number;
}

/** Smallest prefill budget while rows decode (tokens): below this, prefill steps are mostly overhead. */
export const MIN_PREFILL_TOKENS = 16;

/** While rows decode, a prefill step may cost this share of a decode step (measured costs), besides what the iteration token budget leaves. */
export const PREFILL_SHARE_OF_DECODE = 0.75;

/** While rows decode, what the iteration token budget leaves for prompts may cost at most this many decode steps (measured costs). */
export const PREFILL_REST_MAX_DECODES = 2;

/**
 * Prompt tokens the next prefill step may take.
 * Semantics: no decoding rows → `limits.prefillTokens` (default 4 × chunk): nothing to protect, TTFT first.
 * Decoding rows → clamp(max(rest, ⌊PREFILL_SHARE_OF_DECODE × decodeMs ÷ prefillMsPerToken⌋), MIN_PREFILL_TOKENS,
 * prefillTokens) with rest = min(stepTokens − decodingRows, ⌊PREFILL_REST_MAX_DECODES × decodeMs ÷ prefillMsPerToken⌋):
 * Sarathi-Serve's per-iteration token budget (`stepTokens`, default maxBatch), decode rows taking one token each
 * first, prompts the rest, so a burst arriving beside a few young streams is admitted quickly — capped in time
 * so that at low concurrency (few rows, cheap decode) the rest still costs ≤ 2 decode steps; and at least ¾ of a
 * decode step's worth of prompt tokens, so a full batch still admits (its gap stays ≤ 1.75 decode steps). With
 * measurements a stream's gap is thus ≤ one decode step + one prefill step of ≤ 2 decode steps' time (or the
 * MIN_PREFILL_TOKENS floor). Decoding rows, nothing measured yet → one chunk for the time term, rest uncapped.
 */
export function prefillBudget(limits: SchedulerLimits, decodingRows: number, decodeMs: number | null, prefillMsPerToken: number | null): number {
  const max = limits.prefillTokens ?? 4 * limits.prefillChunk;
  if (decodingRows === 0) return max;
  const measured = decodeMs !== null && prefillMsPerToken !== null && prefillMsPerToken > 0;
  const byTime = measured ? Math.floor((PREFILL_SHARE_OF_DECODE * decodeMs) / prefillMsPerToken) : limits.prefillChunk;
  const tokensLeft = (limits.stepTokens ?? limits.maxBatch) - decodingRows;
  const rest = measured ? Math.min(tokensLeft, Math.floor((PREFILL_REST_MAX_DECODES * decodeMs) / prefillMsPerToken)) : tokensLeft;
  return Math.max(Math.min(MIN_PREFILL_TOKENS, max), Math.min(max, Math.max(rest, byTime)));
}

/** Weight of the newest sample in the step-time averages. */
const EWMA_ALPHA = 0.3;

/** Where a row runs: the base model with its own mix, or a merged session (mix null). */
export interface RowTarget {
  variant: ModelVariant;
  mix: ComposedMix | null;
  /** Mix identity for demand accounting ("" = base model). */
  mixKey: string;
  merged: boolean;
}

export interface Job {
  sequence: Sequence;
  target: RowTarget;
  signal?: AbortSignal;
  /** Called exactly once when the job leaves the scheduler (finished, failed or aborted). */
  release?: () => void;
}

export interface StepObservation {
  kind: "prefill" | "decode";
  rows: number;
  /** Rows carrying a per-row mix (unmerged LoRA inputs). */
  mixedRows: number;
  tokens: number;
  ms: number;
  merged: boolean;
}

export interface SchedulerObserver {
  onStep?(observation: StepObservation): void;
  /** Tokens generated for a mix (demand signal for merge-on-demand). */
  onTokens?(mixKey: string, tokens: number): void;
}

export interface SchedulerStats {
  queued: number;
  running: number;
  maxBatch: number;
  /** Σ (prompt + max_tokens) over running rows. */
  reservedTokens: number;
  promptTokensTotal: number;
  completionTokensTotal: number;
  stepsTotal: { prefill: number; decode: number };
  rejectedTotal: { queue_full: number; draining: number };
  abortedTotal: number;
  /** Generated tokens per second over the last 10 s. */
  tokensPerSecond: number;
}

interface Entry {
  job: Job;
  cost: number;
  cache: KvCache | null;
  aborted: boolean;
  resolve(result: GenerationResult): void;
  reject(error: unknown): void;
  onAbort?: () => void;
}

export class AbortedError extends Error {
  override readonly name = "AbortedError";
}

const THROUGHPUT_WINDOW_MS = 10_000;

export class Scheduler {
  private readonly waiting: Entry[] = [];
  private readonly running: Entry[] = [];
  /**
   * The rows admitted while nothing decoded (a burst), while some of them still prefill: they take the full
   * prefill budget beside decoding rows of their own burst (`prefillSelection`); null otherwise.
   */
  private burst: Set<Entry> | null = null;
  private looping = false;
  /** A loop start is scheduled for the next turn of the event loop (`submit`). */
  private starting = false;
  private draining = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly recent: { at: number; tokens: number }[] = [];
  private readonly counters = {
    promptTokensTotal: 0,
    completionTokensTotal: 0,
    stepsTotal: { prefill: 0, decode: 0 },
    rejectedTotal: { queue_full: 0, draining: 0 },
    abortedTotal: 0,
  };

  /** Averages of the decode step time (ms) and of the prefill time per prompt token (ms), null until measured. */
  private decodeMs: number | null = null;
  private prefillMsPerToken: number | null = null;
  /** What liveness is judged from (engine/liveness.ts), on the scheduler's clock. */
  private readonly progress: SchedulerProgress = { lastStepAt: null, busySince: null };

  constructor(
    private readonly vocabSize: number,
    readonly limits: SchedulerLimits,
    private readonly observer: SchedulerObserver = {},
    /** Milliseconds (tests inject a model-driven clock). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Queues a job. Throws (synchronously, before anything is queued) EngineError 429 (queue
   * full) or 503 (draining) carrying Retry-After, 400 when the job alone exceeds the token
   * budget. The returned promise resolves with the finished generation, or rejects with
   * AbortedError when the job's signal fires or EngineError 500 when the model fails.
   */
  submit(job: Job): Promise<GenerationResult> {
    const params = job.sequence.params;
    const cost = params.promptIds.length + params.maxTokens;
    try {
      if (this.draining) {
        this.counters.rejectedTotal.draining++;
        throw new EngineError("service_unavailable_error", "the runner is shutting down", 5);
      }
      if (cost > this.limits.maxTokens) {
        throw new EngineError(
          "invalid_request_error",
          `prompt (${params.promptIds.length}) + max_tokens (${params.maxTokens}) = ${cost} tokens exceeds this runner's token budget of ${this.limits.maxTokens} by ${cost - this.limits.maxTokens}`,
        );
      }
      if (job.signal?.aborted) throw new AbortedError("client went away before the request was queued");
      if (!job.sequence.needsModel) {
        job.release?.();
        return Promise.resolve(job.sequence.result());
      }
      if (this.waiting.length >= this.limits.maxQueue && !this.fitsNow(cost)) {
        this.counters.rejectedTotal.queue_full++;
        throw new EngineError(
          "overloaded",
          `the runner's queue is full (${this.waiting.length} waiting, ${this.running.length} running)`,
          this.retryAfterS(),
        );
      }
    } catch (e) {
      job.release?.();
      throw e;
    }
    return new Promise<GenerationResult>((resolve, reject) => {
      const entry: Entry = { job, cost, cache: null, aborted: false, resolve, reject };
      if (job.signal) {
        entry.onAbort = () => this.abort(entry);
        job.signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      if (this.idle) this.progress.busySince = this.now();
      this.waiting.push(entry);
      // Before the loop runs, a free row takes the request at once (the queue holds only what waits for a row).
      if (!this.looping) this.admit();
      this.startLoop();
    });
  }

  /** Requests queued + running now (the load a runner reports to the edge; cheaper than stats()). */
  get inFlight(): number {
    return this.waiting.length + this.running.length;
  }

  /**
   * Whether this engine makes progress on the work it holds (engine/liveness.ts): stalled when it
   * has work and no model step returned for more than `stallLimitMs` (0: never stalled).
   */
  liveness(stallLimitMs: number): Liveness {
    return assessLiveness(this.progress, this.now(), stallLimitMs);
  }

  stats(): SchedulerStats {
    return {
      queued: this.waiting.length,
      running: this.running.filter((e) => !e.aborted).length,
      maxBatch: this.limits.maxBatch,
      reservedTokens: this.reservedTokens(),
      ...structuredClone(this.counters),
      tokensPerSecond: this.tokensPerSecond(),
    };
  }

  /**
   * Graceful stop: refuse new jobs, let queued and running ones finish for up to `timeoutMs`,
   * then end running rows (finish_reason "length") and fail the still-queued ones with 503.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    if (this.idle) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const outcome = await Promise.race([this.whenIdle(), timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      for (const entry of this.waiting.splice(0)) {
        this.settle(entry, new EngineError("service_unavailable_error", "the runner shut down before this request ran", 5));
      }
      for (const entry of this.running) entry.job.sequence.truncate();
      this.reap();
    }
  }

  private get idle(): boolean {
    return this.waiting.length === 0 && this.running.length === 0;
  }

  private whenIdle(): Promise<void> {
    return this.idle ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  private reservedTokens(): number {
    return this.running.reduce((n, e) => n + e.cost, 0);
  }

  private fitsNow(cost: number): boolean {
    return (
      this.waiting.length === 0 &&
      this.running.length < this.limits.maxBatch &&
      this.reservedTokens() + cost <= this.limits.maxTokens
    );
  }

  private tokensPerSecond(): number {
    const now = Date.now();
    while (this.recent.length && now - this.recent[0]!.at > THROUGHPUT_WINDOW_MS) this.recent.shift();
    const tokens = this.recent.reduce((n, r) => n + r.tokens, 0);
    return tokens / (THROUGHPUT_WINDOW_MS / 1000);
  }

  /** Seconds until the queue has likely drained at the measured token rate (1..60). */
  private retryAfterS(): number {
    const queuedTokens = this.waiting.reduce((n, e) => n + e.cost, 0) + this.reservedTokens();
    const rate = Math.max(this.tokensPerSecond(), 1);
    return Math.min(60, Math.max(1, Math.ceil(queuedTokens / rate)));
  }

  private abort(entry: Entry): void {
    if (entry.aborted) return;
    entry.aborted = true;
    this.counters.abortedTotal++;
    const queued = this.waiting.indexOf(entry);
    if (queued >= 0) {
      this.waiting.splice(queued, 1);
      this.settle(entry, new AbortedError("client went away"));
      this.checkIdle();
    }
    // A running row is removed at the next token boundary (a step in flight cannot be cancelled).
  }

  private settle(entry: Entry, error: unknown | null): void {
    if (entry.onAbort) entry.job.signal?.removeEventListener("abort", entry.onAbort);
    try {
      entry.job.release?.();
    } finally {
      if (error === null) entry.resolve(entry.job.sequence.result());
      else entry.reject(error);
    }
  }

  private admit(): void {
    let reserved = this.reservedTokens();
    while (this.waiting.length && this.running.length < this.limits.maxBatch) {
      const next = this.waiting[0]!;
      if (reserved + next.cost > this.limits.maxTokens && this.running.length > 0) break;
      this.waiting.shift();
      this.running.push(next);
      reserved += next.cost;
    }
  }

  /** Takes an entry out of the running batch; false when it was not there. */
  private remove(entry: Entry): boolean {
    const at = this.running.indexOf(entry);
    if (at < 0) return false;
    this.running.splice(at, 1);
    return true;
  }

  /** Removes finished and aborted rows from the batch. */
  private reap(): void {
    for (let i = this.running.length - 1; i >= 0; i--) {
      const entry = this.running[i]!;
      if (entry.aborted) {
        this.running.splice(i, 1);
        this.settle(entry, new AbortedError("client went away"));
      } else if (entry.job.sequence.finished) {
        this.running.splice(i, 1);
        this.settle(entry, null);
      }
    }
    this.checkIdle();
  }

  private checkIdle(): void {
    if (!this.idle) return;
    this.progress.busySince = null;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /**
   * Starts the loop on the next turn of the event loop (setImmediate), not inside `submit`: every request
   * submitted in this turn (a burst) is then admitted by the first iteration together, not the first alone.
   */
  private startLoop(): void {
    if (this.looping || this.starting) return;
    this.starting = true;
    setImmediate(() => {
      this.starting = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    try {
      for (;;) {
        this.reap();
        this.admit();
        if (this.running.length === 0) break;
        const prefilling = this.prefillSelection();
        if (prefilling.size) await this.step([...prefilling.keys()], "prefill", prefilling);
        this.reap();
        const decoding = this.running.filter(
          (e) => !e.aborted && e.job.sequence.prefillDone && !e.job.sequence.finished,
        );
        if (decoding.length) await this.step(decoding, "decode");
        // Let the HTTP server accept new requests and notice disconnects between steps.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.looping = false;
      this.checkIdle();
    }
  }

  /**
   * The oldest prefilling rows and their chunk sizes within this step's budget (prefillBudget): each
   * row takes min(prefillChunk, what is left of its prompt, what is left of the budget); at least one
   * row runs (its chunk cut to the budget).
   */
  private prefillSelection(): Map<Entry, number> {
    const isDecoding = (e: Entry) => !e.aborted && e.job.sequence.prefillDone && !e.job.sequence.finished;
    const isPrefilling = (e: Entry) => !e.aborted && !e.job.sequence.prefillDone;
    const decodingRows = this.running.filter(isDecoding);
    if (decodingRows.length === 0) this.burst = new Set(this.running.filter(isPrefilling));
    else if (this.burst && ![...this.burst].some((e) => isPrefilling(e) && this.running.includes(e))) this.burst = null;
    // Rows of the burst being prefilled are not protected from it: they wait one full prefill step, as before they decoded.
    const burst = this.burst;
    const decoding = burst ? decodingRows.filter((e) => !burst.has(e)).length : decodingRows.length;
    const budget = prefillBudget(this.limits, decoding, this.decodeMs, this.prefillMsPerToken);
    const chosen = new Map<Entry, number>();
    let tokens = 0;
    for (const e of this.running) {
      const sequence = e.job.sequence;
      if (e.aborted || sequence.prefillDone) continue;
      const n = Math.min(this.limits.prefillChunk, sequence.params.promptIds.length - sequence.promptPos, budget - tokens);
      if (n <= 0) break;
      chosen.set(e, n);
      tokens += n;
    }
    return chosen;
  }

  private observeStep(kind: "prefill" | "decode", ms: number, tokens: number): void {
    const mix = (old: number | null, sample: number) => (old === null ? sample : old + EWMA_ALPHA * (sample - old));
    if (kind === "decode") this.decodeMs = mix(this.decodeMs, ms);
    else if (tokens > 0) this.prefillMsPerToken = mix(this.prefillMsPerToken, ms / tokens);
  }

  /** One step over the given rows: one `step` call per (variant, allLogits) group; `chunks`: prompt tokens per prefilling row. */
  private async step(entries: Entry[], kind: "prefill" | "decode", chunks?: Map<Entry, number>): Promise<void> {
    const started = this.now();
    let stepTokens = 0;
    try {
      stepTokens = await this.stepGroups(entries, kind, chunks);
    } finally {
      this.observeStep(kind, this.now() - started, stepTokens);
    }
  }

  private async stepGroups(entries: Entry[], kind: "prefill" | "decode", chunks?: Map<Entry, number>): Promise<number> {
    let stepTokens = 0;
    const groups = new Map<string, { variant: ModelVariant; allLogits: boolean; entries: Entry[] }>();
    const variantIds = new Map<ModelVariant, number>();
    for (const entry of entries) {
      const variant = entry.job.target.variant;
      if (!variantIds.has(variant)) variantIds.set(variant, variantIds.size);
      const allLogits = kind === "prefill" && entry.job.sequence.wantsPromptLogprobs;
      const key = `${variantIds.get(variant)}:${allLogits}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { variant, allLogits, entries: [] }));
      group.entries.push(entry);
    }
    for (const group of groups.values()) {
      const rows: StepRow[] = group.entries.map((e) => ({
        tokens: e.job.sequence.nextTokens(chunks?.get(e) ?? this.limits.prefillChunk),
        cache: e.cache,
        mix: e.job.target.mix,
      }));
      const started = performance.now();
      let results;
      try {
        results = await group.variant.step(rows, { allLogits: group.allLogits });
      } catch (e) {
        this.progress.lastStepAt = this.now();
        const error = new EngineError("internal_error", `model step failed: ${(e as Error).message}`);
        for (const entry of group.entries) if (this.remove(entry)) this.settle(entry, error);
        continue;
      }
      const ms = performance.now() - started;
      this.progress.lastStepAt = this.now();
      let tokens = 0;
      let generated = 0;
      group.entries.forEach((entry, i) => {
        const result = results[i]!;
        const sequence = entry.job.sequence;
        // Ended while the step ran (drain timeout): its result is already settled.
        if (sequence.finished || !this.running.includes(entry)) return;
        const before = sequence.generated.length;
        entry.cache = result.cache;
        tokens += rows[i]!.tokens.length;
        if (kind === "prefill") this.counters.promptTokensTotal += rows[i]!.tokens.length;
        try {
          sequence.accept(result.logits, rows[i]!.tokens.length, this.vocabSize);
        } catch (e) {
          if (this.remove(entry)) this.settle(entry, new EngineError("internal_error", (e as Error).message));
          return;
        }
        const made = sequence.generated.length - before;
        generated += made;
        if (made) this.observer.onTokens?.(entry.job.target.mixKey, made);
      });
      stepTokens += tokens;
      this.counters.completionTokensTotal += generated;
      this.counters.stepsTotal[kind]++;
      if (generated) this.recent.push({ at: Date.now(), tokens: generated });
      this.observer.onStep?.({
        kind,
        rows: rows.length,
        mixedRows: rows.filter((r) => r.mix !== null).length,
        tokens,
        ms,
        merged: group.entries[0]!.job.target.merged,
      });
    }
    return stepTokens;
  }
}
