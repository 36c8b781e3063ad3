/**
 * An adapter's own chat template (PEFT repositories often ship tokenizer_config.json, or a
 * chat_template.jinja, beside the adapter): read from the upload's files, validated once at
 * upload time, stored, and carried to the runner in the generate request (`chat_template`).
 */
import { Template } from "@huggingface/jinja";
import { z } from "zod";
import { ChatTemplateError, chatTemplateFromSpec, templateSource, tokenString, type ChatTemplateSpec } from "./chat-template.js";

/** Largest template text accepted (UTF-8 bytes); real templates are 1–10 KB. */
export const MAX_CHAT_TEMPLATE_BYTES = 64 * 1024;
/** Largest bos_token / eos_token string. */
export const MAX_SPECIAL_TOKEN_CHARS = 256;

const encoder = new TextEncoder();

/** The stored / wire form (same field names as tokenizer_config.json). */
export const chatTemplateSpecSchema = z.object({
  template: z.string().min(1).refine((t) => encoder.encode(t).length <= MAX_CHAT_TEMPLATE_BYTES, `chat template larger than ${MAX_CHAT_TEMPLATE_BYTES} bytes`),
  bos_token: z.string().max(MAX_SPECIAL_TOKEN_CHARS).nullable(),
  eos_token: z.string().max(MAX_SPECIAL_TOKEN_CHARS).nullable(),
});

/** The conversation every template must render at upload: one user message (the probe content must appear in the prompt). */
export const PROBE_CONTENT = "Hello from loraedge";
const PROBE = [{ role: "user", content: PROBE_CONTENT }];

/**
 * The adapter's template from its upload files, or null when they carry none.
 *
 * Semantics: `chat_template.jinja` wins over tokenizer_config.json's `chat_template` (as
 * transformers loads them); bos_token / eos_token come from tokenizer_config.json (strings or
 * AddedToken objects; absent → null, and the runner uses the model's). Throws ChatTemplateError
 * (the caller answers 400 with its message) when tokenizer_config.json is not a JSON object, a
 * special token is not a string, the template is over MAX_CHAT_TEMPLATE_BYTES, does not parse,
 * raises or fails on a one-message user conversation, or renders a prompt without its content.
 * Cost: one parse and one render of the template.
 */
export function adapterChatTemplate(files: { tokenizerConfigText?: string; jinjaText?: string }): ChatTemplateSpec | null {
  let config: Record<string, unknown> = {};
  if (files.tokenizerConfigText !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(files.tokenizerConfigText);
    } catch (e) {
      throw new ChatTemplateError(`tokenizer_config.json is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new ChatTemplateError("tokenizer_config.json is not a JSON object");
    config = parsed as Record<string, unknown>;
  }
  const template = files.jinjaText !== undefined && files.jinjaText.length > 0 ? files.jinjaText : templateSource(config.chat_template);
  if (template === null) return null;
  const special = (name: "bos_token" | "eos_token"): string | null => {
    const value = config[name];
    if (value === undefined || value === null) return null;
    const text = tokenString(value);
    if (text === null) throw new ChatTemplateError(`tokenizer_config.json ${name} must be a string or {"content": string}`);
    return text;
  };
  const spec: ChatTemplateSpec = { template, bos_token: special("bos_token"), eos_token: special("eos_token") };
  const checked = chatTemplateSpecSchema.safeParse(spec);
  if (!checked.success) throw new ChatTemplateError(checked.error.issues.map((i) => `${i.path.join(".") || "template"}: ${i.message}`).join("; "));
  validateChatTemplate(spec);
  return spec;
}

/** Parses and renders the probe conversation; throws ChatTemplateError with the template's message. */
export function validateChatTemplate(spec: ChatTemplateSpec): void {
  try {
    new Template(spec.template);
  } catch (e) {
    throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message}`);
  }
  let prompt: string;
  try {
    prompt = chatTemplateFromSpec(spec, "adapter").render(PROBE);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw new ChatTemplateError(`chat template fails on a one-message user conversation: ${e.message}`);
    throw e;
  }
  if (!prompt.includes(PROBE_CONTENT)) throw new ChatTemplateError("chat template renders a prompt without the messages' content (does it loop over `messages`?)");
}
