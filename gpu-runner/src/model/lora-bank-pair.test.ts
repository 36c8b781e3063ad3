import { describe, expect, it } from "vitest";
import type { ComposedMix } from "#core/lora/types";
import { LoraBankPair, placementCost } from "./lora-bank-pair.js";

const mix = (maxRank: number): ComposedMix => ({ modules: new Map(), maxRank });
const counts = (...mixes: ComposedMix[]) => {
  const c = new Map<ComposedMix, number>();
  for (const m of mixes) c.set(m, (c.get(m) ?? 0) + 1);
  return c;
};

describe("which resident bank a step packs into (LoraBankPair)", () => {
  it("placement cost: ranks written plus live ranks evicted; rows no recent step fed are free to evict", () => {
    const [a, b, c] = [mix(8), mix(16), mix(40)];
    expect(placementCost(counts(a, b), counts(a, b), () => true)).toBe(0);
    expect(placementCost(counts(a), counts(a, a, c), () => true)).toBe(8 + 40);
    expect(placementCost(counts(a, b, c), counts(a), () => true)).toBe(16 + 40);
    expect(placementCost(counts(a, b, c), counts(a), (m) => m !== c)).toBe(16);
  });

  it("continuous batching: decode and prefill steps keep to their banks, a one-token prefill step keeps off the running rows, a batch's first decode reuses its prefill's bank", () => {
    const pair = new LoraBankPair();
    const rows = Array.from({ length: 8 }, (_, i) => mix(8 * (1 + (i % 4))));
    const running = pair.take(rows.slice(0, 4)); // a joint prefill of rows 0–3
    expect(pair.take(rows.slice(0, 4)), "their first decode step: nothing to write there").toBe(running);
    const joining = pair.take([rows[4]!, rows[5]!]); // a prefill step of two new rows
    expect(joining).not.toBe(running);
    expect(pair.take(rows.slice(0, 4)), "decode of the running rows").toBe(running);
    expect(pair.take([]), "a one-token prefill step on the shared path (nothing per-row)").toBe(joining);
    expect(pair.take(rows.slice(0, 6)), "the joined decode writes only rows 4 and 5").toBe(running);
    pair.reused(rows.slice(0, 6));
    pair.reused(rows.slice(0, 6));
    expect(pair.take([rows[6]!]), "the next prefill").toBe(joining);
    // Row 6, once no recent step fed it, is free to evict: the next new row goes there, not onto the running rows.
    pair.reused(rows.slice(0, 6));
    pair.reused(rows.slice(0, 6));
    expect(pair.take([rows[7]!])).toBe(joining);
  });

  it("a failed feed empties what the bank is taken to hold", () => {
    const pair = new LoraBankPair();
    const rows = [mix(8), mix(8)];
    const bank = pair.take(rows);
    pair.failed(bank);
    const other = pair.take([mix(4)]);
    expect(other, "both banks empty: ties go to the first").toBe(bank);
  });
});
