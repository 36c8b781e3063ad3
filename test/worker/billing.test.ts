// Billing exactly once, for what was delivered, under the daily budget reservation
// (workers/src/limits/enforce.ts, reservation.ts): client disconnects, a runner dying
// mid-stream, concurrent requests racing for the last tokens, and failures that must give the
// reservation back. Runners are the scripted fakes of fake-runner.ts ("driven": the test
// releases each token), D1 is Miniflare's.
import { describe, expect, it, vi } from "vitest";
import { SAMPLED_TOKENS_FIELD } from "#core/wire/runner-api";
import { sseData } from "../../client/src/sse.js";
import { afterResponseSettled } from "../../workers/src/util/after-response.js";
import { MODEL, RUNNERS, useFakeRunners, type DrivenStream, type RunnerBehaviour } from "./fake-runner.js";
import { callJson, callRaw, expectError, LEASED, newTenant, type CallOptions } from "./helpers.js";

const runners = useFakeRunners();

const allRunners = (behaviour: RunnerBehaviour) => {
  for (const r of RUNNERS) runners.behaviour[r] = behaviour;
};

/** Waits (yielding to the worker) until `ready()` holds. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (ready()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The n-th driven runner answer, once the edge's request reached it. */
async function driven(n: number): Promise<DrivenStream> {
  await until(() => runners.driven.length > n, `runner request #${n + 1}`);
  return runners.driven[n]!;
}

/** Opens a stream at a driven runner: its first token is sent (the edge holds the response until the first complete event). */
async function openStream(key: string, json: Record<string, unknown>): Promise<{ runner: DrivenStream; res: Response }> {
  const index = runners.driven.length;
  const pending = callRaw("/v1/completions", { key, json: { model: MODEL, stream: true, ...json } });
  const runner = await driven(index);
  runner.send(1);
  const res = await pending;
  expect(res.status).toBe(200);
  return { runner, res };
}

/** Reads a client's SSE events (`[DONE]` kept) until `count` more arrived or the stream ended; `cancel` is the client leaving. */
function sseReader(res: Response) {
  const stream = sseData(res.body!, { keepDone: true });
  const events: string[] = [];
  return {
    events,
    async read(count: number): Promise<string[]> {
      const target = events.length + count;
      while (events.length < target) {
        const next = await stream.next();
        if (next.done) break;
        events.push(next.value);
      }
      return events;
    },
    /** Ends the generator, which cancels the response body. */
    async cancel(): Promise<void> {
      await stream.return(undefined);
    },
  };
}

async function today(key: string) {
  const usage = await callJson("/v1/usage", { key });
  expect(usage.status).toBe(200);
  return { day: usage.body.data[0] ?? null, totals: usage.body.totals };
}

