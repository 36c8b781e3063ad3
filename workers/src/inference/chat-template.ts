/**
 * The chat template used by /v1/chat/completions (the default loraedge models are not
 * instruction-tuned, so this is a plain, documented convention):
 *
 *   <|system|>\n{content}\n<|user|>\n{content}\n<|assistant|>\n{content}\n … <|assistant|>\n
 *
 * One `<|role|>` line per message, its content, a newline; the prompt ends with an open
 * `<|assistant|>\n` turn. Generation stops at the next role marker (CHAT_STOP).
 */
export const CHAT_STOP = ["<|user|>", "<|system|>", "<|assistant|>"] as const;

export function renderChatPrompt(messages: readonly { role: string; content: string }[]): string {
  return messages.map((m) => `<|${m.role}|>\n${m.content}\n`).join("") + "<|assistant|>\n";
}
