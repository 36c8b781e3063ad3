/**
 * The manifest's `tokenizer` for an imported model: BOS/EOS from the model's config (config.json
 * or genai_config.json), the end-of-turn ids of generation_config.json, and the byte bound of
 * the vocabulary.
 */
import type { ModelManifest } from "#core/manifest/model-manifest";
import { maxBytesPerTokenOf } from "../tokenizer/max-bytes-per-token.js";

/** A token id field: an int, or a list of ints (transformers accepts both for eos_token_id). */
function tokenIds(value: unknown, field: string, what: string): number[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  for (const id of list) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) throw new Error(`${what}: ${field} must be a token id or a list of token ids, got ${JSON.stringify(value)}`);
  }
  return list as number[];
}

/**
 * Semantics: `eosId` is the config's (first) eos_token_id, as before; every other id that the
 * config or generation_config.json lists as eos_token_id becomes an `endOfTurnIds` entry (e.g.
 * Llama-3-Instruct: 128001 in config.json, [128001, 128008, 128009] in generation_config.json).
 * An id outside the vocabulary refuses the import, naming the field.
 */
export function importedTokenizer(args: {
  what: string;
  /** Where bos/eos came from, for messages ("config.json", "genai_config.json"). */
  configName: string;
  bos: unknown;
  eos: unknown;
  generationConfig: Record<string, unknown> | null;
  tokenizerJson: unknown;
  vocabSize: number;
}): ModelManifest["tokenizer"] {
  const { what, configName, generationConfig, vocabSize } = args;
  const inVocab = (ids: number[], field: string) => {
    const bad = ids.find((id) => id >= vocabSize);
    if (bad !== undefined) throw new Error(`${what}: ${field} ${bad} is outside the vocabulary (${vocabSize} tokens)`);
    return ids;
  };
  const bos = inVocab(tokenIds(args.bos, `${configName} bos_token_id`, what), `${configName} bos_token_id`);
  const eos = inVocab(tokenIds(args.eos, `${configName} eos_token_id`, what), `${configName} eos_token_id`);
  const generationEos = inVocab(tokenIds(generationConfig?.eos_token_id, "generation_config.json eos_token_id", what), "generation_config.json eos_token_id");
  const eosId = eos[0] ?? generationEos[0] ?? null;
  const endOfTurnIds = [...new Set([...eos, ...generationEos])].filter((id) => id !== eosId);
  const maxBytesPerToken = maxBytesPerTokenOf(args.tokenizerJson);
  return {
    kind: "hf",
    bosId: bos[0] ?? null,
    eosId,
    ...(endOfTurnIds.length > 0 ? { endOfTurnIds } : {}),
    ...(maxBytesPerToken !== null ? { maxBytesPerToken } : {}),
  };
}
