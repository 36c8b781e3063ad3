import { describe, expect, it } from "vitest";
import { rngForSeed } from "./seed.js";
import { samplingParamsSchema, type SamplingParamsInput } from "#core/wire/sampling";
import {
  applyPenalties,
  applyPenaltiesReference,
  argmax,
  logSoftmax,
  sampleToken,
  sampleTokenReference,
  TokenHistory,
  topIndices,
  topIndicesReference,
} from "./sampling.js";

/** Sampling parameters as the wire schema parses them (defaults for the rest). */
const sp = (p: SamplingParamsInput) => samplingParamsSchema.parse(p);

const logits = new Float32Array([0.5, 2, -1, 2, 1.5]);

describe("sampling", () => {
  it("temperature 0 is argmax, lowest id on ties", () => {
    expect(argmax(logits)).toBe(1);
    expect(sampleToken(logits, sp({ temperature: 0, top_p: 1, top_k: 0 }), rngForSeed(1))).toBe(1);
  });

  it("log_softmax sums to 1 in probability and keeps order", () => {
    const lp = logSoftmax(logits);
    const total = Array.from(lp).reduce((s, v) => s + Math.exp(v), 0);
    expect(total).toBeCloseTo(1, 12);
    expect(lp[1]! - lp[0]!).toBeCloseTo(1.5, 6);
    expect(topIndices(lp, 3)).toEqual([1, 3, 4]);
  });

  it("same seed ⇒ same draws; different seed ⇒ different draws", () => {
    const params = sp({ temperature: 1, top_p: 1, top_k: 0 });
    const draw = (seed: number) => {
      const rng = rngForSeed(seed);
      return Array.from({ length: 64 }, () => sampleToken(logits, params, rng));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    expect(draw(-5)).toEqual(draw(-5));
  });

  it("top_k = 1 and a tiny top_p reduce to greedy", () => {
    const rng = rngForSeed(7);
    for (let i = 0; i < 50; i++) {
      expect(sampleToken(logits, sp({ temperature: 1.5, top_p: 1, top_k: 1 }), rng)).toBe(1);
      expect(sampleToken(logits, sp({ temperature: 1.5, top_p: 0.01, top_k: 0 }), rng)).toBe(1);
    }
  });

  it("top_k keeps only the k most likely tokens; top_p the smallest nucleus", () => {
    const rng = rngForSeed(9);
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) seen.add(sampleToken(logits, sp({ temperature: 1, top_p: 1, top_k: 3 }), rng));
    expect([...seen].sort()).toEqual([1, 3, 4]);
    // p ∝ e^{0.5, 2, -1, 2, 1.5}: ids 1 and 3 hold ≈ 0.64 of the mass, with 4 ≈ 0.84.
    const nucleus = new Set<number>();
    for (let i = 0; i < 400; i++) nucleus.add(sampleToken(logits, sp({ temperature: 1, top_p: 0.6, top_k: 0 }), rng));
    expect([...nucleus].sort()).toEqual([1, 3]);
  });

  it("top_p applies to the distribution renormalised after top_k (as HF and vLLM)", () => {
    // p ∝ [0.3, 0.2, 0.25, 0.25] → top_k 2 keeps ids 0 (0.3) and 2/3 (0.25; lowest id on ties: 2),
    // renormalised 0.545 / 0.455: top_p 0.5 keeps id 0 alone. Measured against the whole
    // vocabulary (0.3 < 0.5) it would keep both.
    const l = new Float32Array([Math.log(0.3), Math.log(0.2), Math.log(0.25), Math.log(0.25)]);
    for (const sample of [sampleToken, sampleTokenReference]) {
      const rng = rngForSeed(7);
      const draws = new Set(Array.from({ length: 200 }, () => sample(l, sp({ temperature: 1, top_p: 0.5, top_k: 2 }), rng)));
      expect([...draws]).toEqual([0]);
    }
  });

  it("draws follow softmax(logits / T)", () => {
    const two = new Float32Array([0, Math.log(3)]); // p = [0.25, 0.75]
    const rng = rngForSeed(123);
    let ones = 0;
    const n = 8000;
    for (let i = 0; i < n; i++) ones += sampleToken(two, sp({ temperature: 1, top_p: 1, top_k: 0 }), rng);
    expect(ones / n).toBeGreaterThan(0.72);
    expect(ones / n).toBeLessThan(0.78);
    let hot = 0;
    for (let i = 0; i < n; i++) hot += sampleToken(two, { ...sp({}), temperature: 1e6 }, rng);
    expect(hot / n).toBeGreaterThan(0.46);
    expect(hot / n).toBeLessThan(0.54);
  });
});

