// "Serve your own model" (README) end to end: import the ONNX Runtime GenAI fp16 Llama export
// (../shared/fixtures/tiny-random-llama-fp16) and a generated Hugging Face Llama checkpoint (bf16)
// into a model cache, start the real runner serving BOTH imported ids (RUNNER_MODELS=a,b) and the
// real worker under `wrangler dev`, upload a PEFT adapter made for the imported model, and chat
// with it through the official `openai` client (plain and streamed); an adapter uploaded with its own
// chat template renders chats that name only it.
import fs from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { importModel } from "../../gpu-runner/src/model-build/import-model.js";
import { createHfTokenizer } from "../../gpu-runner/src/tokenizer/hf-tokenizer.js";
import { seededLlamaCheckpoint } from "../../gpu-runner/src/model-build/seeded-checkpoint.js";
import { BYTE_LEVEL_VOCAB, writeHfCheckpoint } from "../../gpu-runner/src/model-build/testing/hf-checkpoint.js";
import { adapterUploadForm } from "../../client/src/upload-body.js";
import { randomPeftFiles, startEdgeStack, type EdgeStack } from "./edge-stack.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURE = path.join(REPO, "..", "shared", "fixtures", "tiny-random-llama-fp16");
const present = fs.existsSync(path.join(FIXTURE, "model.onnx.data"));
if (!present) console.warn(`skipping the serve-your-own-model e2e test: ${FIXTURE} is absent`);

const KEY = "le_e2e_own_model_" + "o".repeat(26);

type ChatWithAdapters = ChatCompletionCreateParamsNonStreaming & { adapters?: { id: string; weight: number }[] };

