import type { Tokenizer } from "../model/types.js";

/** Ids of the byte-level tokenizer: 0–255 are bytes, then BOS and EOS. */
export const BYTE_BOS_ID = 256;
export const BYTE_EOS_ID = 257;
export const BYTE_VOCAB_SIZE = 258;

/**
 * Byte-level tokenizer: UTF-8 bytes are the tokens (256), plus BOS and EOS.
 * decode drops special ids and replaces invalid UTF-8 with U+FFFD.
 */
export function createByteTokenizer(): Tokenizer {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder("utf-8", { fatal: false });
  return {
    vocabSize: BYTE_VOCAB_SIZE,
    bosId: BYTE_BOS_ID,
    eosId: BYTE_EOS_ID,
    encode(text: string): number[] {
      return Array.from(encoder.encode(text));
    },
    decode(ids: readonly number[]): string {
      const bytes = Uint8Array.from(ids.filter((id) => id >= 0 && id < 256));
      return decoder.decode(bytes);
    },
  };
}
