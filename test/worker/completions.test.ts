import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { mixKey } from "#core/wire/mix-key";
import { PROMPT_TOKENS_HEADER } from "#core/wire/runner-api";
import { rendezvousRank, mixRoutingKey } from "../../workers/src/runners/rendezvous.js";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { runnerLabel } from "../../workers/src/runners/runner-label.js";
import { useFakeRunners, MODEL, RUNNERS, SECRET } from "./fake-runner.js";
import { call, callJson, expectError, newTenant, uploadAdapter } from "./helpers.js";

const runners = useFakeRunners();

async function setup(limits: { rpm_limit?: number; tokens_per_day?: number } = {}) {
  const a = await newTenant("a", limits);
  const b = await newTenant("b");
  const x = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }))).body;
  const y = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(2, 4)), { name: "y", visibility: "public" }))).body;
  return { a, b, x, y };
}

async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6));
}

describe("POST /v1/completions", () => {
  it("resolves the mix, signs the call and returns the runner's completion", async () => {
    const { a, x, y } = await setup();
    const r = await callJson("/v1/completions", {
      key: a.key,
      json: { model: MODEL, prompt: "Hi", max_tokens: 3, seed: 7, adapters: [{ id: x.id, weight: 0.5 }, { id: "a/y@1.0.0", weight: 2 }] },
    });
    expect(r.status).toBe(200);
    expect(r.body.object).toBe("text_completion");
    expect(runners.completions).toHaveLength(1);
    const sent = runners.completions[0]!.body;
    expect(sent).toMatchObject({ model: MODEL, prompt: "Hi", max_tokens: 3, seed: 7, stream: false });
    expect(sent.adapters).toEqual([
      { id: x.id, sha256: x.sha256, weight: 0.5 },
      { id: y.id, sha256: y.sha256, weight: 2 },
    ]);
    expect(sent.request_id).toBe(r.res.headers.get("x-request-id"));
    expect(sent.mix_key).toBe(mixKey(sent.adapters));
    // Base model: no adapters.
    const base = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi" } });
    expect(base.status).toBe(200);
    expect(runners.completions[1]!.body.adapters).toEqual([]);
  });

  it("runs a saved composition", async () => {
    const { a, x } = await setup();
    const comp = await callJson("/v1/compositions", { key: a.key, json: { name: "c", adapters: [{ id: x.id, weight: 3 }] } });
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", composition: comp.body.id } });
    expect(r.status).toBe(200);
    expect(runners.completions[0]!.body.adapters).toEqual([{ id: x.id, sha256: x.sha256, weight: 3 }]);
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", composition: "nope" } }), 404);
    expectError(
      await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", composition: "c", adapters: [] } }),
      400,
    );
  });

  it("validates requests", async () => {
    const { a, b, x } = await setup();
    const bad = [
      { prompt: "Hi" },
      { model: MODEL },
      { model: MODEL, prompt: "Hi", temperature: -1 },
      { model: MODEL, prompt: "Hi", n: 2 },
      { model: MODEL, prompt: "Hi", adapters: [{ id: x.id, weight: "1" }] },
    ];
    for (const json of bad) expectError(await callJson("/v1/completions", { key: a.key, json }), 400);
    expectError(await callJson("/v1/completions", { key: a.key, body: "{", headers: { "content-type": "application/json" } }), 400);
    // Another tenant's private adapter: 404, same as a missing one; nothing reaches a runner.
    expectError(await callJson("/v1/completions", { key: b.key, json: { model: MODEL, prompt: "Hi", adapters: [{ id: x.id, weight: 1 }] } }), 404);
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: [{ id: "ad_missing", weight: 1 }] } }), 404);
    // Adapter for another base model.
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: "other", prompt: "Hi", adapters: [{ id: x.id, weight: 1 }] } }), 422);
    // Unknown model.
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: "other", prompt: "Hi" } }), 404);
    expect(runners.completions).toHaveLength(0);
    expectError(await callJson("/v1/completions", { json: { model: MODEL, prompt: "Hi" } }), 401);
  });

  it("passes every sampling option of core's schema to the runner (one schema: repetition_penalty, penalties, logit_bias); edge caps are stricter than the wire", async () => {
    const { a } = await setup();
    const sampling = { repetition_penalty: 1.3, presence_penalty: 0.5, frequency_penalty: -0.25, logit_bias: { "7": -100, "42": 2.5 }, top_k: 5 };
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", ...sampling } });
    expect(r.status).toBe(200);
    expect(runners.completions[0]!.body).toMatchObject(sampling);
    const chat = await callJson("/v1/chat/completions", { key: a.key, json: { model: MODEL, messages: [{ role: "user", content: "Hi" }], ...sampling } });
    expect(chat.status).toBe(200);
    expect(runners.completions[1]!.body).toMatchObject(sampling);
    // Defaults are "off" and still sent explicitly.
    await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi" } });
    expect(runners.completions[2]!.body).toMatchObject({ repetition_penalty: 1, presence_penalty: 0, frequency_penalty: 0 });
    const tooMany = Object.fromEntries(Array.from({ length: 301 }, (_, i) => [String(i), 1]));
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ repetition_penalty: 0 }, /repetition_penalty/],
      [{ presence_penalty: 2.5 }, /presence_penalty/],
      [{ frequency_penalty: Number.NaN }, /frequency_penalty/],
      [{ logit_bias: { x: 1 } }, /logit_bias/],
      [{ logit_bias: { "1": 101 } }, /logit_bias/],
      [{ logit_bias: tooMany }, /logit_bias may hold at most 300/],
      // The edge's caps (EDGE_CAPS), stricter than the wire's (8 stop strings, no max_tokens cap).
      [{ stop: ["a", "b", "c", "d", "e"] }, /stop/],
      [{ max_tokens: 4097 }, /max_tokens/],
    ];
    for (const [extra, message] of bad) {
      const res = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", ...extra } });
      expectError(res, 400);
      expect(res.body.error.message).toMatch(message);
    }
    expect(runners.completions).toHaveLength(3);
  });

  it("one mix, one key: {x,y}, {y,x} and {x:½,y,x:½} carry the same mix_key and go to the same runner", async () => {
    const { a, x, y } = await setup();
    const spellings = [
      [{ id: x.id, weight: 1 }, { id: y.id, weight: 2 }],
      [{ id: "a/y@1.0.0", weight: 2 }, { id: x.id, weight: 1 }],
      [{ id: x.id, weight: 0.5 }, { id: y.id, weight: 2 }, { id: "a/x@1.0.0", weight: 0.5 }],
    ];
    for (const adapters of spellings) {
      expect((await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters } })).status).toBe(200);
    }
    const key = mixKey([{ id: x.id, sha256: x.sha256, weight: 1 }, { id: y.id, sha256: y.sha256, weight: 2 }]);
    expect(runners.completions.map((c) => c.body.mix_key)).toEqual([key, key, key]);
    const owner = rendezvousRank(mixRoutingKey(MODEL, key), RUNNERS)[0];
    expect(runners.completions.map((c) => c.runner)).toEqual([owner, owner, owner]);
    // The entries travel as requested (resolved); the runner derives the canonical form itself.
    expect(runners.completions[1]!.body.adapters.map((e) => e.id)).toEqual([y.id, x.id]);
  });

  it("routes by rendezvous hashing on the mix and fails over on connection errors and 5xx", async () => {
    const { a, x } = await setup();
    const json = { model: MODEL, prompt: "Hi", adapters: [{ id: x.id, weight: 1 }] };
    const order = rendezvousRank(mixRoutingKey(MODEL, mixKey([{ id: x.id, sha256: x.sha256, weight: 1 }])), RUNNERS);
    await callJson("/v1/completions", { key: a.key, json });
    await callJson("/v1/completions", { key: a.key, json });
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0], order[0]]);
    // The owner is down: the next in rendezvous order serves, and the owner is skipped while down.
    runners.behaviour[order[0]!] = "down";
    const r1 = await callJson("/v1/completions", { key: a.key, json });
    expect(r1.status).toBe(200);
    runners.behaviour[order[1]!] = "500";
    const r2 = await callJson("/v1/completions", { key: a.key, json });
    expect(r2.status).toBe(200);
    // 500s are not recorded by the fake runner: the second request went order[1] (500) → order[2].
    expect(runners.completions.slice(2).map((c) => c.runner)).toEqual([order[1], order[2]]);
    // The runner is named opaquely (no host or port): a stable label per runner.
    expect(r2.res.headers.get("x-loraedge-runner")).toBe(await runnerLabel(SECRET, order[2]!));
    expect(r2.res.headers.get("x-loraedge-runner")).toMatch(/^r-[0-9a-f]{12}$/);
    expect(new Set(await Promise.all(RUNNERS.map((r) => runnerLabel(SECRET, r))))).toHaveProperty("size", 3);
    // Everyone fails: 503 with Retry-After.
    runners.behaviour[order[2]!] = "down";
    const r3 = await callJson("/v1/completions", { key: a.key, json });
    expectError(r3, 503, "service_unavailable_error");
    expect(r3.res.headers.get("retry-after")).toBe("5");
  });

  it("fails over when a stream breaks before its first event, and on 429; all busy → 429", async () => {
    const { a, x } = await setup();
    const mix = [{ id: x.id, weight: 1 }];
    const order = rendezvousRank(mixRoutingKey(MODEL, mixKey([{ ...mix[0]!, sha256: x.sha256 }])), RUNNERS);
    runners.behaviour[order[0]!] = "broken-stream";
    const res = await call("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", stream: true, adapters: mix } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-loraedge-runner")).toBe(await runnerLabel(SECRET, order[1]!));
    const events = await readSse(res);
    expect(events.filter((e) => e.includes('"error"'))).toEqual([]);
    expect(events[events.length - 1]).toBe("[DONE]");
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0], order[1]]);
    for (const r of RUNNERS) runners.behaviour[r] = "429";
    const busy = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: mix } });
    expectError(busy, 429, "rate_limit_error");
    expect(busy.res.headers.get("retry-after")).toBe("3");
  });

  it("passes a runner's 4xx through without failing over", async () => {
    const { a } = await setup();
    for (const r of RUNNERS) runners.behaviour[r] = "400";
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi" } });
    expectError(r, 400);
    expect(r.body.error.message).toBe("prompt too long");
    expect(runners.completions).toHaveLength(1);
  });

  it("streams SSE through, ending with [DONE], and records usage", async () => {
    const { a, x } = await setup();
    const res = await call("/v1/completions", {
      key: a.key,
      json: { model: MODEL, prompt: "Hi", stream: true, adapters: [{ id: x.id, weight: 1 }] },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = await readSse(res);
    expect(events[events.length - 1]).toBe("[DONE]");
    expect(events.filter((e) => e === "[DONE]")).toHaveLength(1);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0].text).join("")).toBe("Hello!");
    expect(chunks[chunks.length - 1].usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    const usage = await callJson("/v1/usage", { key: a.key });
    expect(usage.body.totals).toEqual({ requests: 1, prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  });

  it("counts a use for every adapter of each served mix (ad-hoc, composition, stream); sort=uses puts the most used first", async () => {
    const { a, b, x, y } = await setup();
    const complete = (json: object, key = a.key) => callJson("/v1/completions", { key, json: { model: MODEL, prompt: "Hi", ...json } });
    expect((await complete({ adapters: [{ id: x.id, weight: 1 }, { id: y.id, weight: -1 }] })).status).toBe(200);
    expect((await complete({ adapters: [{ id: y.id, weight: 0.5 }] }, b.key)).status).toBe(200); // another tenant, public y
    const comp = await callJson("/v1/compositions", { key: a.key, json: { name: "c", adapters: [{ id: y.id, weight: 2 }] } });
    expect((await complete({ composition: comp.body.id })).status).toBe(200);
    const streamed = await call("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", stream: true, adapters: [{ id: y.id, weight: 1 }] } });
    expect((await readSse(streamed)).at(-1)).toBe("[DONE]");
    expect((await complete({})).status).toBe(200); // the base model uses no adapter
    // A refused request (unknown adapter) counts nothing.
    expect((await complete({ adapters: [{ id: x.id, weight: 1 }, { id: "a/missing@1.0.0", weight: 1 }] })).status).toBe(404);
    expect((await callJson(`/v1/adapters/${x.id}`, { key: a.key })).body.uses).toBe(1);
    expect((await callJson(`/v1/adapters/${y.id}`, { key: a.key })).body.uses).toBe(4);
    const byUses = await callJson("/v1/adapters?sort=uses&limit=1", { key: a.key });
    expect(byUses.body.data.map((d: any) => [d.name, d.uses])).toEqual([["y", 4]]);
    const next = await callJson(`/v1/adapters?sort=uses&limit=1&cursor=${byUses.body.next_cursor}`, { key: a.key });
    expect(next.body.data.map((d: any) => [d.name, d.uses])).toEqual([["x", 1]]);
    expect(next.body.next_cursor).toBeNull();
  });

  it("ends a broken runner stream with an error event and [DONE], billing the prompt the runner announced", async () => {
    const { a } = await setup();
    vi.mocked(globalThis.fetch).mockImplementation(async (input) => {
      const url = new Request(input as RequestInfo).url;
      if (url.endsWith("/internal/v1/models")) {
        return Response.json({ object: "list", data: [{ id: MODEL, object: "model", owned_by: "x", manifest: (await import("./fake-runner.js")).MANIFEST }] });
      }
      let n = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (n++ === 0) controller.enqueue(new TextEncoder().encode(`data: ${JSON.stringify({ id: "c", object: "text_completion", created: 1, model: MODEL, choices: [{ index: 0, text: "A", finish_reason: null, logprobs: null }] })}\n\n`));
          else controller.error(new Error("connection reset"));
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream", [PROMPT_TOKENS_HEADER]: "7" } });
    });
    const res = await call("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", stream: true } });
    const events = await readSse(res);
    expect(JSON.parse(events[0]!).choices[0].text).toBe("A");
    // The client learns the stream broke, not the socket's details (they name internal hosts; logged instead).
    expect(JSON.parse(events[1]!).error.message).toMatch(/stream broke before it finished/);
    expect(JSON.parse(events[1]!).error.message).not.toContain("connection reset");
    expect(events[2]).toBe("[DONE]");
    // No usage chunk arrived: the prompt is billed from the runner's header, completion from the chunks.
    const usage = await callJson("/v1/usage", { key: a.key });
    expect(usage.body.totals).toMatchObject({ requests: 1, prompt_tokens: 7, completion_tokens: 1 });
  });
});

