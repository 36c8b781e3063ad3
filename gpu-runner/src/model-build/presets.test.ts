import { describe, expect, it } from "vitest";
import { llamaParameterCount, validateLlamaConfig } from "./llama-config.js";
import { MODEL_PRESETS } from "./presets.js";

describe("model presets", () => {
  it("tiny is tiny and small is ≈100M parameters, both valid GQA Llama configs", () => {
    for (const preset of Object.values(MODEL_PRESETS)) {
      validateLlamaConfig(preset.config);
      expect(preset.config.numKvHeads).toBeLessThan(preset.config.numHeads);
    }
    expect(llamaParameterCount(MODEL_PRESETS["loraedge-tiny"].config)).toBeLessThan(200_000);
    const small = llamaParameterCount(MODEL_PRESETS["loraedge-small"].config);
    expect(small).toBeGreaterThan(95e6);
    expect(small).toBeLessThan(110e6);
  });
});
