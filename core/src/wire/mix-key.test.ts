import { describe, expect, it } from "vitest";
import { createRng } from "../random/index.js";
import { canonicalMix, mixKey } from "./mix-key.js";
import type { WireMixEntry } from "./runner-api.js";

const sha = (c: string) => c.repeat(64);
const e = (id: string, weight: number, s = id[0]!): WireMixEntry => ({ id, sha256: sha(s), weight });

describe("canonicalMix", () => {
  it("orders by id: {a,b} and {b,a} are one mix with one key", () => {
    const ab = canonicalMix([e("a", 1), e("b", 0.5)]);
    const ba = canonicalMix([e("b", 0.5), e("a", 1)]);
    expect(ba).toEqual(ab);
    expect(ab.entries.map((x) => x.id)).toEqual(["a", "b"]);
    expect(ab.key).toBe(`a@${sha("a")}*1+b@${sha("b")}*0.5`);
  });

  it("merges repeats by summing ({a:1, a:1} ≡ {a:2}) and drops zero weights, also after summing", () => {
    expect(canonicalMix([e("a", 1), e("a", 1)])).toEqual(canonicalMix([e("a", 2)]));
    expect(canonicalMix([e("a", 1), e("b", 0), e("c", 2), e("c", -2)]).entries).toEqual([e("a", 1)]);
    expect(canonicalMix([e("a", 0)])).toEqual({ entries: [], key: "" });
    expect(canonicalMix([])).toEqual({ entries: [], key: "" });
  });

  it("keeps the sha256 and the id apart: same id with other bytes, or same bytes under another id, is another mix", () => {
    expect(mixKey([e("a", 1, "a")])).not.toBe(mixKey([e("a", 1, "f")]));
    expect(mixKey([e("a", 1, "a")])).not.toBe(mixKey([e("x", 1, "a")]));
    expect(canonicalMix([e("a", 1, "a"), e("a", 1, "f")]).entries).toHaveLength(2);
  });

  it("writes weights as the shortest round-trip decimal: different weights, different keys", () => {
    expect(mixKey([e("a", 0.1 + 0.2)])).toBe(`a@${sha("a")}*0.30000000000000004`);
    expect(mixKey([e("a", 0.3)])).not.toBe(mixKey([e("a", 0.1 + 0.2)]));
    expect(mixKey([e("a", -1e-7)])).toBe(`a@${sha("a")}*-1e-7`);
  });

  it("is invariant under any permutation of the entries, repeats included (property test)", () => {
    const rng = createRng(7);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rng.nextFloat() * 8);
      const entries = Array.from({ length: n }, () => {
        const id = "abcd"[Math.floor(rng.nextFloat() * 4)]!;
        return e(id, Math.round((rng.nextFloat() * 4 - 2) * 1000) / 1000 + rng.nextFloat() * 1e-9);
      });
      const shuffled = [...entries].sort(() => rng.nextFloat() - 0.5).reverse();
      expect(canonicalMix(shuffled)).toEqual(canonicalMix(entries));
      const canon = canonicalMix(entries);
      expect(canonicalMix(canon.entries)).toEqual(canon); // idempotent
    }
  });
});
