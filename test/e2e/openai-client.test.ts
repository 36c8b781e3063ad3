// The official `openai` npm client against the real worker (`wrangler dev`) and the real runner:
// models.list (base, adapter and composition with `parent`), completions and chat with and
// without streaming (an adapter named as `model`, include_usage), and API errors mapped to its
// exception classes. Nothing here is faked.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { E2E_MODEL, randomPeftFiles, startEdgeStack, type EdgeStack } from "./edge-stack.js";

const KEY = "le_e2e_openai_" + "o".repeat(28);
const MODEL = E2E_MODEL;

describe("openai npm client against the real worker + runner", () => {
  let stack: EdgeStack | undefined;
  let client: OpenAI;
  let adapterModel: string;

  const api = (p: string, init: RequestInit & { key?: string } = {}) =>
    fetch(stack!.url + p, { ...init, headers: { authorization: `Bearer ${init.key ?? KEY}`, ...(init.headers ?? {}) } });

  beforeAll(async () => {
    stack = await startEdgeStack({ tenant: "oai", key: KEY });
    client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0 });

    // One real PEFT adapter and a composition of it.
    const manifest = ((await (await api(`/v1/models/${MODEL}`)).json()) as { manifest: ModelManifest }).manifest;
    const files = randomPeftFiles(manifest, 11, 4, { scale: 0.5 });
    const form = new FormData();
    form.set("adapter_config.json", new File([JSON.stringify(files.config)], "adapter_config.json"));
    form.set("adapter_model.safetensors", new File([files.weights as Uint8Array<ArrayBuffer>], "adapter_model.safetensors"));
    form.set("name", "pirate");
    form.set("base_model", MODEL);
    const up = await api("/v1/adapters", { method: "POST", body: form });
    expect(up.status).toBe(201);
    adapterModel = "oai/pirate@1.0.0";
    const comp = await api("/v1/compositions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "blend", adapters: [{ id: adapterModel, weight: 1 }] }),
    });
    expect(comp.status).toBe(201);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it("models.list shows the base model, the adapter and the composition with `parent`; models.retrieve each", async () => {
    const models: (OpenAI.Models.Model & { parent?: string | null })[] = [];
    for await (const m of client.models.list()) models.push(m);
    const byId = new Map(models.map((m) => [m.id, m]));
    expect(byId.get(MODEL)).toMatchObject({ object: "model", parent: null });
    expect(byId.get(adapterModel)).toMatchObject({ object: "model", parent: MODEL, owned_by: "oai" });
    expect(byId.get("composition:blend")).toMatchObject({ object: "model", parent: MODEL });
    for (const id of [MODEL, adapterModel, "composition:blend"]) expect((await client.models.retrieve(id)).id).toBe(id);
  });

  it("completions: an adapter as `model` equals the `adapters` form; streaming yields the same text", async () => {
    const params = { prompt: "Ahoy", max_tokens: 8, temperature: 0 };
    const named = await client.completions.create({ model: adapterModel, ...params });
    expect(named.model).toBe(adapterModel);
    const explicit = await client.completions.create({ model: MODEL, ...params, adapters: [{ id: adapterModel, weight: 1 }] } as never);
    const base = await client.completions.create({ model: MODEL, ...params });
    expect(named.choices[0]!.text).toBe(explicit.choices[0]!.text);
    expect(named.choices[0]!.text).not.toBe(base.choices[0]!.text); // the adapter matters
    const viaComposition = await client.completions.create({ model: "composition:blend", ...params });
    expect(viaComposition.choices[0]!.text).toBe(named.choices[0]!.text);

    const stream = await client.completions.create({ model: adapterModel, ...params, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage: OpenAI.Completions.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      if (chunk.usage && chunk.choices.length === 0) usage = chunk.usage;
    }
    expect(text).toBe(named.choices[0]!.text);
    expect(usage).toEqual(named.usage);
  });

  it("chat with and without streaming, with penalties and logit_bias accepted", async () => {
    const messages = [{ role: "user" as const, content: "Say something" }];
    const params = { messages, max_tokens: 6, temperature: 0, presence_penalty: 0.5, frequency_penalty: 0.5, logit_bias: { "97": 2 }, user: "u-1" };
    const chat = await client.chat.completions.create({ model: adapterModel, ...params });
    expect(chat.object).toBe("chat.completion");
    expect(chat.choices[0]!.message.role).toBe("assistant");
    const stream = await client.chat.completions.create({ model: adapterModel, ...params, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(chat.choices[0]!.message.content);
  });

  it("maps API errors to the client's exception classes", async () => {
    const anonymous = new OpenAI({ baseURL: `${stack!.url}/v1`, apiKey: "le_wrong_" + "x".repeat(30), maxRetries: 0 });
    await expect(anonymous.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(client.completions.create({ model: "oai/nope@1.0.0", prompt: "x" })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.models.retrieve("composition:none")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.completions.create({ model: MODEL, prompt: "x", n: 2 })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    const bad = client.completions.create({ model: MODEL, prompt: "x", frequency_penalty: 5 });
    await expect(bad).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(bad).rejects.toThrow(/frequency_penalty/);

    // A tenant limited to one request a minute: the second is a RateLimitError.
    const created = await api("/v1/tenants", {
      method: "POST",
      key: stack!.adminToken,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "limited", rpm_limit: 1 }),
    });
    expect(created.status).toBe(201);
    const limitedKey = ((await created.json()) as { api_key: { key: string } }).api_key.key;
    const limited = new OpenAI({ baseURL: `${stack!.url}/v1`, apiKey: limitedKey, maxRetries: 0 });
    await limited.completions.create({ model: MODEL, prompt: "x", max_tokens: 1 });
    await expect(limited.completions.create({ model: MODEL, prompt: "x", max_tokens: 1 })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
  });
});
