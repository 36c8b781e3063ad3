import { describe, expect, it } from "vitest";
import { BYTE_BOS_ID, BYTE_EOS_ID, createByteTokenizer } from "./byte-tokenizer.js";

describe("byte tokenizer", () => {
  it("round-trips UTF-8 text and skips special ids", () => {
    const t = createByteTokenizer();
    const text = "héllo, wörld 😀\n";
    const ids = t.encode(text);
    expect(ids).toEqual(Array.from(new TextEncoder().encode(text)));
    expect(t.decode([BYTE_BOS_ID, ...ids, BYTE_EOS_ID])).toBe(text);
    expect(t.vocabSize).toBe(258);
  });
});