describe("POST /v1/chat/completions", () => {
  it("passes the messages to the runner (which renders the template) and returns the chat shape", async () => {
    const { a } = await setup();
    const r = await callJson("/v1/chat/completions", {
      key: a.key,
      json: { model: MODEL, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }], stop: "\n\n" },
    });
    expect(r.status).toBe(200);
    expect(r.body.object).toBe("chat.completion");
    expect(r.body.choices[0].message.role).toBe("assistant");
    const sent = runners.completions[0]!.body;
    // Rendering (and the template's end-of-turn stops) is the runner's: gpu-runner/src/tokenizer/chat-template.test.ts,
    // test/e2e/serve-own-model.test.ts (a model's own template through the real runner) hold the rendered strings.
    expect(sent.prompt).toBeUndefined();
    expect(sent.messages).toEqual([{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }]);
    expect([sent.stop].flat()).toEqual(["\n\n"]);
  });

  it("streams chat.completion.chunk events", async () => {
    const { a } = await setup();
    const res = await call("/v1/chat/completions", { key: a.key, json: { model: MODEL, messages: [{ role: "user", content: "Hi" }], stream: true } });
    const events = await readSse(res);
    expect(events[events.length - 1]).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks[0]).toMatchObject({ object: "chat.completion.chunk", choices: [{ delta: { role: "assistant", content: "Hel" } }] });
    expect(chunks.map((c) => c.choices[0].delta.content).join("")).toBe("Hello!");
  });
});

