/**
 * Chat templates: the model's own Jinja `chat_template` (the real Llama-2 template of
 * ../shared/fixtures/tiny-random-llama-fp16) and the documented default.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ChatTemplateError, chatTemplateFromConfig, defaultChatTemplate } from "#core/chat/chat-template";
import { createHfTokenizer } from "./hf-tokenizer.js";

const REPO = path.resolve(import.meta.dirname, "..", "..", "..");
const FIXTURE = path.join(REPO, "..", "shared", "fixtures", "tiny-random-llama-fp16");
const present = fs.existsSync(path.join(FIXTURE, "tokenizer_config.json"));
if (!present) console.warn(`skipping Llama chat-template tests: ${FIXTURE} is absent`);
const readJson = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(FIXTURE, name), "utf8"));

describe("defaultChatTemplate (models without a chat_template)", () => {
  it("renders one <|role|> line per message, then an open assistant turn, and stops at role markers", () => {
    const text = defaultChatTemplate.render([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ]);
    expect(text).toBe("<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n");
    expect(defaultChatTemplate.stop).toEqual(["<|user|>", "<|system|>", "<|assistant|>"]);
    expect(defaultChatTemplate.templateAddsBos).toBe(false);
  });

  it("keeps Jinja-looking content literal", () => {
    expect(defaultChatTemplate.render([{ role: "user", content: "{{ 1 + 1 }} {% if %}" }])).toBe("<|user|>\n{{ 1 + 1 }} {% if %}\n<|assistant|>\n");
  });
});

describe("chatTemplateFromConfig", () => {
  it("is null without a chat_template", () => {
    expect(chatTemplateFromConfig({ bos_token: "<s>" })).toBeNull();
    expect(chatTemplateFromConfig(undefined)).toBeNull();
  });

  it("takes the 'default' entry of the list form and AddedToken-shaped special tokens", () => {
    const t = chatTemplateFromConfig({
      bos_token: { content: "<s>", lstrip: false },
      eos_token: { content: "</s>" },
      chat_template: [
        { name: "tool_use", template: "tools" },
        { name: "default", template: "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}" },
      ],
    })!;
    expect(t.render([{ role: "user", content: "x" }])).toBe("<s>x</s>");
    expect(t.stopTokens).toEqual(["</s>"]);
  });

  it("reports a template that does not parse as ChatTemplateError on render", () => {
    const t = chatTemplateFromConfig({ chat_template: "{% for m in messages %}" })!;
    expect(() => t.render([{ role: "user", content: "x" }])).toThrow(ChatTemplateError);
    expect(() => t.render([{ role: "user", content: "x" }])).toThrow(/does not parse/);
  });
});

describe.skipIf(!present)("the Llama-2 chat_template of tiny-random-llama-fp16", () => {
  const template = () => chatTemplateFromConfig(readJson("tokenizer_config.json"))!;

  it("renders a system+user conversation exactly as transformers' apply_chat_template", () => {
    const t = template();
    expect(t.source).toBe("model");
    expect(t.templateAddsBos).toBe(true);
    expect(t.stopTokens).toEqual(["</s>"]);
    const text = t.render([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi there" },
    ]);
    expect(text).toBe("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST]");
  });

  it("renders a multi-turn conversation with the assistant's turn closed by eos_token", () => {
    const text = template().render([
      { role: "user", content: "Hi" },
      { role: "assistant", content: " Hello! " },
      { role: "user", content: "Bye" },
    ]);
    expect(text).toBe("<s>[INST] Hi [/INST] Hello! </s><s>[INST] Bye [/INST]");
  });

  it("raises the template's own message for an assistant-first conversation", () => {
    const t = template();
    expect(() => t.render([{ role: "assistant", content: "I start." }])).toThrow(ChatTemplateError);
    expect(() => t.render([{ role: "assistant", content: "I start." }])).toThrow("Conversation roles must alternate user/assistant/user/assistant/...");
  });

  it("the tokenizer carries the template, and the rendered BOS marker encodes to the BOS id", () => {
    const tokenizer = createHfTokenizer(readJson("tokenizer.json"), readJson("tokenizer_config.json"), { bosId: 1, eosId: 2 });
    expect(tokenizer.chatTemplate?.source).toBe("model");
    expect(tokenizer.chatStopIds).toBeUndefined(); // eos_token is the model's EOS already
    const ids = tokenizer.encode(tokenizer.chatTemplate!.render([{ role: "user", content: "Hi" }]));
    expect(ids[0]).toBe(1);
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
  });
});
