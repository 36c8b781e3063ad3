import { Template } from "@huggingface/jinja";

/** One chat message as the wire carries it (core/src/wire/runner-api.ts `messages`). */
export interface ChatMessage {
  role: string;
  content: string;
}

/**
 * A chat template: messages → the prompt text the model (or adapter) was tuned on.
 *
 * Semantics: `render` applies the Jinja template with `add_generation_prompt: true` and
 * bos_token/eos_token from tokenizer_config.json, like transformers' `apply_chat_template`.
 * When `templateAddsBos` the rendered text already carries the BOS marker, so it is encoded
 * as is (add_special_tokens=false); otherwise the runner prepends BOS as for a text prompt.
 * `stop` are stop strings that end the assistant's turn; `stopTokens` are token strings
 * (eos_token of the config) whose ids end generation like the model's EOS.
 * A template error, or `raise_exception` for a conversation it rejects, throws
 * ChatTemplateError with the template's message.
 */
export interface ChatTemplate {
  /** "model": the model's tokenizer_config.json; "adapter": uploaded with the request's adapter; "default": ours. */
  readonly source: "model" | "adapter" | "default";
  readonly templateAddsBos: boolean;
  readonly stop: readonly string[];
  readonly stopTokens: readonly string[];
  render(messages: readonly ChatMessage[]): string;
}

export class ChatTemplateError extends Error {}

/**
 * The template of models without their own (the default loraedge models are not
 * instruction-tuned, so this is a plain, documented convention):
 *
 *   <|system|>\n{content}\n<|user|>\n{content}\n<|assistant|>\n{content}\n … <|assistant|>\n
 *
 * One `<|role|>` line per message, its content, a newline; the prompt ends with an open
 * `<|assistant|>\n` turn. Generation stops at the next role marker.
 */
export const DEFAULT_CHAT_TEMPLATE_SOURCE =
  "{% for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
export const DEFAULT_CHAT_STOP = ["<|user|>", "<|system|>", "<|assistant|>"] as const;

/** A special token of tokenizer_config.json: a string, or an AddedToken object `{content}`. */
export function tokenString(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") return (value as { content: string }).content;
  return null;
}

/** The template text of a tokenizer_config.json `chat_template`: a string, or the list form `[{name, template}]`'s "default" entry. */
export function templateSource(chatTemplate: unknown): string | null {
  let source = chatTemplate;
  if (Array.isArray(source)) source = (source as { name?: unknown; template?: unknown }[]).find((t) => t?.name === "default")?.template;
  return typeof source === "string" && source.length > 0 ? source : null;
}

/** A template and its special tokens: what a model's tokenizer_config.json, or an adapter's upload, carries. */
export interface ChatTemplateSpec {
  template: string;
  bos_token: string | null;
  eos_token: string | null;
}

function compile(spec: ChatTemplateSpec, source: ChatTemplate["source"]): ChatTemplate {
  const props = {
    source,
    templateAddsBos: spec.bos_token !== null && spec.template.includes("bos_token"),
    stop: [],
    stopTokens: spec.eos_token !== null ? [spec.eos_token] : [],
  };
  const context = { bos_token: spec.bos_token ?? "", eos_token: spec.eos_token ?? "" };
  let template: Template;
  try {
    template = new Template(spec.template);
  } catch (e) {
    const message = (e as Error).message;
    // A broken template fails every chat request with its parse error (never at load time).
    return { ...props, render: () => { throw new ChatTemplateError(`the ${source}'s chat template does not parse: ${message}`); } };
  }
  return {
    ...props,
    render(messages) {
      try {
        return template.render({ ...context, messages: messages.map((m) => ({ role: m.role, content: m.content })), add_generation_prompt: true });
      } catch (e) {
        throw new ChatTemplateError((e as Error).message);
      }
    },
  };
}

export const defaultChatTemplate: ChatTemplate = {
  ...compile({ template: DEFAULT_CHAT_TEMPLATE_SOURCE, bos_token: null, eos_token: null }, "default"),
  stop: DEFAULT_CHAT_STOP,
};

/** The template and special tokens of a tokenizer_config.json, or null when it has no chat_template. */
export function chatTemplateSpecFromConfig(tokenizerConfig: unknown): ChatTemplateSpec | null {
  const config = (tokenizerConfig ?? {}) as Record<string, unknown>;
  const template = templateSource(config.chat_template);
  if (template === null) return null;
  return { template, bos_token: tokenString(config.bos_token), eos_token: tokenString(config.eos_token) };
}

/** The chat template of a tokenizer_config.json (see `templateSource`), or null when it has none. */
export function chatTemplateFromConfig(tokenizerConfig: unknown): ChatTemplate | null {
  const spec = chatTemplateSpecFromConfig(tokenizerConfig);
  return spec === null ? null : compile(spec, "model");
}

/** A compiled template of a spec (an adapter's, carried by the generate request). */
export function chatTemplateFromSpec(spec: ChatTemplateSpec, source: ChatTemplate["source"]): ChatTemplate {
  return compile(spec, source);
}
