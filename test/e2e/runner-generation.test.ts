// The runner process over real HTTP: generation with mixes against the plain reference
// forward, merged ≡ unmerged, {a:0} ≡ base, batch-neighbour independence, 32 concurrent
// streams with different mixes, sampling, stop strings, prompt scoring, errors.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROMPT_TOKENS_HEADER, RUNNER_PATHS, type Completion } from "#core/wire/runner-api";
import type { Service } from "../../scripts/lib/stack.js";
import { startEdgeAdapterServer, type EdgeAdapterServer } from "../../gpu-runner/src/adapters/testing/edge-adapter-server.js";
import {
  complete,
  completeOk,
  maxAbsDiff,
  metricValue,
  mixOf,
  MODEL,
  promptIds,
  referenceGreedy,
  referencePromptLogprobs,
  SECRET,
  serveAdapter,
  signedFetch,
  startTestRunner,
  streamEvents,
  tinyTargets,
  type TestAdapter,
} from "./runner-harness.js";

const TOL = 1e-4;

describe("gpu-runner process: generation", () => {
  let edge: EdgeAdapterServer;
  let runner: Service;
  let merged: Service;
  let web: Service;
  let a: TestAdapter, b: TestAdapter, c: TestAdapter;

  beforeAll(async () => {
    edge = await startEdgeAdapterServer(SECRET);
    a = serveAdapter(edge, "tenant/a@1.0.0", 1, 8);
    b = serveAdapter(edge, "tenant/b@1.0.0", 2, 16, 2, "BF16"); // the runner keeps 16-bit factors as they are: composition widens them
    c = serveAdapter(edge, "tenant/c@1.0.0", 3, 4, 1, "F16");
    [runner, merged, web] = await Promise.all([
      startTestRunner({ RUNNER_MERGE_POLICY: "never" }, edge.url),
      startTestRunner({ RUNNER_MERGE_POLICY: "always" }, edge.url),
      startTestRunner({ RUNNER_MERGE_POLICY: "never", RUNNER_BACKEND: "web" }, edge.url),
    ]);
  });

  afterAll(async () => {
    await Promise.all([runner?.stop(), merged?.stop(), web?.stop()]);
    await edge?.close();
  });

  it("serves its model's manifest, health and metrics", async () => {
    const models = (await (await signedFetch(runner.url, RUNNER_PATHS.models)).json()) as any;
    expect(models.data[0].id).toBe(MODEL);
    const targets = models.data[0].manifest.targets.map((t: any) => `${t.module}:${t.in}x${t.out}`).sort();
    expect(targets).toEqual(tinyTargets().map((t) => `${t.module}:${t.in}x${t.out}`).sort());
    expect(await (await fetch(runner.url + RUNNER_PATHS.health)).json()).toEqual({
      status: "ok",
      ready: true,
      models: [MODEL],
      pid: runner.process.pid,
      load: 0,
      engines: [{ model: MODEL, busy: false, last_step_age_ms: null, no_progress_ms: 0, stalled: false }],
    });
    expect(await metricValue(runner.url, "loraedge_runner_queue_length", { model: MODEL })).toBe(0);
  });

  it("greedy generation with a weighted mix equals the reference forward (tokens and logprobs)", async () => {
    const terms: [TestAdapter, number][] = [[a, 0.8], [b, -0.5], [c, 1.3]];
    const prompt = "LoRA at the edge";
    const ref = referenceGreedy(promptIds(prompt), terms, 10);
    const out = await completeOk(runner.url, { model: MODEL, prompt, max_tokens: 10, temperature: 0, logprobs: 0, adapters: mixOf(...terms) });
    expect(out.choices[0]!.logprobs!.token_ids).toEqual(ref.ids);
    expect(maxAbsDiff(out.choices[0]!.logprobs!.token_logprobs, ref.logprobs)).toBeLessThanOrEqual(TOL);
    expect(out.usage).toEqual({ prompt_tokens: prompt.length + 1, completion_tokens: ref.ids.length, total_tokens: prompt.length + 1 + ref.ids.length });
    // The mix matters (this test can fail): the base model generates something else.
    const base = referenceGreedy(promptIds(prompt), [], 10);
    expect(maxAbsDiff(base.logprobs, ref.logprobs)).toBeGreaterThan(1e-3);
    // The composed mix lived while the request ran and was dropped with it.
    expect(await metricValue(runner.url, "loraedge_runner_mix_compositions_total", { model: MODEL })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(runner.url, "loraedge_runner_composed_mixes", { model: MODEL })).toBe(0);
    expect(await metricValue(runner.url, "loraedge_runner_composed_mix_bytes", { model: MODEL })).toBe(0);
    // Its arrays wait in the free buffers for the next composition (dropped after 30 s with no mix live).
    expect(await metricValue(runner.url, "loraedge_runner_mix_buffer_pool_bytes", { model: MODEL })).toBeGreaterThan(0);
  });

  it("echo + logprobs with max_tokens 0 scores the prompt like the reference", async () => {
    const prompt = "score me";
    const out = await completeOk(runner.url, { model: MODEL, prompt, max_tokens: 0, echo: true, logprobs: 1, adapters: mixOf([a, 1]) });
    const lp = out.choices[0]!.logprobs!;
    expect(out.choices[0]!.text).toBe(prompt);
    expect(lp.token_ids).toEqual(promptIds(prompt));
    expect(maxAbsDiff(lp.token_logprobs, referencePromptLogprobs(promptIds(prompt), [[a, 1]]))).toBeLessThanOrEqual(TOL);
    expect(out.usage).toMatchObject({ prompt_tokens: prompt.length + 1, completion_tokens: 0 });
  });

  it("merged ≡ unmerged (≤ 1e-4 on logprobs), and the merged path is reported in /metrics", async () => {
    const body = { model: MODEL, prompt: "merge me", max_tokens: 6, temperature: 0, echo: true, logprobs: 0, adapters: mixOf([a, 0.7], [c, -1.1]) };
    const [unmergedOut, mergedOut] = await Promise.all([completeOk(runner.url, body), completeOk(merged.url, body)]);
    const u = unmergedOut.choices[0]!.logprobs!;
    const m = mergedOut.choices[0]!.logprobs!;
    expect(m.token_ids).toEqual(u.token_ids);
    expect(maxAbsDiff(m.token_logprobs, u.token_logprobs)).toBeLessThanOrEqual(TOL);
    expect(await metricValue(merged.url, "loraedge_runner_merged_sessions", { model: MODEL })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(merged.url, "loraedge_runner_merged_hits_total", { model: MODEL })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(runner.url, "loraedge_runner_merged_sessions", { model: MODEL })).toBe(0);
  });

  it("RUNNER_BACKEND=web (onnxruntime-web) serves the same tokens and logprobs as node", async () => {
    const body = { model: MODEL, prompt: "two backends", max_tokens: 6, temperature: 0, echo: true, logprobs: 0, adapters: mixOf([b, 0.9]) };
    const [node, wasm] = await Promise.all([completeOk(runner.url, body), completeOk(web.url, body)]);
    expect(wasm.choices[0]!.logprobs!.token_ids).toEqual(node.choices[0]!.logprobs!.token_ids);
    expect(maxAbsDiff(wasm.choices[0]!.logprobs!.token_logprobs, node.choices[0]!.logprobs!.token_logprobs)).toBeLessThanOrEqual(TOL);
  });

  it("{a: 0} ≡ base model; {a: 1, a: 1} ≡ {a: 2}", async () => {
    const body = { model: MODEL, prompt: "zero", max_tokens: 5, temperature: 0, echo: true, logprobs: 0 };
    const base = await completeOk(runner.url, body);
    const zero = await completeOk(runner.url, { ...body, adapters: mixOf([a, 0]) });
    expect(zero.choices[0]!.logprobs!.token_ids).toEqual(base.choices[0]!.logprobs!.token_ids);
    expect(maxAbsDiff(zero.choices[0]!.logprobs!.token_logprobs, base.choices[0]!.logprobs!.token_logprobs)).toBeLessThanOrEqual(TOL);
    const twice = await completeOk(runner.url, { ...body, adapters: mixOf([a, 1], [a, 1]) });
    const double = await completeOk(runner.url, { ...body, adapters: mixOf([a, 2]) });
    expect(maxAbsDiff(twice.choices[0]!.logprobs!.token_logprobs, double.choices[0]!.logprobs!.token_logprobs)).toBeLessThanOrEqual(TOL);
  });

  it("a row's output does not depend on its batch neighbours", async () => {
    const probe = { model: MODEL, prompt: "who are my neighbours?", max_tokens: 8, temperature: 0, logprobs: 0, adapters: mixOf([b, 1]) };
    const alone = await completeOk(runner.url, probe);
    const neighbours = [
      { prompt: "x", adapters: mixOf([a, 1]) },
      { prompt: "a much longer prompt than the probe has, to change the padding of the batch", adapters: mixOf([c, -2], [a, 0.5]) },
      { prompt: "base row", adapters: [] },
      { prompt: "same mix", adapters: mixOf([b, 1]) },
    ].map((n) => completeOk(runner.url, { model: MODEL, max_tokens: 12, temperature: 0.9, seed: 5, ...n }));
    const [together] = await Promise.all([completeOk(runner.url, probe), ...neighbours]);
    expect(together.choices[0]!.logprobs!.token_ids).toEqual(alone.choices[0]!.logprobs!.token_ids);
    expect(maxAbsDiff(together.choices[0]!.logprobs!.token_logprobs, alone.choices[0]!.logprobs!.token_logprobs)).toBeLessThanOrEqual(TOL);
    expect(await metricValue(runner.url, "loraedge_runner_steps_total", { model: MODEL })).toBeGreaterThan(0);
  });

  it("same seed ⇒ same text; sampling follows temperature/top_k; stop strings cut the text", async () => {
    const body = { model: MODEL, prompt: "seeded", max_tokens: 24, temperature: 1.2, top_p: 0.95, top_k: 40, seed: 1234, adapters: mixOf([a, 1]) };
    const [x, y] = await Promise.all([completeOk(runner.url, body), completeOk(runner.url, body)]);
    const z = await completeOk(runner.url, { ...body, seed: 99 });
    expect(x.choices[0]!.text).toBe(y.choices[0]!.text);
    expect(z.choices[0]!.text).not.toBe(x.choices[0]!.text);
    // A stop string taken from the seeded output: the same generation cut just before it.
    const full = x.choices[0]!.text;
    const stop = full.slice(6, 8);
    const cut = await completeOk(runner.url, { ...body, stop: [stop] });
    expect(cut.choices[0]!.finish_reason).toBe("stop");
    expect(cut.choices[0]!.text).toBe(full.slice(0, full.indexOf(stop)));
  });

  it("penalties (repetition, presence/frequency, logit_bias) through the wire: greedy ≡ the reference sampler on the reference forward", async () => {
    const prompt = "la la la la la";
    // A bias toward "a" makes the tiny random model repeat itself, so each penalty has something to change.
    const biased = { logit_bias: { [String("a".charCodeAt(0))]: 3 } };
    const settings = [
      {},
      { repetition_penalty: 1.8 },
      { repetition_penalty: 0.6 },
      { presence_penalty: 1.5, frequency_penalty: 0.8 },
      { frequency_penalty: 1 },
    ];
    const unbiased = referenceGreedy(promptIds(prompt), [[a, 1]], 12);
    const biasOnly = referenceGreedy(promptIds(prompt), [[a, 1]], 12, biased);
    expect(biasOnly.ids).not.toEqual(unbiased.ids);
    for (const penalty of settings) {
      const sampling = { ...biased, ...penalty };
      const ref = referenceGreedy(promptIds(prompt), [[a, 1]], 12, sampling);
      const out = await completeOk(runner.url, { model: MODEL, prompt, max_tokens: 12, temperature: 0, logprobs: 0, adapters: mixOf([a, 1]), ...sampling });
      expect(out.choices[0]!.logprobs!.token_ids, JSON.stringify(sampling)).toEqual(ref.ids);
      // The parameter matters (this test can fail): without it the tokens differ.
      if (Object.keys(penalty).length > 0) expect(ref.ids, JSON.stringify(sampling)).not.toEqual(biasOnly.ids);
    }
    const outside = await complete(runner.url, { model: MODEL, prompt, max_tokens: 2, logit_bias: { "999999": 1 } });
    expect(outside.status).toBe(400);
    expect(outside.json.error.message).toMatch(/logit_bias.*outside the vocabulary/);
    const badPenalty = await complete(runner.url, { model: MODEL, prompt, max_tokens: 2, repetition_penalty: 0 });
    expect(badPenalty.status).toBe(400);
    expect(badPenalty.json.error.message).toMatch(/repetition_penalty/);
  });

  it("32 concurrent streams, each with its own mix (ranks 4–64, 1–4 adapters), complete with correct usage", async () => {
    const pool: TestAdapter[] = [4, 8, 16, 32, 64, 12, 24, 48].map((rank, i) => serveAdapter(edge, `pool/${i}`, 100 + i, rank, 1 + (i % 3)));
    const requests = Array.from({ length: 32 }, (_, i) => {
      const n = 1 + (i % 4);
      const terms = Array.from({ length: n }, (_, k) => [pool[(i + 3 * k) % pool.length]!, ((i + k) % 5) / 2 - 0.9] as [TestAdapter, number]);
      const prompt = `stream ${i} ` + "·".repeat(i % 7);
      return { prompt, terms, maxTokens: 4 + (i % 9) };
    });
    const results = await Promise.all(
      requests.map(async (r) => {
        const res = await signedFetch(runner.url, RUNNER_PATHS.completions, {
          body: { model: MODEL, prompt: r.prompt, max_tokens: r.maxTokens, temperature: 0, stream: true, adapters: mixOf(...r.terms) },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
        return { r, announced: Number(res.headers.get(PROMPT_TOKENS_HEADER)), ...(await streamEvents(res)) };
      }),
    );
    for (const { r, chunks, done, announced } of results) {
      expect(done).toBe(true);
      const final = chunks[chunks.length - 1] as Completion;
      const tokens = chunks.slice(0, -1);
      const promptTokens = new TextEncoder().encode(r.prompt).length + 1;
      expect(announced).toBe(promptTokens); // sent before the first event, for billing cut streams
      expect(final.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length });
      if (final.choices[0]!.finish_reason === "length") expect(tokens.length).toBe(r.maxTokens);
      else expect(tokens.length).toBeLessThanOrEqual(r.maxTokens);
    }
    // Spot-check one stream against the reference path.
    const { r, chunks } = results[5]!;
    const ref = referenceGreedy(promptIds(r.prompt), r.terms, r.maxTokens);
    const streamedText = chunks.map((ch) => ch.choices[0].text).join("");
    const refText = new TextDecoder().decode(new Uint8Array(ref.ids.filter((id) => id < 256)));
    expect(streamedText).toBe(refText);
  });

  it("refuses a bad signature (401), an oversize prompt (400 saying by how much), bad input and unknown models", async () => {
    const body = { model: MODEL, prompt: "hi", max_tokens: 2 };
    const wrong = await signedFetch(runner.url, RUNNER_PATHS.completions, { body, secret: "wrong-secret-123" });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as any).error.type).toBe("authentication_error");
    const unsigned = await fetch(runner.url + RUNNER_PATHS.models);
    expect(unsigned.status).toBe(401);
    // Signed for another body: the signature covers the body.
    const { signRequest } = await import("#core/wire/hmac");
    const headers = await signRequest(SECRET, { method: "POST", pathAndQuery: RUNNER_PATHS.completions, body: JSON.stringify(body) });
    const tampered = await fetch(runner.url + RUNNER_PATHS.completions, { method: "POST", headers, body: JSON.stringify({ ...body, max_tokens: 400 }) });
    expect(tampered.status).toBe(401);

    const over = await complete(runner.url, { model: MODEL, prompt: "x".repeat(500), max_tokens: 20 });
    expect(over.status).toBe(400);
    expect(over.json.error.type).toBe("context_length_exceeded");
    expect(over.json.error.message).toMatch(/by 9 tokens/);

    const bad = await complete(runner.url, { model: MODEL, prompt: "hi", max_tokens: -1 });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/max_tokens/);
    const unknown = await complete(runner.url, { model: "nope", prompt: "hi" });
    expect(unknown.status).toBe(404);
  });
});
