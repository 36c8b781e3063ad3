/**
 * maxBytesPerTokenOf: the bound holds on real tokenizers (bytes(text) ≤ M × tokens(text) for
 * texts built to be dense: long words, runs of spaces, emoji, CJK, special-token text, random
 * bytes), and no bound is claimed where normalization or pre-tokenization can shrink or drop text.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createHfTokenizer } from "./hf-tokenizer.js";
import { maxBytesPerTokenOf } from "./max-bytes-per-token.js";
import { byteLevelTokenizer, wordLevelTokenizer } from "../model-build/testing/hf-checkpoint.js";

const REPO = path.resolve(import.meta.dirname, "..", "..", "..");
const FIXTURES = path.join(REPO, "..", "shared", "fixtures");
const fixtures = ["tiny-random-llama-fp16", "tiny-random-gpt2"].filter((f) => {
  const present = fs.existsSync(path.join(FIXTURES, f, "tokenizer.json"));
  if (!present) console.warn(`skipping maxBytesPerToken checks on ${f}: ${path.join(FIXTURES, f)} is absent`);
  return present;
});
const readJson = (dir: string, name: string): unknown => JSON.parse(fs.readFileSync(path.join(FIXTURES, dir, name), "utf8"));
const bytes = (s: string) => new TextEncoder().encode(s).length;

/** Texts meant to pack many bytes into few tokens. */
function denseTexts(vocab: string[]): string[] {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const randomUnicode = Array.from({ length: 400 }, () => String.fromCodePoint([0x41 + Math.floor(rand() * 26), 0x4e00 + Math.floor(rand() * 2000), 0x1f600 + Math.floor(rand() * 60), 0x20][Math.floor(rand() * 4)]!)).join("");
  const longest = [...vocab].sort((a, b) => bytes(b) - bytes(a)).slice(0, 50);
  return [
    "Hello world, this is a plain sentence.",
    " ".repeat(300),
    "\t".repeat(64) + "\n".repeat(64),
    "😀🎉🚀".repeat(40),
    "漢字かなカナ".repeat(30),
    "<s></s><unk><|endoftext|>".repeat(10),
    "▁▁▁▁ ▁".repeat(20),
    randomUnicode,
    // The vocabulary's own longest entries, glued (as text: byte-level entries spell bytes as characters).
    longest.join(""),
    longest.map((t) => t.replace(/▁/g, " ")).join(""),
  ];
}

describe("maxBytesPerTokenOf", () => {
  for (const fixture of fixtures) {
    it(`holds on ${fixture}'s tokenizer: bytes(text) ≤ M × tokens(text)`, () => {
      const json = readJson(fixture, "tokenizer.json") as { model: { vocab: Record<string, number> } };
      const m = maxBytesPerTokenOf(json);
      expect(m).not.toBeNull();
      const tokenizer = createHfTokenizer(json, readJson(fixture, "tokenizer_config.json"), { bosId: null, eosId: null });
      for (const text of denseTexts(Object.keys(json.model.vocab))) {
        const ids = tokenizer.encode(text);
        expect(bytes(text), `${JSON.stringify(text.slice(0, 40))}: ${ids.length} tokens`).toBeLessThanOrEqual(m! * ids.length);
      }
    });
  }

  it("GPT-2's byte-level vocabulary counts characters (one per byte), its added tokens their UTF-8 bytes", () => {
    expect(maxBytesPerTokenOf(byteLevelTokenizer())).toBe(4); // "</s>"; every byte token is 1
    if (fixtures.includes("tiny-random-gpt2")) {
      // GPT-2's longest entry, "ÃĥÃĤ" × 32: 128 characters, each one byte (UTF-8 would say 256).
      expect(maxBytesPerTokenOf(readJson("tiny-random-gpt2", "tokenizer.json"))).toBe(128);
    }
  });

  it("claims no bound where text can shrink or vanish before the model sees it", () => {
    const llamaLike = (over: Record<string, unknown>) => ({ ...(byteLevelTokenizer() as Record<string, unknown>), ...over });
    expect(maxBytesPerTokenOf(wordLevelTokenizer())).toBeNull(); // WordLevel + whitespace split drops spaces
    expect(maxBytesPerTokenOf(llamaLike({ normalizer: { type: "NFKC" } }))).toBeNull(); // "𝐀" (4 bytes) → "A"
    expect(maxBytesPerTokenOf(llamaLike({ normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Lowercase" }] } }))).toBeNull();
    expect(maxBytesPerTokenOf(llamaLike({ normalizer: { type: "Replace", pattern: { String: "  " }, content: " " } }))).toBeNull(); // shrinking replace
    expect(maxBytesPerTokenOf(llamaLike({ pre_tokenizer: { type: "Whitespace" } }))).toBeNull();
    expect(maxBytesPerTokenOf(llamaLike({ pre_tokenizer: { type: "Split", pattern: { String: " " }, behavior: "Removed" } }))).toBeNull();
    const bpe = (byteLevelTokenizer() as { model: Record<string, unknown> }).model;
    // Fused unknowns without byte fallback: one token for any run of unknown characters.
    expect(maxBytesPerTokenOf(llamaLike({ model: { ...bpe, unk_token: "<unk>", fuse_unk: true } }))).toBeNull();
    // Unfused: an unknown character is one token of at most 4 bytes.
    expect(maxBytesPerTokenOf(llamaLike({ pre_tokenizer: null, added_tokens: [], model: { ...bpe, unk_token: "<unk>", fuse_unk: false } }))).toBe(4);
    expect(maxBytesPerTokenOf(llamaLike({ model: { ...bpe, type: "Unigram" } }))).toBeNull();
  });
});
