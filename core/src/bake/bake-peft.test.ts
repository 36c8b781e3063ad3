import { describe, expect, it } from "vitest";
import { bake } from "./bake.js";
import { deltaWeight } from "../lora/delta.js";
import { loadPeftAdapter, writePeftAdapter } from "../peft/index.js";
import { createRng, randomLoraAdapter } from "../random/index.js";
import { relativeError } from "../linalg/index.js";
import type { MixTerm } from "../lora/types.js";

describe("a baked adapter is a valid PEFT adapter", () => {
  it("writes as adapter_config.json + safetensors and loads back to the same ΔW (per-module ranks via rank_pattern)", () => {
    const rng = createRng(21);
    const mod = (layer: number, proj: string, rank: number, nIn: number, nOut: number) => ({ module: `model.layers.${layer}.self_attn.${proj}`, rank, inFeatures: nIn, outFeatures: nOut, scale: 2 });
    const a = randomLoraAdapter(rng, [mod(0, "q_proj", 4, 32, 32), mod(0, "v_proj", 4, 32, 16), mod(1, "q_proj", 4, 32, 32)], { baseModel: "tiny-llama" });
    const b = randomLoraAdapter(rng, [mod(0, "q_proj", 8, 32, 32), mod(1, "o_proj", 2, 32, 32)], { baseModel: "tiny-llama" });
    const terms: MixTerm[] = [{ adapter: a, weight: 0.6 }, { adapter: b, weight: -1.1 }];
    for (const options of [{ strategy: "linear" as const }, { strategy: "ties" as const, density: 0.5, rank: 6 }]) {
      const { adapter } = bake(terms, options);
      const files = writePeftAdapter(adapter);
      const back = loadPeftAdapter(JSON.parse(JSON.stringify(files.config)), files.safetensors, { copy: true });
      expect(back.baseModel).toBe("tiny-llama");
      expect([...back.modules.keys()].sort()).toEqual([...adapter.modules.keys()].sort());
      for (const [name, m] of adapter.modules) {
        const got = back.modules.get(name)!;
        expect(got.rank).toBe(m.rank);
        expect(relativeError(deltaWeight(got), deltaWeight(m))).toBeLessThanOrEqual(1e-6);
      }
    }
  });
});
