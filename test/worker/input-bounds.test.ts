// Edge input bounds (#12): mix weights and w·s per module, prompt length against the context,
// version and free-form string lengths. Every refusal is a 400/413 before anything is stored or
// forwarded to a runner.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { MIX_MODULE_SCALE_LIMIT, MIX_WEIGHT_LIMIT, mixBoundsViolation } from "#core/wire/mix-bounds";
import { promptTokensLowerBound, chatPromptTokensLowerBound } from "../../workers/src/validation/prompt-bounds.js";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { useFakeRunners, MANIFEST, MODEL } from "./fake-runner.js";
import { callJson, expectError, newTenant, uploadAdapter } from "./helpers.js";

const runners = useFakeRunners();

/** An adapter on q_proj of layer 0 whose scale is `scale`. */
function scaledAdapter(scale: number) {
  return randomLoraAdapter(createRng(9), [{ module: "model.layers.0.self_attn.q_proj", rank: 2, inFeatures: 16, outFeatures: 16, scale }], {
    baseModel: MODEL,
  });
}

async function setup() {
  const a = await newTenant("a");
  const x = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }))).body; // scale 2
  const big = (await uploadAdapter(a.key, uploadForm(peftFiles(scaledAdapter(1000)), { name: "big" }))).body; // scale 1000
  expect(x.id && big.id).toBeTruthy();
  return { a, x, big };
}

const complete = (key: string, body: Record<string, unknown>) => callJson("/v1/completions", { key, json: { model: MODEL, prompt: "Hi", ...body } });