describe("streams are billed exactly once, for what the runner sampled", () => {
  it("a client that disconnects mid-stream: billed once for the tokens sampled before it left; the reservation is given back and the runner's stream cancelled", async () => {
    const a = await newTenant("a");
    allRunners("driven");
    const { runner, res } = await openStream(a.key, { prompt: "Hello", max_tokens: 50 });
    const sse = sseReader(res);
    runner.send(2);
    const got = await sse.read(3);
    expect(got.map((e) => JSON.parse(e).choices[0].text)).toEqual(["t1 ", "t2 ", "t3 "]);
    // The runner's running count is for the edge only.
    expect(got.every((e) => !(SAMPLED_TOKENS_FIELD in JSON.parse(e)))).toBe(true);
    // In flight: nothing billed yet, prompt bound (5 bytes + BOS) + max_tokens reserved.
    expect((await today(a.key)).day).toMatchObject({ requests: 0, total_tokens: 0, reserved_tokens: 6 + 50 });

    await sse.cancel();
    await until(() => runner.cancelled !== null, "the runner's stream cancelled");
    await afterResponseSettled();
    const after = await today(a.key);
    // Exactly one request; prompt as the runner counts it (the fake: its length), 3 sampled tokens.
    expect(after.day).toMatchObject({ requests: 1, prompt_tokens: 5, completion_tokens: 3, reserved_tokens: 0 });
  });

  it("32 streams dropped at once are billed 32 requests, each for its own sampled tokens", async () => {
    const a = await newTenant("a");
    allRunners("driven");
    const n = 32;
    const pending = Array.from({ length: n }, () => callRaw("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", stream: true, max_tokens: 20 } }));
    await until(() => runners.driven.length === n, "all streams at the runners");
    runners.driven.forEach((r, i) => r.send(1 + (i % 3)));
    const responses = await Promise.all(pending);
    const readers = responses.map((res) => sseReader(res));
    await Promise.all(readers.map((r) => r.read(1)));
    await Promise.all(readers.map((r) => r.cancel()));
    await afterResponseSettled();
    const sampled = runners.driven.reduce((t, r) => t + r.sent, 0);
    expect((await today(a.key)).day).toMatchObject({ requests: n, prompt_tokens: 2 * n, completion_tokens: sampled, reserved_tokens: 0 });
  });

  it("a runner that dies mid-stream: the client gets the tokens, a clean error event and [DONE]; billed for every sampled token", async () => {
    const a = await newTenant("a");
    allRunners("driven");
    const { runner, res } = await openStream(a.key, { prompt: "Hello", max_tokens: 50 });
    runner.send(3);
    runner.cut();
    const sse = sseReader(res);
    const events = await sse.read(100);
    expect(events.slice(0, 4).map((e) => JSON.parse(e).choices[0].text)).toEqual(["t1 ", "t2 ", "t3 ", "t4 "]);
    const error = JSON.parse(events[4]!);
    expect(error.error.type).toBe("runner_error");
    expect(events.slice(5)).toEqual(["[DONE]"]);
    // Accounting ran before [DONE]: nothing to wait for.
    expect((await today(a.key)).day).toMatchObject({ requests: 1, prompt_tokens: 5, completion_tokens: 4, reserved_tokens: 0 });
  });

  it("a stream that ends normally is billed from its usage chunk once", async () => {
    const a = await newTenant("a");
    allRunners("driven");
    const { runner, res } = await openStream(a.key, { prompt: "Hello", max_tokens: 50 });
    runner.send(6);
    runner.finish();
    const events = await sseReader(res).read(100);
    expect(events.at(-1)).toBe("[DONE]");
    expect(events.filter((e) => e === "[DONE]")).toHaveLength(1);
    expect((await today(a.key)).day).toMatchObject({ requests: 1, prompt_tokens: 5, completion_tokens: 7, reserved_tokens: 0 });
  });
});

/**
 * Sends `n` completions at once to driven runners; resolves once every one either holds a
 * reservation at a runner or was refused (`answers`: all of them, once the runners finish).
 */
async function concurrentCompletions(n: number, opts: CallOptions) {
  let answered = 0;
  const pending = Array.from({ length: n }, () =>
    callRaw("/v1/completions", opts).then(async (res) => {
      answered++;
      return { status: res.status, body: await res.json<any>(), retryAfter: res.headers.get("retry-after") };
    }),
  );
  await until(() => runners.driven.length + answered === n, "every request admitted or refused");
  return { answers: Promise.all(pending) };
}

