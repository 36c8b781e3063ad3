// The edge's prompt bounds against real tokenizers: the daily-budget reservation takes
// promptTokensUpperBound (workers/src/validation/prompt-bounds.ts) as the most a prompt can be
// billed, so it must never fall below the runner's count (BOS + the tokenizer's ids, as
// gpu-runner/src/engine/model-engine.ts counts). Checked on the byte tokenizer and on the two
// fixture Hugging Face tokenizers (GPT-2 byte-level BPE; Llama SentencePiece with byte fallback
// and a dummy prefix) over awkward and random text. No process, no model: fast.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createRng } from "#core/random/index";
import { tinyManifest } from "#core/testing/tiny-manifest";
import { createByteTokenizer } from "../../gpu-runner/src/tokenizer/byte-tokenizer.js";
import { createHfTokenizer } from "../../gpu-runner/src/tokenizer/hf-tokenizer.js";
import type { Tokenizer } from "../../gpu-runner/src/model/types.js";
import { promptTokensLowerBound, promptTokensUpperBound } from "../../workers/src/validation/prompt-bounds.js";

const FIXTURES = path.join(import.meta.dirname, "..", "..", "..", "shared", "fixtures");
const readJson = (dir: string, file: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, dir, file), "utf8"));

const AWKWARD = [
  "",
  " ",
  "a",
  "Hello, world!",
  "   leading and trailing   ",
  "tabs\tand\nnewlines\r\n\n",
  "héllo wörld — ünïcödé",
  "日本語のテキスト、中文文本",
  "emoji 👩‍👩‍👧‍👦🏳️‍🌈 and 🤖",
  "\u0000\u0001\u001f control",
  "ﬁﬂ ① Ⅻ ㎏ （full width）",
  "a".repeat(500),
  " ".repeat(64),
  "<s></s><|endoftext|>[INST]",
];

/** Random strings mixing ASCII, Latin-1, CJK, emoji and whitespace (seeded). */
function randomTexts(count: number): string[] {
  const r = createRng(12);
  const rng = () => r.nextFloat();
  const pools = [" \t\n", "abcxyzABC019.,!?", "éüßñçø", "日本語中文한국어", "😀🚀👩‍💻", "\u200b\u00a0"];
  return Array.from({ length: count }, () => {
    let s = "";
    const n = Math.floor(rng() * 80);
    for (let i = 0; i < n; i++) {
      const pool = [...pools[Math.floor(rng() * pools.length)]!];
      s += pool[Math.floor(rng() * pool.length)];
    }
    return s;
  });
}

function checkBounds(tokenizer: Tokenizer, kind: "byte" | "hf") {
  const manifest = tinyManifest({ id: "bounds", targets: [], tokenizer: { kind, bosId: tokenizer.bosId, eosId: tokenizer.eosId } });
  for (const text of [...AWKWARD, ...randomTexts(300)]) {
    const counted = (tokenizer.bosId !== null ? 1 : 0) + tokenizer.encode(text).length;
    const upper = promptTokensUpperBound(manifest, text);
    expect(upper, JSON.stringify(text)).toBeGreaterThanOrEqual(counted);
    const lower = promptTokensLowerBound(manifest, text);
    if (lower !== null) expect(lower, JSON.stringify(text)).toBeLessThanOrEqual(counted);
  }
  // Token ids are counted exactly.
  expect(promptTokensUpperBound(manifest, [5, 6, 7])).toBe(3);
}

describe("prompt token bounds against real tokenizers", () => {
  it("byte tokenizer: the upper bound is the runner's count exactly (bytes + BOS)", () => {
    const tokenizer = createByteTokenizer();
    checkBounds(tokenizer, "byte");
    const manifest = tinyManifest({ id: "bounds", targets: [] });
    expect(promptTokensUpperBound(manifest, "héllo")).toBe(1 + tokenizer.encode("héllo").length);
  });

  for (const [dir, bosId, eosId] of [
    ["tiny-random-gpt2", 0, 0],
    ["tiny-random-llama-fp16", 1, 2],
  ] as const) {
    const present = fs.existsSync(path.join(FIXTURES, dir, "tokenizer.json"));
    if (!present) console.warn(`skipping the ${dir} prompt-bound check: ${path.join(FIXTURES, dir)} is absent`);
    it.skipIf(!present)(`${dir}: the upper bound is never below the runner's count`, () => {
      const config = fs.existsSync(path.join(FIXTURES, dir, "tokenizer_config.json")) ? readJson(dir, "tokenizer_config.json") : {};
      checkBounds(createHfTokenizer(readJson(dir, "tokenizer.json"), config, { bosId, eosId }), "hf");
    });
  }
});
