import type { Tokenizer } from "../model/types.js";

/**
 * The ids of a chat template's stop tokens (its eos_token) that end a turn like EOS: a token
 * string counts when it encodes to exactly one id of the vocabulary other than the model's EOS
 * (already a stop). Text that is several tokens, or that the tokenizer cannot encode, is skipped.
 */
export function stopTokenIds(tokens: readonly string[], tokenizer: Pick<Tokenizer, "encode" | "eosId">): number[] {
  const ids: number[] = [];
  for (const token of tokens) {
    let encoded: number[];
    try {
      encoded = tokenizer.encode(token);
    } catch {
      continue;
    }
    if (encoded.length === 1 && encoded[0] !== tokenizer.eosId && !ids.includes(encoded[0]!)) ids.push(encoded[0]!);
  }
  return ids;
}