describe("the daily budget is reserved before dispatch", () => {
  it("16 concurrent requests against 100 tokens: those whose reservations fit run, the rest get 429; billed ≤ the limit", async () => {
    const a = await newTenant("a", { tokens_per_day: 100 });
    allRunners("driven");
    // Each may use 20 bytes + BOS + 4 = 25 tokens (reserved); the fake runner bills 20 + 4 = 24.
    const json = { model: MODEL, prompt: "x".repeat(20), max_tokens: 4 };
    // Every request either holds a reservation at a runner (not answered yet) or was refused.
    const { answers } = await concurrentCompletions(16, { key: a.key, json });
    expect(runners.driven).toHaveLength(4);
    for (const r of runners.driven) {
      r.send(4);
      r.finish();
    }
    const results = await answers;
    expect(results.filter((r) => r.status === 200)).toHaveLength(4);
    const refused = results.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(12);
    for (const r of refused) {
      expectError(r, 429, "rate_limit_error");
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
    }
    await afterResponseSettled();
    const after = await today(a.key);
    expect(after.day).toMatchObject({ requests: 4, prompt_tokens: 80, completion_tokens: 16, total_tokens: 96, reserved_tokens: 0 });

    // 4 tokens left: a request that may need 25 is refused (saying why), one that fits still runs.
    const big = await callJson("/v1/completions", { key: a.key, json });
    expectError(big, 429, "rate_limit_error");
    expect(big.body.error.message).toContain("96 of 100 tokens used today");
    const small = callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "a", max_tokens: 1 } });
    const last = await driven(4);
    last.send(1);
    last.finish();
    expect((await small).status).toBe(200);
    expect((await today(a.key)).day).toMatchObject({ total_tokens: 98, reserved_tokens: 0 });
  });

  it("leased as deployed (blocks of 50 tokens: 1/16 of 800): 40 concurrent requests of 25 tokens, 32 run, 8 get 429; held and billed never beyond the limit; nothing held after", async () => {
    const a = await newTenant("a", { tokens_per_day: 800 });
    allRunners("driven");
    const json = { model: MODEL, prompt: "x".repeat(20), max_tokens: 4 };
    const { answers } = await concurrentCompletions(40, { key: a.key, json, vars: LEASED });
    expect(runners.driven).toHaveLength(32);
    // In flight: the isolate's leases hold exactly what its 32 requests reserved, the whole limit.
    expect((await today(a.key)).day).toMatchObject({ requests: 0, total_tokens: 0, reserved_tokens: 800 });
    for (const r of runners.driven) {
      r.send(4);
      r.finish();
    }
    const results = await answers;
    expect(results.filter((r) => r.status === 200)).toHaveLength(32);
    for (const r of results.filter((r) => r.status !== 200)) expectError(r, 429, "rate_limit_error");
    await afterResponseSettled();
    expect((await today(a.key)).day).toMatchObject({ requests: 32, prompt_tokens: 640, completion_tokens: 128, total_tokens: 768, reserved_tokens: 0 });
  });

  it("a request that could never fit the daily limit is refused up front, nothing reserved", async () => {
    const a = await newTenant("a", { tokens_per_day: 10 });
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", max_tokens: 20 } });
    expectError(r, 429, "rate_limit_error");
    expect(r.body.error.message).toMatch(/up to 23 tokens .* more than the daily limit of 10; lower max_tokens/);
    expect(runners.completions).toHaveLength(0);
    expect((await today(a.key)).day).toMatchObject({ requests: 0, total_tokens: 0, reserved_tokens: 0 });
  });

  it("the reservation is given back, nothing billed, when no runner serves the request or the runner refuses it", async () => {
    const a = await newTenant("a", { tokens_per_day: 30 });
    const json = { model: MODEL, prompt: "Hi", max_tokens: 20 }; // reserves 23 of 30
    allRunners("400");
    expectError(await callJson("/v1/completions", { key: a.key, json }), 400);
    allRunners("500");
    expectError(await callJson("/v1/completions", { key: a.key, json: { ...json, stream: true } }), 503);
    allRunners("down"); // the catalog is cached: dispatch finds no runner answering
    expectError(await callJson("/v1/completions", { key: a.key, json }), 503);
    expect((await today(a.key)).day).toMatchObject({ requests: 0, total_tokens: 0, reserved_tokens: 0 });
    // Had any reservation leaked, this one (23 more of 30) would be refused.
    allRunners("ok");
    expect((await callJson("/v1/completions", { key: a.key, json })).status).toBe(200);
  });

  it("a refused rate-limited request reserves nothing", async () => {
    const a = await newTenant("a", { rpm_limit: 1, tokens_per_day: 1000 });
    const json = { model: MODEL, prompt: "Hi", max_tokens: 4 };
    expect((await callJson("/v1/completions", { key: a.key, json })).status).toBe(200);
    const r = await callJson("/v1/completions", { key: a.key, json });
    expectError(r, 429, "rate_limit_error");
    expect(r.body.error.message).toContain("per minute");
    expect((await today(a.key)).day).toMatchObject({ requests: 1, total_tokens: 6, reserved_tokens: 0 });
  });
});
