/**
 * A proven upper bound on the UTF-8 bytes of prompt text one token of a Hugging Face
 * tokenizer.json can stand for (the manifest's `tokenizer.maxBytesPerToken`, which the edge
 * uses to refuse a prompt that cannot fit the context without tokenising it).
 *
 * Semantics: the bound M holds when, for every text, bytes(text) ≤ M × tokens(text). It does
 * when (1) normalization never shrinks the text (Prepend, or Replace of a literal string by one at
 * least as long), (2) pre-tokenization only splits or maps one byte to one character (ByteLevel,
 * Metaspace, Split/Punctuation not "removed", Digits, UnicodeScripts), never drops characters,
 * and (3) the model is BPE whose tokens partition the normalized text: each vocabulary entry
 * covers its own length (characters for byte-level vocabularies, where one character is one byte;
 * UTF-8 bytes otherwise), an added token its content, an unknown character (unfused `unk_token`)
 * at most 4 bytes. Then bytes(text) ≤ bytes(normalized) = Σ token lengths ≤ M × tokens.
 * Anything else (Unicode normalization or lowercasing, which can shrink "𝐀" to "A"; whitespace
 * pre-tokenizers, which drop spaces; fused unknowns; WordPiece, WordLevel, Unigram) → null: no
 * bound is claimed and the runner's exact count decides alone.
 * Cost: one pass over the vocabulary, at import time.
 */

type Json = Record<string, unknown>;
const encoder = new TextEncoder();
const utf8Bytes = (s: string) => encoder.encode(s).length;
/** Longest UTF-8 encoding of one character. */
const MAX_CHAR_BYTES = 4;

/** The parts of a Sequence component (`normalizers` / `pretokenizers`), or the component itself. */
function flatten(component: unknown, listKey: string): Json[] | null {
  if (component === null || component === undefined) return [];
  if (typeof component !== "object") return null;
  const c = component as Json;
  if (c.type !== "Sequence") return [c];
  const parts = c[listKey];
  if (!Array.isArray(parts)) return null;
  const out: Json[] = [];
  for (const p of parts) {
    const flat = flatten(p, listKey);
    if (flat === null) return null;
    out.push(...flat);
  }
  return out;
}

function nonShrinkingNormalizer(n: Json): boolean {
  if (n.type === "Prepend") return true;
  if (n.type === "Replace") {
    const pattern = (n.pattern ?? {}) as Json;
    return typeof pattern.String === "string" && pattern.String.length > 0 && typeof n.content === "string" && utf8Bytes(n.content) >= utf8Bytes(pattern.String);
  }
  return false;
}

function keepingPreTokenizer(p: Json): boolean {
  switch (p.type) {
    case "ByteLevel":
    case "Metaspace":
    case "Digits":
    case "UnicodeScripts":
      return true;
    case "Split":
    case "Punctuation":
      return String(p.behavior ?? "").toLowerCase() !== "removed";
    default:
      return false;
  }
}

/** The bound for a tokenizer.json, or null when none can be proven (see the module's doc). */
export function maxBytesPerTokenOf(tokenizerJson: unknown): number | null {
  const json = (tokenizerJson ?? {}) as Json;
  const normalizers = flatten(json.normalizer, "normalizers");
  const preTokenizers = flatten(json.pre_tokenizer, "pretokenizers");
  if (normalizers === null || preTokenizers === null) return null;
  if (!normalizers.every(nonShrinkingNormalizer) || !preTokenizers.every(keepingPreTokenizer)) return null;
  const model = (json.model ?? {}) as Json;
  if (model.type !== "BPE" || typeof model.vocab !== "object" || model.vocab === null) return null;
  const vocab = Object.keys(model.vocab as Json);
  const byteLevel = preTokenizers.some((p) => p.type === "ByteLevel");
  // A byte-level vocabulary spells each byte as one character; otherwise a token is its own UTF-8 text.
  const tokenLength = byteLevel ? (t: string) => [...t].length : utf8Bytes;
  const hasAllByteTokens = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`).every((t) => t in (model.vocab as Json));
  let max = 0;
  if (typeof model.unk_token === "string") {
    // Fused unknowns cover any run of characters, unless every byte has its own token to fall back to.
    if (model.fuse_unk === true && !(model.byte_fallback === true && hasAllByteTokens)) return null;
    max = MAX_CHAR_BYTES;
  }
  for (const token of vocab) max = Math.max(max, tokenLength(token));
  for (const added of (json.added_tokens ?? []) as { content?: unknown }[]) {
    if (typeof added.content === "string") max = Math.max(max, utf8Bytes(added.content));
  }
  return max > 0 ? max : null;
}
