/**
 * Which template renders a chat and which tokens end a turn, through the real engine on an
 * imported model (a generated HF Llama checkpoint with a byte-level tokenizer: one token per byte,
 * so prompt token counts read the rendered text exactly):
 * - generation_config.json's end-of-turn ids stop generation (forced with logit_bias), and a model
 *   imported without it generates through them; the model template's own eos_token ends chats only;
 * - a request's `chat_template` (an adapter's) renders instead of the model's, its eos_token stops
 *   the turn, its missing special tokens are the model's, and its raise_exception is a 400.
 */
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateRequestSchema, type GenerateRequestInput } from "#core/wire/runner-api";
import { importModel } from "../model-build/import-model.js";
import { seededLlamaCheckpoint } from "../model-build/seeded-checkpoint.js";
import { BYTE_LEVEL_SPECIAL, BYTE_LEVEL_VOCAB, writeHfCheckpoint } from "../model-build/testing/hf-checkpoint.js";
import { loadModel } from "../model/load-model.js";
import type { BaseModel } from "../model/types.js";
import { ModelEngine } from "./model-engine.js";

const PIPE = "|".charCodeAt(0); // the model's end-of-turn token (byte-level: id = byte)
const HASH = "#".charCodeAt(0); // the adapter template's eos_token
const MODEL_TEMPLATE = "{% for m in messages %}{{ m.role + ': ' + m.content + '\\n' }}{% endfor %}";

let work: string;
const models: BaseModel[] = [];
let withEot: ModelEngine;
let withoutEot: ModelEngine;
let chatmlEos: ModelEngine;

const engineOf = (model: BaseModel) =>
  new ModelEngine(model, null, { limits: { maxBatch: 4, maxTokens: 4096, maxQueue: 16, prefillChunk: 64 }, merge: { policy: "never", budgetBytes: 0 } });
const request = (input: Omit<GenerateRequestInput, "model">) => generateRequestSchema.parse({ model: "m", temperature: 0, max_tokens: 4, ...input });

beforeAll(async () => {
  work = await fsp.mkdtemp(path.join(os.tmpdir(), "loraedge-engine-chat-"));
  const config = { vocabSize: BYTE_LEVEL_VOCAB, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 8, intermediateSize: 32, contextLength: 128, ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false };
  const src = path.join(work, "chat-llama");
  await writeHfCheckpoint(src, seededLlamaCheckpoint(config, 11), { tokenizer: "byte-level", tokenizerConfig: { chat_template: MODEL_TEMPLATE, bos_token: "<s>", eos_token: "</s>" } });
  const plain = await importModel(src, { cacheDir: work, id: "no-eot" });
  // Llama-3-Instruct style: config.json names one eos, generation_config.json the end-of-turn ones too.
  await fsp.writeFile(path.join(src, "generation_config.json"), JSON.stringify({ eos_token_id: [BYTE_LEVEL_SPECIAL.eos, PIPE] }));
  const eot = await importModel(src, { cacheDir: work, id: "with-eot" });
  expect(eot.manifest.tokenizer).toMatchObject({ eosId: BYTE_LEVEL_SPECIAL.eos, endOfTurnIds: [PIPE] });
  expect(plain.manifest.tokenizer.endOfTurnIds).toBeUndefined();
  // ChatML style: the template's eos_token ("#" here, <|im_end|> there) is not the model's EOS.
  await fsp.rm(path.join(src, "generation_config.json"));
  await fsp.writeFile(path.join(src, "tokenizer_config.json"), JSON.stringify({ chat_template: MODEL_TEMPLATE, bos_token: "<s>", eos_token: "#" }));
  const chatml = await importModel(src, { cacheDir: work, id: "chatml-eos" });
  for (const dir of [eot.dir, plain.dir, chatml.dir]) models.push(await loadModel(dir, { backend: "node", threads: 1 }));
  withEot = engineOf(models[0]!);
  withoutEot = engineOf(models[1]!);
  chatmlEos = engineOf(models[2]!);
});