describe("limits and usage", () => {
  it("429 with Retry-After beyond the per-minute limit", async () => {
    const { a } = await setup({ rpm_limit: 2 });
    const json = { model: MODEL, prompt: "Hi" };
    expect((await call("/v1/completions", { key: a.key, json })).status).toBe(200);
    expect((await call("/v1/completions", { key: a.key, json })).status).toBe(200);
    const r = await callJson("/v1/completions", { key: a.key, json });
    expectError(r, 429, "rate_limit_error");
    const retry = Number(r.res.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect(runners.completions).toHaveLength(2);
  });

  it("requests refused while resolving (unknown adapter, bad prompt) count against the per-minute limit; once refused, the isolate refuses without D1 work", async () => {
    const { a } = await setup({ rpm_limit: 2 });
    const missing = { model: MODEL, prompt: "Hi", adapters: [{ id: "a/missing@1.0.0", weight: 1 }] };
    expectError(await callJson("/v1/completions", { key: a.key, json: missing }), 404);
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "x".repeat(200) } }), 400);
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi" } });
    expectError(r, 429, "rate_limit_error");
    expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
    const counted = () => env.DB.prepare("SELECT SUM(count) AS n FROM rate_windows WHERE tenant_id = ?").bind(a.id).first<{ n: number }>();
    expect((await counted())!.n).toBe(3);
    expectError(await callJson("/v1/completions", { key: a.key, json: missing }), 429);
    expect((await counted())!.n).toBe(3);
    expect(runners.completions).toHaveLength(0);
  });

  it("the per-minute counter is atomic under concurrent requests", async () => {
    const { a } = await setup({ rpm_limit: 3 });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => call("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi" } })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
    await Promise.all(results.map((r) => r.body?.cancel()));
  });

  it("429 once the daily token budget is used; usage is per tenant per day", async () => {
    // The first request reserves its most tokens before dispatch: "Hi" (2 bytes + BOS) + max_tokens 4 = 7
    // (test/worker/billing.test.ts holds the reservation itself).
    const { a, b } = await setup({ tokens_per_day: 7 });
    // The fake runner reports prompt_tokens = prompt length (2) and completion_tokens = min(max_tokens, 4).
    expect((await call("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", max_tokens: 4 } })).status).toBe(200);
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi" } });
    expectError(r, 429, "rate_limit_error");
    expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
    const usage = await callJson("/v1/usage", { key: a.key });
    expect(usage.status).toBe(200);
    expect(usage.body.data).toHaveLength(1);
    expect(usage.body.data[0]).toMatchObject({ requests: 1, prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
    expect(usage.body.data[0].date).toBe(new Date().toISOString().slice(0, 10));
    expect(usage.body.limits.tokens_per_day).toBe(7);
    expect((await callJson("/v1/usage", { key: b.key })).body.data).toEqual([]);
    expectError(await callJson("/v1/usage?from=2026-02-01&to=2026-01-01", { key: a.key }), 400);
    expectError(await callJson("/v1/usage?from=yesterday", { key: a.key }), 400);
  });
});

describe("models", () => {
  it("lists models of healthy runners and returns one with its manifest", async () => {
    const { a } = await setup();
    const list = await callJson("/v1/models", { key: a.key });
    // Base models first; adapters and compositions follow (test/worker/openai-conventions.test.ts).
    expect({ ...list.body, data: list.body.data.filter((m: any) => m.kind === "base") }).toMatchObject({
      object: "list",
      data: [{ id: MODEL, object: "model" }],
    });
    const one = await callJson(`/v1/models/${MODEL}`, { key: a.key });
    expect(one.body.manifest.targets).toHaveLength(6);
    expect(one.body.merge_only_targets).toEqual(["model.layers.0.mlp.gate_proj", "model.layers.1.mlp.gate_proj"]);
    expectError(await callJson("/v1/models/nope", { key: a.key }), 404);
    const { invalidateCatalog } = await import("../../workers/src/runners/catalog.js");
    for (const r of RUNNERS) runners.behaviour[r] = "down";
    invalidateCatalog();
    expect((await callJson("/v1/models", { key: a.key })).body.data).toEqual([]);
  });
});
