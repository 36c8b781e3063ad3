/**
 * Incremental decoding of generated ids into text for streaming.
 *
 * Semantics: after each pushed id, the concatenation of all returned deltas equals
 * decode(all ids pushed so far) except for a trailing incomplete character (a multi-byte
 * UTF-8 sequence split across byte tokens decodes to U+FFFD), which is held back until
 * the next token completes it or `flush()` is called.
 */
import type { Tokenizer } from "../model/types.js";

export class Detokenizer {
  private readonly ids: number[] = [];
  /** ids[prefixOffset:readOffset] is the decoded context kept to decode new ids correctly. */
  private prefixOffset = 0;
  private readOffset = 0;

  constructor(private readonly tokenizer: Tokenizer) {}

  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith("\uFFFD")) {
      const delta = full.slice(prefix.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return delta;
    }
    return "";
  }

  /** Whatever is held back (possibly ending in U+FFFD). */
  flush(): string {
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.slice(prefix.length);
  }
}