describe("mix bounds", () => {
  it("mixBoundsViolation: |w| ≤ 1e3, Σ|w·s| per module ≤ 1e5 (sums repeated and overlapping entries)", () => {
    const t = (weight: number, scale = 2, targets = ["m1"]) => ({ label: "t", weight, scale, targets });
    expect(mixBoundsViolation([t(MIX_WEIGHT_LIMIT), t(-MIX_WEIGHT_LIMIT)])).toBeNull();
    expect(mixBoundsViolation([t(MIX_WEIGHT_LIMIT * 1.001)])).toMatch(/outside the allowed range/);
    expect(mixBoundsViolation([t(1e38)])).toMatch(/outside/);
    expect(mixBoundsViolation([t(Number.NaN)])).toMatch(/outside/);
    expect(mixBoundsViolation([t(100, MIX_MODULE_SCALE_LIMIT / 100)])).toBeNull();
    expect(mixBoundsViolation([t(100, MIX_MODULE_SCALE_LIMIT / 100 + 1)])).toMatch(/module 'm1'/);
    // Two entries on the same module add up; on disjoint modules they do not.
    const half = MIX_MODULE_SCALE_LIMIT / 2 / 100 + 1;
    expect(mixBoundsViolation([t(100, half, ["m1"]), t(-100, half, ["m2"])])).toBeNull();
    expect(mixBoundsViolation([t(100, half, ["m1"]), t(-100, half, ["m1"])])).toMatch(/module 'm1'/);
    expect(mixBoundsViolation([t(1, Number.POSITIVE_INFINITY)])).toMatch(/non-finite scale/);
  });

  it("completions: a weight beyond ±1e3 is 400 and never reaches a runner; 1e3 itself passes", async () => {
    const { a, x } = await setup();
    for (const w of [1e38, -1001, 1e3 + 0.5]) {
      expectError(await complete(a.key, { adapters: [{ id: x.id, weight: w }] }), 400, "invalid_request_error");
    }
    expect(runners.completions).toHaveLength(0);
    expect((await complete(a.key, { adapters: [{ id: x.id, weight: -1e3 }] })).status).toBe(200);
    expect(runners.completions).toHaveLength(1);
  });

  it("completions: the product w·s per module is bounded (scale from the stored record), summed over entries", async () => {
    const { a, x, big } = await setup();
    // 1000 (scale) × 100 = 1e5: at the limit.
    expect((await complete(a.key, { adapters: [{ id: big.id, weight: 100 }] })).status).toBe(200);
    const over = await complete(a.key, { adapters: [{ id: big.id, weight: 101 }] });
    expectError(over, 400, "invalid_request_error");
    expect(over.body.error.message).toMatch(/model\.layers\.0\.self_attn\.q_proj.*limit/);
    // Two entries of 60 on the same module: 1.2e5.
    expectError(await complete(a.key, { adapters: [{ id: big.id, weight: 60 }, { id: "a/big@1.0.0", weight: -60 }] }), 400);
    // x touches q_proj of layer 0 too: 2·1000 + 1000·99 = 1.01e5.
    expectError(await complete(a.key, { adapters: [{ id: big.id, weight: 99 }, { id: x.id, weight: 1000 }] }), 400);
    expect(runners.completions).toHaveLength(1);
  });

  it("compositions: out-of-range weights and products are refused when saved (nothing stored)", async () => {
    const { a, x, big } = await setup();
    expectError(await callJson("/v1/compositions", { key: a.key, json: { name: "c", adapters: [{ id: x.id, weight: 1e38 }] } }), 400);
    expectError(await callJson("/v1/compositions", { key: a.key, json: { name: "c", adapters: [{ id: big.id, weight: 500 }] } }), 400);
    const n = await env.DB.prepare("SELECT count(*) AS n FROM compositions").first<{ n: number }>();
    expect(n?.n).toBe(0);
  });

  it("a saved composition whose weights are out of range (stored before the bounds) is refused when run or baked", async () => {
    const { a, x } = await setup();
    const comp = await callJson("/v1/compositions", { key: a.key, json: { name: "c", adapters: [{ id: x.id, weight: 1 }] } });
    expect(comp.status).toBe(201);
    await env.DB.prepare("UPDATE composition_adapters SET weight = 1e38").run();
    expectError(await complete(a.key, { composition: "c" }), 400, "invalid_request_error");
    expect(runners.completions).toHaveLength(0);
    const bake = await callJson(`/v1/compositions/${comp.body.id}/bake`, { key: a.key, json: { strategy: "linear", name: "baked" } });
    expectError(bake, 400, "invalid_request_error");
    const n = await env.DB.prepare("SELECT count(*) AS n FROM adapters WHERE name = 'baked'").first<{ n: number }>();
    expect(n?.n).toBe(0);
  });
});