describe("fast paths equal their references", () => {
  const rand = rngForSeed(2024);
  const randomLogits = (n: number, ties: boolean) =>
    Float32Array.from({ length: n }, () => (ties ? Math.floor(rand.nextFloat() * 20) : (rand.nextFloat() * 2 - 1) * 8));

  it("topIndices ≡ topIndicesReference (large vocab, ties, every k)", () => {
    for (const ties of [false, true]) {
      const v = randomLogits(5000, ties);
      for (const k of [1, 2, 7, 40, 513, 4999, 5000, 6000]) expect(topIndices(v, k)).toEqual(topIndicesReference(v, k));
    }
  });

  it("sampleToken ≡ sampleTokenReference for the same seed (top_k, top_p, both, none)", () => {
    const settings = [
      sp({ temperature: 0.7, top_p: 1, top_k: 0 }),
      sp({ temperature: 1, top_p: 1, top_k: 50 }),
      sp({ temperature: 1.3, top_p: 0.9, top_k: 0 }),
      sp({ temperature: 0.9, top_p: 0.5, top_k: 20 }),
      sp({ temperature: 2, top_p: 0.999, top_k: 0 }),
    ];
    for (const params of settings) {
      const fast = rngForSeed(77);
      const ref = rngForSeed(77);
      for (let i = 0; i < 30; i++) {
        const logits = randomLogits(3000, i % 3 === 0);
        expect(sampleToken(logits, params, fast)).toBe(sampleTokenReference(logits, params, ref));
      }
    }
  });
});

describe("penalties (logit_bias, repetition, presence, frequency)", () => {
  const greedy = (p: SamplingParamsInput) => sp({ temperature: 0, ...p });
  const history = (prompt: number[], output: number[]) => {
    const h = new TokenHistory(prompt);
    for (const id of output) h.push(id);
    return h;
  };

  it("repetition_penalty divides positive and multiplies negative logits of prompt and output tokens (HF/vLLM)", () => {
    // logits [0.5, 2, -1, 2, 1.5]; prompt {1}, output {2}: id 1 → 2/2 = 1, id 2 → -1·2 = -2.
    const out = applyPenalties(logits, sp({ repetition_penalty: 2 }), history([1], [2]));
    expect(Array.from(out)).toEqual([0.5, 1, -2, 2, 1.5]);
    // Greedy moves from id 1 (penalised) to id 3 (the other 2.0).
    expect(sampleToken(logits, greedy({ repetition_penalty: 2 }), rngForSeed(1), history([1], []))).toBe(3);
    // p < 1 rewards repetition instead.
    expect(sampleToken(logits, greedy({ repetition_penalty: 0.5 }), rngForSeed(1), history([4], []))).toBe(4);
    // The raw logits are never modified (logprobs are reported from them).
    expect(Array.from(logits)).toEqual([0.5, 2, -1, 2, 1.5]);
  });

  it("presence and frequency penalties count output tokens only (OpenAI)", () => {
    const h = history([0, 0, 0], [3, 3, 4]);
    const out = applyPenalties(logits, sp({ presence_penalty: 0.5, frequency_penalty: 0.25 }), h);
    // id 3: 2 − (0.25·2 + 0.5) = 1; id 4: 1.5 − (0.25 + 0.5) = 0.75; prompt-only id 0 untouched.
    expect(Array.from(out)).toEqual([0.5, 2, -1, 1, 0.75]);
  });

  it("logit_bias adds to the named tokens; −100 bans, +100 forces", () => {
    expect(Array.from(applyPenalties(logits, sp({ logit_bias: { "0": 1, "2": -0.5 } }), null))).toEqual([1.5, 2, -1.5, 2, 1.5]);
    const rng = rngForSeed(3);
    for (let i = 0; i < 100; i++) {
      expect(sampleToken(logits, sp({ temperature: 1, logit_bias: { "2": 100 } }), rng)).toBe(2);
      expect([1, 3]).not.toContain(sampleToken(logits, sp({ temperature: 1, logit_bias: { "1": -100, "3": -100 } }), rng));
    }
  });

  it("off by default: no copy, same draws as without a history", () => {
    expect(applyPenalties(logits, sp({}), history([1, 2], [3]))).toBe(logits);
  });

  it("applyPenalties ≡ applyPenaltiesReference and sampleToken ≡ sampleTokenReference with penalties", () => {
    const rand = rngForSeed(99);
    const V = 2000;
    const settings: SamplingParamsInput[] = [
      { repetition_penalty: 1.3 },
      { repetition_penalty: 0.7, temperature: 0 },
      { presence_penalty: 1.1, frequency_penalty: -0.4 },
      { repetition_penalty: 1.2, presence_penalty: 0.3, frequency_penalty: 0.6, top_k: 40, logit_bias: { "5": 3, "1999": -100, "17": 2.5 } },
      { repetition_penalty: 1.5, top_p: 0.8, temperature: 0.6 },
    ];
    for (const input of settings) {
      const params = sp(input);
      const fast = rngForSeed(5);
      const ref = rngForSeed(5);
      for (let i = 0; i < 20; i++) {
        const row = Float32Array.from({ length: V }, () => (rand.nextFloat() * 2 - 1) * 6);
        const prompt = Array.from({ length: 30 }, () => Math.floor(rand.nextFloat() * 60));
        const output = Array.from({ length: i * 3 }, () => Math.floor(rand.nextFloat() * 60));
        const h = history(prompt, output);
        expect(Array.from(applyPenalties(row, params, h))).toEqual(Array.from(applyPenaltiesReference(row, params, h)));
        expect(sampleToken(row, params, fast, h)).toBe(sampleTokenReference(row, params, ref, h));
      }
    }
  });
});