afterAll(async () => {
  for (const m of models) await m.dispose();
  await fsp.rm(work, { recursive: true, force: true });
});

describe("end-of-turn ids of generation_config.json", () => {
  const forced = { logit_bias: { [String(PIPE)]: 100 } };

  it("end completions and chats like EOS; ignore_eos and a model without them generate through", async () => {
    const completion = await withEot.generate(request({ prompt: "hi", ...forced }));
    expect(completion).toMatchObject({ finishReason: "stop", text: "", completionTokens: 1 });
    const chat = await withEot.generate(request({ messages: [{ role: "user", content: "hi" }], ...forced }));
    expect(chat).toMatchObject({ finishReason: "stop", text: "", completionTokens: 1 });
    expect(await withEot.generate(request({ prompt: "hi", ignore_eos: true, ...forced }))).toMatchObject({ finishReason: "length", text: "||||" });
    expect(await withoutEot.generate(request({ prompt: "hi", ...forced }))).toMatchObject({ finishReason: "length", text: "||||" });
  });
});

describe("the model's own template's eos_token (tokenizer_config.json), when it is not the EOS", () => {
  it("ends a chat's turn (chatStopIds), not a text completion", async () => {
    expect(models[2]!.tokenizer.chatStopIds).toEqual([HASH]);
    const forced = { logit_bias: { [String(HASH)]: 100 } };
    expect(await chatmlEos.generate(request({ messages: [{ role: "user", content: "hi" }], ...forced }))).toMatchObject({ finishReason: "stop", completionTokens: 1 });
    expect(await chatmlEos.generate(request({ prompt: "hi", ...forced }))).toMatchObject({ finishReason: "length", text: "####" });
  });
});

describe("a request's chat_template (an adapter's own)", () => {
  const messages = [{ role: "user", content: "Hi" }];

  it("renders instead of the model's (echoed prompt and token count), and a mix without one keeps the model's", async () => {
    const own = await withoutEot.start(request({ messages, echo: true, max_tokens: 1, chat_template: { template: "[U]{{ messages[0].content }}[A]", bos_token: null, eos_token: null } }));
    // BOS + one token per byte of the rendered text.
    expect(own.promptTokens).toBe(1 + "[U]Hi[A]".length);
    expect((await own.result).text.startsWith("[U]Hi[A]")).toBe(true);
    const model = await withoutEot.start(request({ messages, echo: true, max_tokens: 1 }));
    expect(model.promptTokens).toBe(1 + "user: Hi\n".length);
    expect((await model.result).text.startsWith("user: Hi\n")).toBe(true);
  });

  it("takes the model's bos_token when it names none (rendered BOS, none prepended), and stops at its own eos_token", async () => {
    const bos = await withoutEot.start(request({ messages, max_tokens: 1, chat_template: { template: "{{ bos_token }}{{ messages[0].content }}", bos_token: null, eos_token: null } }));
    expect(bos.promptTokens).toBe(3); // "<s>" (one added token) + "H" + "i"
    await bos.result;
    const forced = { logit_bias: { [String(HASH)]: 100 } };
    const spec = { template: "{{ messages[0].content }}", bos_token: null, eos_token: "#" };
    expect(await withoutEot.generate(request({ messages, chat_template: spec, ...forced }))).toMatchObject({ finishReason: "stop", completionTokens: 1 });
    expect(await withoutEot.generate(request({ messages, ...forced }))).toMatchObject({ finishReason: "length", text: "####" });
  });

  it("answers 400 with the template's message when it raises for the conversation", async () => {
    const chat_template = { template: "{% if messages[0].role != 'system' %}{{ raise_exception('a system message comes first') }}{% endif %}ok", bos_token: null, eos_token: null };
    await expect(withoutEot.start(request({ messages, chat_template }))).rejects.toMatchObject({ status: 400, type: "invalid_request_error", message: "chat template: a system message comes first" });
  });
});