describe.skipIf(!present)("serve your own model (import → RUNNER_MODELS=a,b → upload a PEFT adapter → chat with the openai client)", () => {
  const work = mkdtempSync(path.join(tmpdir(), "loraedge-own-model-"));
  const cache = path.join(work, "models");
  let stack: EdgeStack | undefined;
  let openai: OpenAI;

  beforeAll(async () => {
    // npm run model:import -- ../shared/fixtures/tiny-random-llama-fp16 --id tiny-llama
    await importModel(FIXTURE, { id: "tiny-llama", cacheDir: cache });
    // A Hugging Face checkpoint folder as save_pretrained writes it (bf16, sharded).
    const hf = path.join(work, "my-llama");
    await writeHfCheckpoint(
      hf,
      seededLlamaCheckpoint({ vocabSize: BYTE_LEVEL_VOCAB, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64, contextLength: 256, ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false }, 3),
      { dtype: "BF16", shards: 2, tokenizer: "byte-level" },
    );
    await importModel(hf, { cacheDir: cache });

    stack = await startEdgeStack({
      tenant: "own",
      key: KEY,
      models: "tiny-llama,my-llama",
      runnerEnv: { LORAEDGE_MODEL_CACHE: cache },
      persistDir: path.join(work, "state"),
    });
    openai = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });

  afterAll(async () => {
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("lists both imported models and chats with each, plain and streamed", async () => {
    const ids = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(["tiny-llama", "my-llama"]));
    for (const model of ["tiny-llama", "my-llama"]) {
      const request = { model, messages: [{ role: "user" as const, content: "Hello there" }], max_tokens: 6, temperature: 0, seed: 1 };
      const chat = await openai.chat.completions.create(request);
      expect(chat.model).toBe(model);
      expect(chat.choices[0].message.role).toBe("assistant");
      expect(typeof chat.choices[0].message.content).toBe("string");
      expect(chat.usage!.completion_tokens).toBeGreaterThan(0);
      const stream = await openai.chat.completions.create({ ...request, stream: true });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      expect(text).toBe(chat.choices[0].message.content);
    }
  });

  it("renders the imported model's own chat template (Llama-2 [INST]) in the runner, and a conversation it rejects is a 400", async () => {
    const readJson = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(FIXTURE, name), "utf8"));
    const tokenizer = createHfTokenizer(readJson("tokenizer.json"), readJson("tokenizer_config.json"), { bosId: 1, eosId: 2 });
    // transformers' apply_chat_template(..., add_generation_prompt=True) of this conversation; its "<s>" is the BOS token.
    const rendered = "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST]";
    const messages = [{ role: "system" as const, content: "Be brief." }, { role: "user" as const, content: "Hi there" }];
    const chat = await openai.chat.completions.create({ model: "tiny-llama", messages, max_tokens: 2, temperature: 0, seed: 1 });
    expect(chat.usage!.prompt_tokens).toBe(tokenizer.encode(rendered).length);
    // …and not the default <|role|> template (BOS + its tokens).
    expect(chat.usage!.prompt_tokens).not.toBe(1 + tokenizer.encode("<|system|>\nBe brief.\n<|user|>\nHi there\n<|assistant|>\n").length);
    const refused = openai.chat.completions.create({ model: "tiny-llama", messages: [{ role: "assistant", content: "I start." }], max_tokens: 2 });
    await expect(refused).rejects.toMatchObject({ status: 400, type: "invalid_request_error", message: expect.stringContaining("Conversation roles must alternate") });
  });

  it("a PEFT adapter made for the imported fp16 model changes its answers through the openai client", async () => {
    const res = await fetch(`${stack!.url}/v1/models/tiny-llama`, { headers: { authorization: `Bearer ${KEY}` } });
    const { manifest } = (await res.json()) as { manifest: ModelManifest };
    expect(manifest).toMatchObject({ dtype: "float16", architecture: "llama" });
    const adapter = randomLoraAdapter(
      createRng(7),
      manifest.targets.filter((t) => t.mode === "unmerged").map((t) => ({ module: t.module, rank: 4, inFeatures: t.in, outFeatures: t.out, scale: 2 })),
      { baseModel: "tiny-llama" },
    );
    const files = writePeftAdapter(adapter, { baseModel: "tiny-llama" });
    const form = new FormData();
    form.set("name", "pirate");
    form.set("base_model", "tiny-llama");
    form.set("adapter_config.json", new Blob([JSON.stringify(files.config)], { type: "application/json" }), "adapter_config.json");
    form.set("adapter_model.safetensors", new Blob([files.safetensors as Uint8Array<ArrayBuffer>]), "adapter_model.safetensors");
    const uploaded = await fetch(`${stack!.url}/v1/adapters`, { method: "POST", headers: { authorization: `Bearer ${KEY}` }, body: form });
    expect(uploaded.status).toBe(201);

    const base: ChatWithAdapters = { model: "tiny-llama", messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 12, temperature: 0, seed: 1 };
    const plain = await openai.chat.completions.create(base);
    const withAdapter: ChatWithAdapters = { ...base, adapters: [{ id: "own/pirate@1.0.0", weight: 1 }] };
    const tuned = await openai.chat.completions.create(withAdapter);
    expect(tuned.choices[0].message.content).not.toBe(plain.choices[0].message.content);
    // Same request, same answer (greedy).
    expect((await openai.chat.completions.create(withAdapter)).choices[0].message.content).toBe(tuned.choices[0].message.content);
    // An adapter for another model is refused with the client's error class.
    await expect(openai.chat.completions.create({ ...withAdapter, model: "my-llama" } as ChatWithAdapters)).rejects.toBeInstanceOf(OpenAI.APIError);
  });

  it("an adapter uploaded with its own chat template: a chat naming only it renders with it; a 2-adapter mix with the model's", async () => {
    const res = await fetch(`${stack!.url}/v1/models/tiny-llama`, { headers: { authorization: `Bearer ${KEY}` } });
    const { manifest } = (await res.json()) as { manifest: ModelManifest };
    // A ChatML-style template (as a PEFT repo's tokenizer_config.json carries it) that refuses assistant-first conversations.
    const chatml =
      "{% if messages[0].role == 'assistant' %}{{ raise_exception('this adapter wants the user to speak first') }}{% endif %}" +
      "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    // The API client's upload form, with the optional tokenizer_config.json part.
    const form = adapterUploadForm({ ...randomPeftFiles(manifest, 8, 2), tokenizerConfig: { chat_template: chatml, eos_token: "<|im_end|>" } }, { name: "chatml", base_model: "tiny-llama" });
    const uploaded = await fetch(`${stack!.url}/v1/adapters`, { method: "POST", headers: { authorization: `Bearer ${KEY}` }, body: form });
    expect(uploaded.status).toBe(201);
    expect(((await uploaded.json()) as { chat_template: boolean }).chat_template).toBe(true);

    const readJson = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(FIXTURE, name), "utf8"));
    const tokenizer = createHfTokenizer(readJson("tokenizer.json"), readJson("tokenizer_config.json"), { bosId: 1, eosId: 2 });
    const messages = [{ role: "user" as const, content: "Hi there" }];
    // The adapter's template does not render bos_token: the runner prepends BOS.
    const adapterPrompt = 1 + tokenizer.encode("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n").length;
    const modelPrompt = tokenizer.encode("<s>[INST] Hi there [/INST]").length;
    expect(adapterPrompt).not.toBe(modelPrompt);
    const solo = await openai.chat.completions.create({ model: "own/chatml", messages, max_tokens: 2, temperature: 0, seed: 1 });
    expect(solo.usage!.prompt_tokens).toBe(adapterPrompt);
    const pair: ChatWithAdapters = { model: "own/chatml", messages, max_tokens: 2, temperature: 0, seed: 1, adapters: [{ id: "own/pirate@1.0.0", weight: 1 }] };
    expect((await openai.chat.completions.create(pair)).usage!.prompt_tokens).toBe(modelPrompt);
    // The adapter's raise_exception at request time: a 400 with its message.
    const refused = openai.chat.completions.create({ model: "own/chatml", messages: [{ role: "assistant", content: "I start." }], max_tokens: 2 });
    await expect(refused).rejects.toMatchObject({ status: 400, type: "invalid_request_error", message: expect.stringContaining("this adapter wants the user to speak first") });
  });
});
