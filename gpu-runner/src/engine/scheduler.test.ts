// Ordering, admission and backpressure of the scheduler. The model here is a test double
// (a counter: next token = last token + 1), allowed for these tests only; numerical
// correctness of batching is tested end to end against the real model (test/e2e/runner-*.test.ts).
import { describe, expect, it } from "vitest";
import { samplingParamsSchema } from "#core/wire/sampling";
import { createByteTokenizer } from "../tokenizer/index.js";
import type { KvCache, ModelVariant, StepOptions, StepRow, StepRowResult } from "../model/types.js";
import { EngineError } from "./errors.js";
import { AbortedError, MIN_PREFILL_TOKENS, PREFILL_REST_MAX_DECODES, PREFILL_SHARE_OF_DECODE, prefillBudget, Scheduler, type SchedulerLimits } from "./scheduler.js";
import { Sequence, type GenerationParams } from "./sequence.js";

const V = 258;
const tokenizer = createByteTokenizer();

class CounterModel implements ModelVariant {
  readonly weightBytes = 0;
  readonly calls: { rows: number; tokens: number[] }[] = [];
  gate: Promise<void> | null = null;
  async step(rows: readonly StepRow[], options: StepOptions = {}): Promise<StepRowResult[]> {
    this.calls.push({ rows: rows.length, tokens: rows.map((r) => r.tokens.length) });
    if (this.gate) await this.gate;
    await new Promise((r) => setTimeout(r, 1));
    return rows.map((row) => {
      const n = options.allLogits ? row.tokens.length : 1;
      const logits = new Float32Array(n * V);
      for (let i = 0; i < n; i++) {
        const token = row.tokens[row.tokens.length - n + i]!;
        logits[i * V + ((token + 1) % 256)] = 10;
      }
      const cache: KvCache = { length: (row.cache?.length ?? 0) + row.tokens.length, bytes: 0 };
      return { logits, cache };
    });
  }
  async dispose() {}
}

/** A counter model whose steps advance a model-driven clock: a decode step costs 40 units, a prefill step 1 unit per prompt token. */
function timedModel(): { model: CounterModel; clock: { now: number } } {
  const clock = { now: 0 };
  class TimedModel extends CounterModel {
    override async step(rows: readonly StepRow[], options: StepOptions = {}): Promise<StepRowResult[]> {
      clock.now += rows.every((r) => r.tokens.length === 1) ? 40 : rows.reduce((n, r) => n + r.tokens.length, 0);
      return super.step(rows, options);
    }
  }
  return { model: new TimedModel(), clock };
}

function params(prompt: string, maxTokens: number, extra: Partial<GenerationParams> = {}): GenerationParams {
  return {
    promptIds: tokenizer.encode(prompt),
    promptText: prompt,
    maxTokens,
    sampling: samplingParamsSchema.parse({ temperature: 0 }),
    seed: 1,
    stop: [],
    echo: false,
    ignoreEos: false,
    logprobs: null,
    ...extra,
  };
}

function setup(limits: Partial<SchedulerLimits> = {}) {
  const model = new CounterModel();
  const scheduler = new Scheduler(V, { maxBatch: 4, maxTokens: 10_000, maxQueue: 8, prefillChunk: 4, ...limits });
  const target = { variant: model, mix: null, mixKey: "", merged: false };
  const submit = (p: GenerationParams, signal?: AbortSignal) => {
    let released = 0;
    const promise = scheduler.submit({ sequence: new Sequence(p, tokenizer), target, signal, release: () => released++ });
    return { promise, released: () => released };
  };
  return { model, scheduler, submit };
}

