import { describe, expect, it } from "vitest";
import { isContainedMix, loraFactorProblem, MAX_LORA_FACTOR } from "./lora-factors.js";
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

  it("an uncontained mix never takes the shared path, even on two rows", () => {
    const good = randomMix(targets, () => 2, 3);
    const bad = randomMix(targets, () => 2, 4);
    bad.modules.get("l.q")!.at[0] = Infinity;
    expect(planLoraPaths([bad, good, bad, good], false)).toEqual([false, true, false, true]);
    expect(planLoraPaths([bad, good, null], true)).toEqual([false, true, false]);
  });
});
