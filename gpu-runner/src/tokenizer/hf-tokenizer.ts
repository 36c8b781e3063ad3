import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import type { Tokenizer } from "../model/types.js";
import { chatTemplateFromConfig, tokenString } from "#core/chat/chat-template";
import { stopTokenIds } from "./stop-token-ids.js";

/**
 * A Hugging Face tokenizer.json (+ optional tokenizer_config.json) through @huggingface/tokenizers.
 * bos/eos come from the caller (the model manifest) since tokenizer.json does not name them.
 */
export function createHfTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig: unknown,
  special: { bosId: number | null; eosId: number | null },
): Tokenizer {
  const tokenizer = new HfTokenizer(tokenizerJson as object, (tokenizerConfig ?? {}) as object);
  const json = tokenizerJson as { model?: { vocab?: Record<string, number> | unknown[] }; added_tokens?: { id: number }[] };
  const vocab = json.model?.vocab;
  let vocabSize = Array.isArray(vocab) ? vocab.length : vocab ? Object.keys(vocab).length : 0;
  for (const added of json.added_tokens ?? []) vocabSize = Math.max(vocabSize, added.id + 1);
  const chatTemplate = chatTemplateFromConfig(tokenizerConfig);
  const config = (tokenizerConfig ?? {}) as Record<string, unknown>;
  const base: Tokenizer = {
    chatSpecialTokens: { bos: tokenString(config.bos_token), eos: tokenString(config.eos_token) },
    vocabSize,
    bosId: special.bosId,
    eosId: special.eosId,
    encode(text: string): number[] {
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      // A vocabulary without an unknown token (or one the library does not apply) leaves holes.
      if (ids.some((id) => !Number.isInteger(id))) throw new Error("the model's tokenizer has no token for part of the text (tokenizer.json without a usable unk_token)");
      return ids;
    },
    decode(ids: readonly number[]): string {
      if (ids.length === 0) return ""; // @huggingface/tokenizers throws on an empty list
      return tokenizer.decode([...ids], { skip_special_tokens: true });
    },
  };
  const chatStopIds = stopTokenIds(chatTemplate?.stopTokens ?? [], base);
  return { ...base, ...(chatTemplate ? { chatTemplate } : {}), ...(chatStopIds.length ? { chatStopIds } : {}) };
}