describe("Scheduler", () => {
  it("generates, chunks long prompts and reports usage", async () => {
    const { model, submit } = setup();
    const { promise, released } = submit(params("abcdefghij", 3));
    const result = await promise;
    expect(result.text).toBe("klm");
    expect(result).toMatchObject({ promptTokens: 10, completionTokens: 3, finishReason: "length" });
    // Prefill in chunks of ≤ 4 tokens: 4 + 4 + 2, then decodes of 1.
    expect(model.calls.map((c) => c.tokens[0])).toEqual([4, 4, 2, 1, 1]);
    expect(released()).toBe(1);
  });

  it("stops on a stop string and does not return it", async () => {
    const { submit } = setup();
    const result = await submit(params("a", 10, { stop: ["de"] })).promise;
    expect(result).toMatchObject({ text: "bc", finishReason: "stop", completionTokens: 4 });
  });

  it("never runs more rows than max_batch; a long prompt does not stall running decodes", async () => {
    const { model, submit } = setup({ maxBatch: 2 });
    const jobs = [submit(params("a", 6)), submit(params("x".repeat(40), 2)), submit(params("b", 2))];
    const results = await Promise.all(jobs.map((j) => j.promise));
    expect(results.map((r) => r.completionTokens)).toEqual([6, 2, 2]);
    expect(Math.max(...model.calls.map((c) => c.rows))).toBeLessThanOrEqual(2);
    // While the 40-token prompt prefills (10 chunks), row "a" keeps decoding: it finishes before the long prompt's prefill ends.
    const prefillChunks = model.calls.filter((c) => c.tokens.some((t) => t > 1)).length;
    expect(prefillChunks).toBeGreaterThanOrEqual(10);
  });

  it("queue full → 429 with Retry-After, thrown before anything is queued", async () => {
    const { model, submit } = setup({ maxBatch: 1, maxQueue: 1 });
    let open!: () => void;
    model.gate = new Promise((r) => (open = r));
    const first = submit(params("a", 2));
    const second = submit(params("b", 2));
    let refused: unknown;
    try {
      submit(params("c", 2));
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(EngineError);
    expect((refused as EngineError).status).toBe(429);
    expect((refused as EngineError).retryAfterS).toBeGreaterThanOrEqual(1);
    open();
    model.gate = null;
    await Promise.all([first.promise, second.promise]);
  });

  it("a request larger than the token budget is refused with 400 saying by how much", () => {
    const { submit } = setup({ maxTokens: 20 });
    expect(() => submit(params("abcdef", 20))).toThrow(/exceeds this runner's token budget of 20 by 6/);
  });

  it("the token budget holds requests in the queue until rows finish", async () => {
    const { model, scheduler, submit } = setup({ maxTokens: 12, maxBatch: 8 });
    const jobs = [submit(params("ab", 8)), submit(params("cd", 8))];
    await new Promise((r) => setTimeout(r, 0));
    expect(scheduler.stats().running).toBe(1);
    expect(scheduler.stats().queued).toBe(1);
    await Promise.all(jobs.map((j) => j.promise));
    expect(Math.max(...model.calls.map((c) => c.rows))).toBe(1);
  });

  it("an aborted running request frees its row at the next token boundary; a queued one leaves at once", async () => {
    const { scheduler, submit } = setup({ maxBatch: 1 });
    const running = new AbortController();
    const queued = new AbortController();
    const a = submit(params("a", 200), running.signal);
    const b = submit(params("b", 200), queued.signal);
    await new Promise((r) => setTimeout(r, 20));
    queued.abort();
    await expect(b.promise).rejects.toBeInstanceOf(AbortedError);
    expect(scheduler.stats().queued).toBe(0);
    running.abort();
    await expect(a.promise).rejects.toBeInstanceOf(AbortedError);
    expect(a.released()).toBe(1);
    expect(scheduler.stats().running).toBe(0);
    const after = await submit(params("c", 2)).promise;
    expect(after.text).toBe("de");
  });

  it("drain: finishes running work, refuses new work with 503", async () => {
    const { scheduler, submit } = setup();
    const job = submit(params("a", 5));
    const drained = scheduler.drain(10_000);
    expect(() => submit(params("b", 1))).toThrow(EngineError);
    await drained;
    expect((await job.promise).completionTokens).toBe(5);
  });

  it("drain timeout ends running rows with what they have", async () => {
    const { scheduler, submit } = setup();
    const job = submit(params("a", 1000));
    await new Promise((r) => setTimeout(r, 10));
    await scheduler.drain(30);
    const result = await job.promise;
    expect(result.finishReason).toBe("length");
    expect(result.completionTokens).toBeLessThan(1000);
  });

  it("a failing model step fails only the rows of that step with a 500; the scheduler keeps serving", async () => {
    const { model, submit } = setup();
    const step = model.step.bind(model);
    let failures = 1;
    model.step = async (rows, options) => {
      if (failures-- > 0) throw new Error("ORT exploded");
      return step(rows, options);
    };
    await expect(submit(params("a", 3)).promise).rejects.toMatchObject({ status: 500, message: expect.stringMatching(/ORT exploded/) });
    expect((await submit(params("a", 3)).promise).text).toBe("bcd");
  });

  it("liveness: stalled while a step hangs past the limit with work held; a returned (or failed) step is progress; idle is live", async () => {
    let clock = 0;
    const model = new CounterModel();
    const scheduler = new Scheduler(V, { maxBatch: 4, maxTokens: 10_000, maxQueue: 8, prefillChunk: 4 }, {}, () => clock);
    const target = { variant: model, mix: null, mixKey: "", merged: false };
    const run = (p: GenerationParams) => scheduler.submit({ sequence: new Sequence(p, tokenizer), target });
    clock = 1_000_000; // long idle before the first request
    expect(scheduler.liveness(1_000)).toMatchObject({ busy: false, stalled: false, lastStepAgeMs: null });

    let open!: () => void;
    model.gate = new Promise((r) => (open = r));
    const job = run(params("abc", 2));
    await new Promise((r) => setTimeout(r, 5)); // the first step is in flight, held by the gate
    expect(model.calls.length).toBe(1);
    clock += 1_000;
    expect(scheduler.liveness(1_000)).toMatchObject({ busy: true, noProgressMs: 1_000, stalled: false });
    clock += 1;
    expect(scheduler.liveness(1_000).stalled).toBe(true);
    expect(scheduler.liveness(0).stalled).toBe(false);
    // A second request queued behind the hung step changes nothing: the engine still made no progress.
    const queued = run(params("x", 1));
    expect(scheduler.liveness(1_000)).toMatchObject({ stalled: true, noProgressMs: 1_001 });

    model.gate = null;
    open();
    await Promise.all([job, queued]);
    expect(scheduler.liveness(1_000)).toMatchObject({ busy: false, stalled: false, lastStepAgeMs: 0 });

    // Idle for long, then busy again: counted from the new work, not from the old last step.
    clock += 60_000;
    let fail!: (e: Error) => void;
    model.gate = new Promise((_, reject) => (fail = reject));
    const later = run(params("d", 1));
    await new Promise((r) => setTimeout(r, 5));
    expect(scheduler.liveness(1_000)).toMatchObject({ busy: true, lastStepAgeMs: 60_000, noProgressMs: 0, stalled: false });
    clock += 5_000;
    expect(scheduler.liveness(1_000).stalled).toBe(true);
    // A step that throws returned: progress (its rows fail with a 500).
    model.gate = null;
    fail(new Error("ORT exploded"));
    await expect(later).rejects.toMatchObject({ status: 500 });
    expect(scheduler.liveness(1_000)).toMatchObject({ busy: false, stalled: false, lastStepAgeMs: 0 });
  });

  it("a prefill step takes at most prefillTokens prompt tokens, oldest rows first", async () => {
    const { model, submit } = setup({ maxBatch: 8, prefillChunk: 4, prefillTokens: 8 });
    const jobs = ["aaaaaaaa", "bbbbbbbb", "cccccccc", "d"].map((p) => submit(params(p, 1)));
    await Promise.all(jobs.map((j) => j.promise));
    const stepTokens = model.calls.map((c) => c.tokens.reduce((a, b) => a + b, 0));
    expect(Math.max(...stepTokens)).toBe(8);
    // The budget is full with two 4-token chunks: c and d wait for a later step.
    expect(model.calls.some((c) => c.tokens.length === 2 && c.tokens.every((t) => t === 4))).toBe(true);
    expect(model.calls.every((c) => c.tokens.filter((t) => t > 1).length <= 2)).toBe(true);
  });
  it("prefillBudget: the full budget with nothing decoding; while rows decode, what the iteration's token budget leaves or ¾ of a decode step's worth, whichever is more", () => {
    const limits = { maxBatch: 8, maxTokens: 1e4, maxQueue: 8, prefillChunk: 128, prefillTokens: 512 };
    expect(prefillBudget(limits, 0, 100, 1)).toBe(512);
    expect(prefillBudget(limits, 4, null, null)).toBe(128); // nothing measured yet: one chunk
    expect(prefillBudget(limits, 4, 100, 2)).toBe(37); // ⌊0.75 × 100 / 2⌋ > 8 − 4 left by the token budget
    expect(prefillBudget(limits, 4, 100, 50)).toBe(MIN_PREFILL_TOKENS);
    expect(prefillBudget(limits, 4, 1e6, 1)).toBe(512);
    // Sarathi's iteration budget (stepTokens): decode rows take one token each, prompts the rest.
    const sarathi = { ...limits, stepTokens: 64 };
    expect(prefillBudget(sarathi, 4, 100, 2)).toBe(60); // 64 − 4 > 37
    expect(prefillBudget(sarathi, 40, 100, 2)).toBe(37); // 64 − 40 < 37
    expect(prefillBudget(sarathi, 64, 100, 50)).toBe(MIN_PREFILL_TOKENS); // a full batch still admits
    expect(prefillBudget({ ...sarathi, stepTokens: 4096 }, 1, 1000, 2)).toBe(512); // never above prefillTokens (4095 left, capped at ⌊2 × 1000 / 2⌋ = 1000)
    expect(prefillBudget({ ...sarathi, stepTokens: 4096 }, 1, null, null)).toBe(512); // nothing measured: the token budget alone, never above prefillTokens
    // Low concurrency, cheap decode: what the token budget leaves is capped at 2 decode steps' time.
    // 4 rows, 20 ms per decode step, 2 ms per prompt token: 64 − 4 = 60 tokens would cost 120 ms (6 decode steps).
    expect(prefillBudget(sarathi, 4, 20, 2)).toBe(20); // rest min(60, ⌊2 × 20 / 2⌋) = 20 (40 ms); by time ⌊0.75 × 20 / 2⌋ = 7
    expect(prefillBudget(sarathi, 4, 20, 2) * 2).toBeLessThanOrEqual(PREFILL_REST_MAX_DECODES * 20);
    expect(prefillBudget(sarathi, 4, 40, 2)).toBe(40); // rest ⌊2 × 40 / 2⌋ = 40 < 60 left; by time 15
    expect(PREFILL_REST_MAX_DECODES).toBe(2);
    expect(PREFILL_SHARE_OF_DECODE).toBe(0.75);
  });

  it("while streams decode, a long prompt is prefilled in chunks that cost about one decode step (model-driven clock)", async () => {
    // Decode steps cost 40 units, prefill 1 unit per prompt token.
    const { model, clock } = timedModel();
    const scheduler = new Scheduler(V, { maxBatch: 8, maxTokens: 10_000, maxQueue: 8, prefillChunk: 64, prefillTokens: 512 }, {}, () => clock.now);
    const target = { variant: model, mix: null, mixKey: "", merged: false };
    const run = (p: GenerationParams) => scheduler.submit({ sequence: new Sequence(p, tokenizer), target });
    const streams = [run(params("ab", 40)), run(params("cd", 40)), run(params("ef", 40))];
    while (model.calls.length < 6) await new Promise((r) => setTimeout(r, 1));
    const from = model.calls.length;
    const long = run(params("x".repeat(300), 2));
    await Promise.all([...streams, long]);
    const later = model.calls.slice(from);
    const prefills = later.filter((c) => c.tokens.some((n) => n > 1));
    // Budget ⌊40 / 1⌋ = 40 tokens per prefill step while the three streams decode (the first, unmeasured: one chunk of 64).
    expect(prefills.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...prefills.slice(1).map((c) => c.tokens.reduce((a, b) => a + b, 0)))).toBeLessThanOrEqual(40);
    // Between two prefill steps there is always a decode step of the running streams.
    for (let i = 1; i < later.length; i++) expect(later[i - 1]!.tokens.some((n) => n > 1) && later[i]!.tokens.some((n) => n > 1)).toBe(false);
  });

  it("a burst submitted in one turn while nothing decodes is admitted together: one prefill step of all of it, then decode steps of all rows", async () => {
    const { model, clock } = timedModel();
    const scheduler = new Scheduler(V, { maxBatch: 16, maxTokens: 100_000, maxQueue: 64, prefillChunk: 16, prefillTokens: 256 }, {}, () => clock.now);
    const target = { variant: model, mix: null, mixKey: "", merged: false };
    const burst = Array.from({ length: 12 }, (_, i) => scheduler.submit({ sequence: new Sequence(params("q".repeat(10 + i), 4), tokenizer), target }));
    await Promise.all(burst);
    // 12 prompts of 10–21 tokens (chunks ≤ 16): the first step takes a chunk of every row, not the first prompt alone.
    expect(model.calls[0]!.rows).toBe(12);
    const isPrefill = (c: { tokens: number[] }) => c.tokens.some((n) => n > 1);
    expect(model.calls.filter(isPrefill).length).toBeLessThanOrEqual(2);
    const decodes = model.calls.filter((c) => !isPrefill(c));
    expect(decodes.length).toBeLessThanOrEqual(4);
    expect(decodes.filter((c) => c.rows === 12).length).toBeGreaterThanOrEqual(2);
  });

  it("a burst larger than one prefill step: steps of the full budget, each followed by a decode step of its rows already prefilled (never the budget that protects other streams)", async () => {
    // Decode steps cost 40 units, prefill 1 unit per prompt token: beside decoding streams the budget would be ⌊40 / 1⌋ = 40 tokens.
    const { model, clock } = timedModel();
    const scheduler = new Scheduler(V, { maxBatch: 32, maxTokens: 100_000, maxQueue: 64, prefillChunk: 32, prefillTokens: 128 }, {}, () => clock.now);
    const target = { variant: model, mix: null, mixKey: "", merged: false };
    const tokenTimes: number[][] = [];
    const burst = Array.from({ length: 16 }, (_, i) => {
      const times: number[] = (tokenTimes[i] = []);
      return scheduler.submit({ sequence: new Sequence(params("r".repeat(32), 6), tokenizer, () => times.push(clock.now)), target });
    });
    await Promise.all(burst);
    const isPrefill = (c: { tokens: number[] }) => c.tokens.some((n) => n > 1);
    const prefills = model.calls.filter(isPrefill);
    // 16 × 32 tokens at 128 per step: 4 prefill steps of 4 rows each (a trickle under the 40-token budget would take ≥ 13).
    expect(prefills.map((c) => c.tokens.reduce((a, b) => a + b, 0))).toEqual([128, 128, 128, 128]);
    // Still never two prefill steps in a row once rows decode, so a row's gap is ≤ one decode (40) + one prefill step (128).
    for (let i = 1; i < model.calls.length; i++) expect(isPrefill(model.calls[i - 1]!) && isPrefill(model.calls[i]!)).toBe(false);
    for (const times of tokenTimes) for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(40 + 128);
  });

  it("a burst of prompts: running streams wait at most one bounded prefill step between tokens, and first tokens come in arrival order (model-driven clock)", async () => {
    // Decode steps cost 40 units, prefill 1 unit per prompt token: the budget while rows decode is ⌊40 / 1⌋ = 40 tokens.
    const { model, clock } = timedModel();
    const scheduler = new Scheduler(V, { maxBatch: 32, maxTokens: 100_000, maxQueue: 64, prefillChunk: 16, prefillTokens: 512 }, {}, () => clock.now);
    const target = { variant: model, mix: null, mixKey: "", merged: false };
    const firstAt: number[] = [];
    const tokenTimes: number[][] = [];
    const run = (p: GenerationParams, id: number) => {
      tokenTimes[id] = [];
      return scheduler.submit({
        sequence: new Sequence(p, tokenizer, () => {
          if (tokenTimes[id]!.length === 0) firstAt.push(id);
          tokenTimes[id]!.push(clock.now);
        }),
        target,
      });
    };
    // Two streams decode alone first; then 20 prompts (12 to 30 tokens, the earlier ones longer) arrive at once.
    const streams = [run(params("ab", 60), 0), run(params("cd", 60), 1)];
    while (model.calls.length < 6) await new Promise((r) => setTimeout(r, 1));
    const from = model.calls.length;
    const burst = Array.from({ length: 20 }, (_, i) => run(params("p".repeat(30 - i), 4), 2 + i));
    await Promise.all([...streams, ...burst]);
    const later = model.calls.slice(from);
    const isPrefill = (c: { tokens: number[] }) => c.tokens.some((n) => n > 1);
    // Never two prefill steps in a row while streams decode, and no prefill step above the budget (the first, unmeasured: one chunk).
    for (let i = 1; i < later.length; i++) expect(isPrefill(later[i - 1]!) && isPrefill(later[i]!)).toBe(false);
    for (const c of later.filter(isPrefill)) expect(c.tokens.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(40);
    // So a running stream's gap is at most one decode step (40) + one prefill step (≤ 40 tokens = 40 units).
    for (const id of [0, 1]) {
      const times = tokenTimes[id]!;
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(80);
    }
    // First come, first served: the burst's first tokens in arrival order, though later prompts are shorter.
    expect(firstAt.slice(2)).toEqual(Array.from({ length: 20 }, (_, i) => 2 + i));
  });
});