describe("prompt length against the model's context (byte tokenizer: tokens = bytes + BOS)", () => {
  // MANIFEST: contextLength 128, byte tokenizer with BOS.
  it("refuses at the edge exactly when the runner would: bytes + BOS + max_tokens > context", async () => {
    const { a } = await setup();
    const fits = "é".repeat(55) + "x"; // 111 bytes + BOS + 16 = 128
    expect((await complete(a.key, { prompt: fits, max_tokens: 16 })).status).toBe(200);
    const over = await complete(a.key, { prompt: fits + "x", max_tokens: 16 });
    expectError(over, 400, "invalid_request_error");
    expect(over.body.error.message).toMatch(/context length of tiny-test \(128\)/);
    // A 10 MB prompt is refused without being forwarded.
    expectError(await complete(a.key, { prompt: "x".repeat(10_000_000) }), 400);
    // Token-id prompts are counted exactly (no BOS added by the runner).
    expect((await complete(a.key, { prompt: Array.from({ length: 112 }, () => 1), max_tokens: 16 })).status).toBe(200);
    expectError(await complete(a.key, { prompt: Array.from({ length: 113 }, () => 1), max_tokens: 16 }), 400);
    // Chat: bounded from below by the last message (the runner renders the template).
    const chat = await callJson("/v1/chat/completions", { key: a.key, json: { model: MODEL, messages: [{ role: "user", content: "y".repeat(200) }] } });
    expectError(chat, 400);
    expect(runners.completions).toHaveLength(2);
  });

  it("the bound never exceeds the runner's count; an hf tokenizer without a declared bound is left to the runner", () => {
    expect(promptTokensLowerBound(MANIFEST, "héllo")).toBe(7); // 6 bytes + BOS
    const hf = { ...MANIFEST, tokenizer: { kind: "hf" as const, bosId: null, eosId: 2 } };
    expect(promptTokensLowerBound(hf, "x".repeat(1000))).toBeNull();
    expect(promptTokensLowerBound({ ...hf, tokenizer: { ...hf.tokenizer, maxBytesPerToken: 16 } }, "x".repeat(1000))).toBe(63);
    expect(promptTokensLowerBound(hf, [1, 2, 3])).toBe(3);
    // Chat: only the last message, trimmed, no BOS (a template may drop or rewrite earlier ones).
    const chat = [{ content: "z".repeat(500) }, { content: "  héllo \n" }];
    expect(chatPromptTokensLowerBound(MANIFEST, chat)).toBe(6);
    expect(chatPromptTokensLowerBound(hf, chat)).toBeNull();
  });

  it("an inference body beyond 32 MiB is 413 before parsing", async () => {
    const { a } = await setup();
    const r = await callJson("/v1/completions", {
      key: a.key,
      body: `{"model":"${MODEL}","prompt":"${"x".repeat(33 * 1024 * 1024)}"}`,
      headers: { "content-type": "application/json" },
    });
    expectError(r, 413, "payload_too_large_error");
  });
});

describe("string bounds", () => {
  it("version: semver and at most 64 characters (upload and bake)", async () => {
    const a = await newTenant("a");
    const files = peftFiles(tinyAdapter(1, 2));
    const long = `1.0.0-${"a".repeat(59)}`; // 65 chars, valid semver
    expectError(await uploadAdapter(a.key, uploadForm(files, { name: "v", version: long })), 400);
    expectError(await uploadAdapter(a.key, uploadForm(files, { name: "v", version: "1.0.0-" + "a".repeat(60_000) })), 400);
    expect((await uploadAdapter(a.key, uploadForm(files, { name: "v", version: long.slice(0, 64) }))).status).toBe(201);
    const comp = await callJson("/v1/compositions", { key: a.key, json: { name: "c", adapters: [{ id: "a/v", weight: 1 }] } });
    expect(comp.status).toBe(201);
    expectError(await callJson(`/v1/compositions/c/bake`, { key: a.key, json: { strategy: "linear", name: "b", version: long } }), 400);
  });

  it("names, base models, tags, users, stop sequences and ids are length-limited", async () => {
    const { a, x } = await setup();
    const files = peftFiles(tinyAdapter(1, 2));
    expectError(await uploadAdapter(a.key, uploadForm(files, { name: "n".repeat(65) })), 400);
    expectError(await uploadAdapter(a.key, uploadForm(files, { name: "n", base_model: "m".repeat(129) })), 400);
    expectError(await uploadAdapter(a.key, uploadForm(files, { name: "n", tags: "t,".repeat(600) })), 400);
    expectError(await uploadAdapter(a.key, uploadForm(files, { name: "n", description: "d".repeat(4001) })), 400);
    expectError(await complete(a.key, { user: "u".repeat(257) }), 400);
    expectError(await complete(a.key, { stop: "s".repeat(257) }), 400);
    expectError(await complete(a.key, { model: "m".repeat(129) }), 400);
    expectError(await complete(a.key, { adapters: [{ id: "i".repeat(257), weight: 1 }] }), 400);
    expectError(await callJson(`/v1/adapters/${x.id}`, { key: a.key, method: "PATCH", json: { tags: "t".repeat(2000) } }), 400);
    const n = await env.DB.prepare("SELECT count(*) AS n FROM adapters").first<{ n: number }>();
    expect(n?.n).toBe(2);
  });
});
