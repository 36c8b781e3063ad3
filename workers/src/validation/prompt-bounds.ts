import type { ModelManifest } from "#core/manifest/model-manifest";
import { badRequest } from "../errors/api-error.js";

const encoder = new TextEncoder();

/**
 * Most UTF-8 bytes of prompt text one token of the model's tokenizer can stand for, when
 * provable: 1 for the byte tokenizer (a token is a byte); the manifest's
 * `tokenizer.maxBytesPerToken` for a Hugging Face tokenizer that declares it; null otherwise
 * (normalizers and pre-tokenizers may drop input, so no byte bound is safe without one).
 */
export function maxBytesPerToken(manifest: ModelManifest): number | null {
  if (manifest.tokenizer.kind === "byte") return 1;
  return manifest.tokenizer.maxBytesPerToken ?? null;
}

/**
 * A lower bound on the number of prompt tokens the runner will count: exact for token-id
 * prompts; for text, ⌈bytes / maxBytesPerToken⌉ plus BOS when the model has one (the runner
 * prepends it). null when no safe bound is known.
 *
 * Semantics (safety): the value never exceeds the runner's count, so a check built on it can
 * never reject a prompt the runner would accept. Cost: one UTF-8 encode of the prompt.
 */
export function promptTokensLowerBound(manifest: ModelManifest, prompt: string | readonly number[]): number | null {
  if (typeof prompt !== "string") return prompt.length;
  const perToken = maxBytesPerToken(manifest);
  if (perToken === null) return null;
  const bytes = encoder.encode(prompt).length;
  return Math.ceil(bytes / perToken) + (manifest.tokenizer.bosId !== null ? 1 : 0);
}

/**
 * A lower bound on the prompt tokens of a chat request, whose messages the runner renders with
 * the model's chat template (unknown here): ⌈bytes of the last message's content, trimmed /
 * maxBytesPerToken⌉, no BOS. Every chat template renders the last message (at most trimmed);
 * earlier ones may be dropped or rewritten, so only the last counts. null when no safe bound is
 * known. Semantics (safety) as promptTokensLowerBound. Cost: one UTF-8 encode of one message.
 */
export function chatPromptTokensLowerBound(manifest: ModelManifest, messages: readonly { content: string }[]): number | null {
  const perToken = maxBytesPerToken(manifest);
  const last = messages.at(-1);
  if (perToken === null || last === undefined) return null;
  return Math.ceil(encoder.encode(last.content.trim()).length / perToken);
}

/**
 * 400 `context_length_exceeded`-style refusal at the edge, before forwarding, when the prompt
 * certainly does not fit: lower bound of its tokens + max_tokens > the model's context length.
 * The exact check stays on the runner (it tokenises).
 */
export function assertPromptFitsContext(
  manifest: ModelManifest,
  prompt: string | readonly number[] | { messages: readonly { content: string }[] },
  maxTokens: number,
): void {
  const tokens = typeof prompt === "object" && "messages" in prompt ? chatPromptTokensLowerBound(manifest, prompt.messages) : promptTokensLowerBound(manifest, prompt);
  if (tokens === null) return;
  if (tokens + maxTokens > manifest.contextLength) {
    const what = Array.isArray(prompt) ? `${tokens} tokens` : `at least ${tokens} tokens`;
    throw badRequest(
      `prompt (${what}) + max_tokens (${maxTokens}) exceeds the context length of ${manifest.id} (${manifest.contextLength})`,
    );
  }
}

/** What the chat estimate reads of a message. */
interface ChatLike {
  role?: string;
  name?: string;
  content: string;
}

/** Tokens an `hf` tokenizer may add to a text beyond one per byte: BOS, EOS, a dummy-prefix piece. */
const HF_SPECIAL_TOKENS_SLACK = 3;
/** Chat (template unknown at the edge): role markers and separators per message, and the frame around them. */
const CHAT_TOKENS_PER_MESSAGE = 8;
const CHAT_TOKENS_FRAME = 16;

/**
 * An upper bound on the prompt tokens the runner will count, for the daily-budget reservation
 * (limits/enforce.ts): exact for token ids; for text, one token per UTF-8 byte (every token of the
 * byte tokenizer, of BPE with byte fallback and of Unigram covers at least one byte) plus BOS
 * (byte tokenizer: exact) or plus 3 for an `hf` tokenizer's special tokens. For chat it is an
 * estimate: the messages' bytes plus 8 tokens per message and 16 for the template's frame; a
 * template that adds long text of its own exceeds it (the runner's count is what gets billed).
 * Cost: one UTF-8 encode of the prompt.
 */
export function promptTokensUpperBound(
  manifest: ModelManifest | undefined,
  prompt: string | readonly number[] | { messages: readonly ChatLike[] },
): number {
  if (Array.isArray(prompt)) return prompt.length;
  const specials = manifest?.tokenizer.kind === "byte" ? (manifest.tokenizer.bosId !== null ? 1 : 0) : HF_SPECIAL_TOKENS_SLACK;
  if (typeof prompt === "string") return encoder.encode(prompt).length + specials;
  const { messages } = prompt as { messages: readonly ChatLike[] };
  let bytes = 0;
  for (const m of messages) bytes += encoder.encode(`${m.role ?? ""}${m.name ?? ""}${m.content}`).length;
  return bytes + messages.length * CHAT_TOKENS_PER_MESSAGE + CHAT_TOKENS_FRAME + specials;
}
