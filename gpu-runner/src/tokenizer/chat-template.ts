import { Template } from "@huggingface/jinja";

/** One chat message as the wire carries it (core/src/wire/runner-api.ts `messages`). */
export interface ChatMessage {
  role: string;
  content: string;
}

/**
 * A model's chat template: messages → the prompt text the model was tuned on.
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
  readonly source: "model" | "default";
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
function tokenString(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") return (value as { content: string }).content;
  return null;
}

function compile(source: string, context: Record<string, unknown>, props: Omit<ChatTemplate, "render">): ChatTemplate {
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    const message = (e as Error).message;
    // A broken template fails every chat request with its parse error (never at load time).
    return { ...props, render: () => { throw new ChatTemplateError(`the model's chat template does not parse: ${message}`); } };
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

export const defaultChatTemplate: ChatTemplate = compile(DEFAULT_CHAT_TEMPLATE_SOURCE, {}, {
  source: "default",
  templateAddsBos: false,
  stop: DEFAULT_CHAT_STOP,
  stopTokens: [],
});

/**
 * The chat template of a tokenizer_config.json (`chat_template`: a string, or the list form
 * `[{name, template}]` whose "default" entry is used), or null when it has none.
 */
export function chatTemplateFromConfig(tokenizerConfig: unknown): ChatTemplate | null {
  const config = (tokenizerConfig ?? {}) as Record<string, unknown>;
  let source: unknown = config.chat_template;
  if (Array.isArray(source)) source = (source as { name?: unknown; template?: unknown }[]).find((t) => t.name === "default")?.template;
  if (typeof source !== "string" || source.length === 0) return null;
  const bos = tokenString(config.bos_token);
  const eos = tokenString(config.eos_token);
  return compile(source, { bos_token: bos ?? "", eos_token: eos ?? "" }, {
    source: "model",
    templateAddsBos: bos !== null && source.includes("bos_token"),
    stop: [],
    stopTokens: eos !== null ? [eos] : [],
  });
}
