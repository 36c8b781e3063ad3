// The merge policy's cost model, pure: demand decay, estimates, the merge decision, the eviction order.
import { describe, expect, it } from "vitest";
import { addTokens, decayedRate, decideMerge, evictionLossMs, evictionOrder, mergeEstimates } from "./merge-policy.js";

const MiB = 2 ** 20;

describe("merge policy", () => {
  it("demand decays with τ and adds tokens / τ", () => {
    expect(decayedRate(10, 0, 0, 10)).toBe(10);
    expect(decayedRate(10, 0, 10_000, 10)).toBeCloseTo(10 / Math.E, 12); // one τ later
    expect(decayedRate(10, 0, 20_000, 5)).toBeCloseTo(10 * Math.exp(-4), 12);
    expect(addTokens(0, 0, 0, 300, 10)).toBe(30);
    expect(addTokens(30, 0, 10_000, 300, 10)).toBeCloseTo(30 / Math.E + 30, 12);
  });

  it("estimates: overhead is LoRA row ms − plain row ms (never < 0), 0.2 × LoRA row ms before a plain row is measured, 0 before either", () => {
    const base = { buildMs: null, sessionBytes: 10 * MiB };
    expect(mergeEstimates({ ...base, mixedRowMs: null, plainRowMs: null }).overheadMsPerToken).toBe(0);
    expect(mergeEstimates({ ...base, mixedRowMs: null, plainRowMs: 2 }).overheadMsPerToken).toBe(0);
    expect(mergeEstimates({ ...base, mixedRowMs: 3, plainRowMs: null }).overheadMsPerToken).toBeCloseTo(0.6, 12);
    expect(mergeEstimates({ ...base, mixedRowMs: 3, plainRowMs: 2 }).overheadMsPerToken).toBe(1);
    expect(mergeEstimates({ ...base, mixedRowMs: 2, plainRowMs: 3 }).overheadMsPerToken).toBe(0);
  });

  it("estimates: build cost is the measured EWMA once there is one, else 100 ms + 5 ms per MiB of weights", () => {
    const none = { mixedRowMs: null, plainRowMs: null };
    expect(mergeEstimates({ ...none, buildMs: null, sessionBytes: 10 * MiB })).toEqual({ buildMs: 150, overheadMsPerToken: 0, sessionBytes: 10 * MiB });
    expect(mergeEstimates({ ...none, buildMs: 42, sessionBytes: 10 * MiB }).buildMs).toBe(42);
  });

  it("merges when demand · overhead · horizon reaches the build cost and a session fits the budget", () => {
    const estimates = { buildMs: 900, overheadMsPerToken: 1, sessionBytes: 100 };
    expect(decideMerge(30, estimates, 30, 100)).toEqual({ merge: true, benefitMs: 900 }); // exactly pays back
    expect(decideMerge(29, estimates, 30, 100)).toEqual({ merge: false, benefitMs: 870 });
    expect(decideMerge(1e6, estimates, 30, 99).merge).toBe(false); // does not fit, however hot
    expect(decideMerge(1e6, { ...estimates, overheadMsPerToken: 0 }, 30, 100).merge).toBe(false); // LoRA costs nothing
    expect(decideMerge(0, { ...estimates, buildMs: 0 }, 30, 100).merge).toBe(true); // a free build always pays
  });

  it("eviction: the loss of an idle session is its mix's overhead over the horizon, capped by its rebuild cost", () => {
    expect(evictionLossMs({ demandTokensPerS: 10, buildMs: 1000 }, 1, 30)).toBe(300);
    expect(evictionLossMs({ demandTokensPerS: 100, buildMs: 1000 }, 1, 30)).toBe(1000);
    expect(evictionLossMs({ demandTokensPerS: 100, buildMs: 1000 }, 0, 30)).toBe(0);
  });

  it("eviction order: smallest loss first, least recently used first among equals", () => {
    const idle = [
      { key: "old-hot", demandTokensPerS: 100, buildMs: 500 }, // loss 500 (rebuild)
      { key: "cold-1", demandTokensPerS: 0, buildMs: 500 }, // 0
      { key: "warm", demandTokensPerS: 5, buildMs: 500 }, // 150
      { key: "cold-2", demandTokensPerS: 0, buildMs: 900 }, // 0
      { key: "cheap-hot", demandTokensPerS: 100, buildMs: 100 }, // 100: cheap to rebuild
    ];
    expect(evictionOrder(idle, 1, 30).map((s) => s.key)).toEqual(["cold-1", "cold-2", "cheap-hot", "warm", "old-hot"]);
    // No overhead measured: nothing is worth keeping over another, so plain LRU.
    expect(evictionOrder(idle, 0, 30).map((s) => s.key)).toEqual(idle.map((s) => s.key));
    expect(evictionOrder([], 1, 30)).toEqual([]);
  });
});
