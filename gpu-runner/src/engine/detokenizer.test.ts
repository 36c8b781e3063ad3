import { describe, expect, it } from "vitest";
import { createByteTokenizer } from "../tokenizer/index.js";
import { Detokenizer } from "./detokenizer.js";

describe("Detokenizer", () => {
  it("holds a multi-byte character split over byte tokens until it is complete", () => {
    const tokenizer = createByteTokenizer();
    const ids = tokenizer.encode("aü€b");
    const d = new Detokenizer(tokenizer);
    const deltas = ids.map((id) => d.push(id));
    expect(deltas.join("") + d.flush()).toBe("aü€b");
    expect(deltas).toContain("ü");
    expect(deltas).toContain("€");
    expect(deltas.every((t) => !t.includes("\uFFFD"))).toBe(true);
  });

  it("flush releases an incomplete tail", () => {
    const tokenizer = createByteTokenizer();
    const d = new Detokenizer(tokenizer);
    expect(d.push(0x61)).toBe("a");
    expect(d.push(0xe2)).toBe("");
    expect(d.flush()).toBe("\uFFFD");
  });
});
