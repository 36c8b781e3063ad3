import { describe, expect, it } from "vitest";
import { firstBad, isContainedMix, loraFactorProblem, MAX_LORA_FACTOR } from "./lora-factors.js";
import { planLoraPaths } from "./lora-paths.js";
import { randomMix } from "./testing/random-mix.js";

const targets = [
  { module: "l.q", in: 8, out: 8 },
  { module: "l.v", in: 8, out: 4 },
];

describe("loraFactorProblem", () => {
  it("accepts finite factors up to ±MAX_LORA_FACTOR and names the module, factor and value beyond", () => {
    const ok = randomMix(targets, () => 2, 1);
    ok.modules.get("l.v")!.bt[3] = -MAX_LORA_FACTOR;
    expect(loraFactorProblem(ok)).toBeNull();
    for (const [value, factor] of [
      [Infinity, "bt"],
      [-Infinity, "at"],
      [Number.NaN, "bt"],
      [2 ** 52, "at"], // exactly representable in float32, beyond MAX_LORA_FACTOR
    ] as const) {
      const bad = randomMix(targets, () => 2, 2);
      bad.modules.get("l.v")![factor][5] = value;
      expect(loraFactorProblem(bad)).toMatch(new RegExp(`module l\\.v: composed lora_${factor === "at" ? "A" : "B"} holds ${String(value).replace("+", "\\+")}`));
      expect(isContainedMix(bad)).toBe(false);
    }
  });

  it("the SIMD scan's verdict equals the JS reference's on factors long enough for it: at the bound passes, one float32 step past fails, in the vector body, across its 64-byte blocks and in the tail", () => {
    const wide = [{ module: "w.q", in: 96, out: 37 }]; // Aᵗ 96·3 = 288 floats, Bᵗ 3·37 = 111 (a 15-float tail)
    const atLimit = Math.fround(MAX_LORA_FACTOR);
    const past = new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([atLimit]).buffer)[0]! + 1]).buffer)[0]!;
    const mix = randomMix(wide, () => 3, 5);
    const m = mix.modules.get("w.q")!;
    m.at.fill(-atLimit, 0, 40);
    m.bt.fill(atLimit, 90);
    expect(firstBad(m.at)).toBe(-1);
    expect(loraFactorProblem(mix)).toBeNull();
    for (const [factor, at] of [["at", 0], ["at", 15], ["at", 16], ["at", 287], ["bt", 63], ["bt", 96], ["bt", 110]] as const) {
      const bad = randomMix(wide, () => 3, 5);
      bad.modules.get("w.q")![factor][at] = at % 2 ? past : -past;
      expect(firstBad(bad.modules.get("w.q")![factor])).toBe(at);
      expect(loraFactorProblem(bad), `${factor}[${at}]`).toMatch(new RegExp(`composed lora_${factor === "at" ? "A" : "B"} holds ${at % 2 ? "" : "-"}${past}`));
    }
  });

  it("a mix composeMix verified within the bound is contained without a scan; a larger verified bound is scanned", () => {
    const verified = randomMix(targets, () => 2, 6);
    verified.modules.get("l.q")!.at[0] = Infinity; // not what composeMix would mark: shows the scan is skipped
    expect(loraFactorProblem({ ...verified, verifiedBound: MAX_LORA_FACTOR })).toBeNull();
    expect(loraFactorProblem({ ...verified, verifiedBound: 2 * MAX_LORA_FACTOR })).toMatch(/module l\.q: composed lora_A holds Infinity/);
  });

  it("an uncontained mix never takes the shared path, even on two rows", () => {
    const good = randomMix(targets, () => 2, 3);
    const bad = randomMix(targets, () => 2, 4);
    bad.modules.get("l.q")!.at[0] = Infinity;
    expect(planLoraPaths([bad, good, bad, good], false)).toEqual([false, true, false, true]);
    expect(planLoraPaths([bad, good, null], true)).toEqual([false, true, false]);
  });
});
