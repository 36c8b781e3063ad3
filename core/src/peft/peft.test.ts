import { describe, expect, it } from "vitest";
import { expectFormatError } from "../testing/expect-format-error.js";
import { bf16ToF32, f32ToBf16 } from "../dtype/bf16.js";
import { f16ToF32, f32ToF16 } from "../dtype/f16.js";
import type { LoraAdapter } from "../lora/types.js";
import { createRng } from "../random/xoshiro128.js";
import { randomLoraAdapter, randomUniform } from "../random/random-adapter.js";
import { writeSafetensors, type TensorToWrite } from "../safetensors/write-safetensors.js";
import { readSafetensors } from "../safetensors/read-safetensors.js";
import { moduleScaleResolver } from "./module-scale.js";
import { parsePeftConfig } from "./peft-config.js";
import { compileTargetMatcher } from "./target-modules.js";
import { describeAdapter, firstNonFinite, loadPeftAdapter, readPeftAdapter } from "./load-peft-adapter.js";
import { alphaForScale, writePeftAdapter } from "./write-peft-adapter.js";

const baseConfig = {
  peft_type: "LORA",
  task_type: "CAUSAL_LM",
  base_model_name_or_path: "org/tiny",
  r: 4,
  lora_alpha: 8,
  target_modules: ["q_proj", "v_proj"],
  lora_dropout: 0.05,
  bias: "none",
  use_dora: false,
  modules_to_save: null,
  fan_in_fan_out: false,
};

const L0Q = "model.layers.0.self_attn.q_proj";
const L0V = "model.layers.0.self_attn.v_proj";
const L1Q = "model.layers.1.self_attn.q_proj";

/** PEFT-style safetensors bytes written by hand (independent of writePeftAdapter). */
function peftBytes(mods: Array<{ module: string; r: number; inF: number; outF: number; skip?: "A" | "B"; dtype?: "F32" | "F16" | "BF16"; infix?: string }>, extra: TensorToWrite[] = [], seed = 1): { bytes: Uint8Array; a: Map<string, Float32Array>; b: Map<string, Float32Array> } {
  const rng = createRng(seed);
  const tensors: TensorToWrite[] = [];
  const a = new Map<string, Float32Array>();
  const b = new Map<string, Float32Array>();
  for (const m of mods) {
    const av = randomUniform(rng, m.r * m.inF);
    const bv = randomUniform(rng, m.outF * m.r);
    a.set(m.module, av);
    b.set(m.module, bv);
    const infix = m.infix ? `.${m.infix}` : "";
    const dtype = m.dtype ?? "F32";
    if (m.skip !== "A") tensors.push({ name: `base_model.model.${m.module}.lora_A${infix}.weight`, dtype, shape: [m.r, m.inF], data: av });
    if (m.skip !== "B") tensors.push({ name: `base_model.model.${m.module}.lora_B${infix}.weight`, dtype, shape: [m.outF, m.r], data: bv });
  }
  return { bytes: writeSafetensors([...tensors, ...extra], { format: "pt" }), a, b };
}

/** Naive reference of PEFT's pattern lookup: the key, as a regex, must fully match the module
 * name or a suffix of it that starts right after a "."; first key in order wins. */
function naivePatternLookup(patterns: Record<string, number>, module: string, fallback: number): number {
  const suffixes = [module];
  for (let i = 0; i < module.length; i++) if (module[i] === ".") suffixes.push(module.slice(i + 1));
  for (const [key, value] of Object.entries(patterns)) {
    const re = new RegExp(`^(?:${key})$`, "s");
    if (suffixes.some((s) => re.test(s))) return value;
  }
  return fallback;
}

describe("parsePeftConfig", () => {
  it("parses a typical config (object, JSON text or bytes) with PEFT defaults", () => {
    for (const input of [baseConfig, JSON.stringify(baseConfig), new TextEncoder().encode(JSON.stringify(baseConfig))]) {
      const c = parsePeftConfig(input);
      expect(c).toMatchObject({ peftType: "LORA", r: 4, loraAlpha: 8, useRslora: false, fanInFanOut: false, baseModel: "org/tiny", targetModules: ["q_proj", "v_proj"], rankPattern: {}, alphaPattern: {} });
    }
    const d = parsePeftConfig({ peft_type: "LORA" });
    expect(d).toMatchObject({ r: 8, loraAlpha: 8, targetModules: null, baseModel: null });
    // Training-only and "off" fields are accepted.
    expect(parsePeftConfig({ ...baseConfig, modules_to_save: [], use_dora: false, lora_bias: false, init_lora_weights: "gaussian", loftq_config: {} }).r).toBe(4);
  });

  it("accepts a complete adapter_config.json as written by PEFT 0.19 (every field at its default)", () => {
    const real = `{
  "alora_invocation_tokens": null, "alpha_pattern": {}, "arrow_config": null, "auto_mapping": null,
  "base_model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct", "bias": "none", "corda_config": null,
  "ensure_weight_tying": false, "eva_config": null, "exclude_modules": null, "fan_in_fan_out": false,
  "inference_mode": true, "init_lora_weights": true, "layer_replication": null, "layers_pattern": null,
  "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 16, "lora_bias": false, "lora_dropout": 0.05,
  "lora_ga_config": null, "megatron_config": null, "megatron_core": "megatron.core", "modules_to_save": null,
  "peft_type": "LORA", "peft_version": "0.19.1", "qalora_group_size": 16, "r": 8, "rank_pattern": {}, "revision": null,
  "target_modules": ["q_proj", "up_proj", "o_proj", "gate_proj", "v_proj", "k_proj", "down_proj"],
  "target_parameters": null, "task_type": "CAUSAL_LM", "trainable_token_indices": null, "use_bdlora": null,
  "use_dora": false, "use_qalora": false, "use_rslora": false
}`;
    expect(parsePeftConfig(real)).toMatchObject({ r: 8, loraAlpha: 16, baseModel: "Qwen/Qwen2-VL-2B-Instruct" });
    expectFormatError(() => parsePeftConfig({ ...JSON.parse(real), use_bdlora: { block: 4 } }), "unsupported_feature", /use_bdlora/);
    expectFormatError(() => parsePeftConfig({ ...JSON.parse(real), use_future_variant: true }), "unsupported_feature", /unknown field use_future_variant is set/);
    expectFormatError(() => parsePeftConfig({ ...JSON.parse(real), shiny_config: { k: 1 } }), "unsupported_feature", /unknown field shiny_config/);
    expect(parsePeftConfig({ ...JSON.parse(real), shiny_config: null, use_future_variant: false, note: "x" }).r).toBe(8);
  });

  it("refuses what it does not support, each with its own code and reason", () => {
    expectFormatError(() => parsePeftConfig({ ...baseConfig, peft_type: "LOHA" }), "unsupported_peft_type", /peft_type is "LOHA"; only "LORA"/);
    const { peft_type: _omit, ...noType } = baseConfig;
    expectFormatError(() => parsePeftConfig(noType), "unsupported_peft_type", /"peft_type" is missing/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, use_dora: true }), "unsupported_dora", /use_dora is true/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, modules_to_save: ["lm_head"] }), "unsupported_modules_to_save", /modules_to_save \["lm_head"\]/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, bias: "all" }), "unsupported_bias", /bias is "all"/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, bias: "lora_only" }), "unsupported_bias");
    expectFormatError(() => parsePeftConfig({ ...baseConfig, target_modules: ["q_proj", "lm_head"] }), "unsupported_target", /"lm_head"/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, target_modules: ["embed_tokens"] }), "unsupported_target", /embedding/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, lora_bias: true }), "unsupported_feature", /lora_bias/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, layer_replication: [[0, 2]] }), "unsupported_feature", /layer_replication/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, target_parameters: ["experts.gate_up_proj"] }), "unsupported_feature", /target_parameters/);
  });

  it("rejects malformed configs precisely", () => {
    expectFormatError(() => parsePeftConfig("{ nope"), "config_not_json");
    expectFormatError(() => parsePeftConfig(new Uint8Array([0x7b, 0xff, 0x7d])), "config_not_json", /not valid UTF-8/);
    expectFormatError(() => parsePeftConfig("[1]"), "config_invalid", /must be a JSON object, got an array/);
    expectFormatError(() => parsePeftConfig('{"peft_type":"LORA","r":4,"r":8}'), "config_invalid", /key "r" appears more than once/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, r: 0 }), "config_invalid", /field "r"/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, r: "8" }), "config_invalid", /field "r"/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, r: 2.5 }), "config_invalid", /field "r"/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, lora_alpha: null }), "config_invalid", /field "lora_alpha"/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, rank_pattern: { q_proj: -1 } }), "config_invalid", /field "rank_pattern.q_proj"/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, rank_pattern: { "q_proj(": 2 } }), "config_invalid", /rank_pattern key "q_proj\(" is not a valid regular expression/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, target_modules: "(" }), "config_invalid", /target_modules/);
    expectFormatError(() => parsePeftConfig({ ...baseConfig, fan_in_fan_out: "yes" }), "config_invalid", /fan_in_fan_out/);
  });
});

describe("rank_pattern / alpha_pattern (PEFT get_pattern_key)", () => {
  it("matches by dotted suffix and regex, first key wins, like PEFT", () => {
    const c = parsePeftConfig({ ...baseConfig, r: 8, lora_alpha: 16, rank_pattern: { q_proj: 4, "layers.1.self_attn.v_proj": 2, "experts.*.w1": 6 }, alpha_pattern: { "layers.0.self_attn.q_proj": 3 } });
    const s = moduleScaleResolver(c);
    expect(s(L0Q)).toMatchObject({ rank: 4, alpha: 3, scale: 3 / 4, rankKey: "q_proj", alphaKey: "layers.0.self_attn.q_proj" });
    expect(s(L1Q)).toMatchObject({ rank: 4, alpha: 16, scale: 4 });
    expect(s("model.layers.1.self_attn.v_proj")).toMatchObject({ rank: 2, scale: 8 });
    expect(s("model.layers.11.self_attn.v_proj")).toMatchObject({ rank: 8, rankKey: null }); // "layers.1." must not match layer 11
    expect(s("model.layers.0.self_attn.xq_proj")).toMatchObject({ rank: 8 }); // suffix must start after a "."
    expect(s("model.layers.0.mlp.experts.3.w1")).toMatchObject({ rank: 6 });
    const first = moduleScaleResolver(parsePeftConfig({ ...baseConfig, rank_pattern: { q_proj: 4, "layers.0.self_attn.q_proj": 2 } }));
    expect(first(L0Q).rank).toBe(4); // insertion order, not specificity
  });

  it("equals a naive suffix-enumeration reference on random names and patterns", () => {
    const rng = createRng(5);
    const pick = <T,>(xs: T[]) => xs[Math.floor(rng.nextFloat() * xs.length)];
    const parts = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    for (let t = 0; t < 300; t++) {
      const module = `model.layers.${Math.floor(rng.nextFloat() * 12)}.${pick(["self_attn", "mlp"])}.${pick(parts)}`;
      const patterns: Record<string, number> = {};
      for (let k = 0; k < 3; k++) {
        const key = pick([pick(parts), `layers.${Math.floor(rng.nextFloat() * 12)}.${pick(["self_attn", "mlp"])}.${pick(parts)}`, `${pick(["self_attn", "mlp"])}.${pick(parts)}`, `layers.${Math.floor(rng.nextFloat() * 3)}.*`, "(q|v)_proj"]);
        patterns[key] = 1 + Math.floor(rng.nextFloat() * 16);
      }
      const got = moduleScaleResolver(parsePeftConfig({ peft_type: "LORA", r: 99, rank_pattern: patterns }))(module).rank;
      expect(got, `${module} ${JSON.stringify(patterns)}`).toBe(naivePatternLookup(patterns, module, 99));
    }
  });

  it("scale is alpha/r, or alpha/√r with use_rslora", () => {
    expect(moduleScaleResolver(parsePeftConfig({ ...baseConfig, r: 16, lora_alpha: 32 }))(L0Q).scale).toBe(2);
    expect(moduleScaleResolver(parsePeftConfig({ ...baseConfig, r: 16, lora_alpha: 32, use_rslora: true }))(L0Q).scale).toBe(8);
    expect(moduleScaleResolver(parsePeftConfig({ ...baseConfig, r: 8, lora_alpha: 16, use_rslora: true, rank_pattern: { q_proj: 2 } }))(L0Q).scale).toBe(16 / Math.sqrt(2));
  });

  it("target_modules matching follows PEFT check_target_module_exists", () => {
    const m = (extra: Record<string, unknown>) => compileTargetMatcher(parsePeftConfig({ ...baseConfig, ...extra }));
    expect(m({})(L0Q)).toBe(true);
    expect(m({})("model.layers.0.self_attn.o_proj")).toBe(false);
    expect(m({ target_modules: ".*\\.(q|v)_proj" })(L0V)).toBe(true);
    expect(m({ target_modules: "q_proj" })(L0Q)).toBe(false); // a string is re.fullmatch, not a suffix
    expect(m({ layers_to_transform: [1] })(L0Q)).toBe(false);
    expect(m({ layers_to_transform: 1, layers_pattern: "layers" })(L1Q)).toBe(true);
    expect(m({ exclude_modules: ["layers.0.self_attn.q_proj"] })(L0Q)).toBe(false);
    expect(m({ target_modules: "all-linear" })("model.layers.3.mlp.up_proj")).toBe(true);
    expect(m({ target_modules: null })("anything.at_all")).toBe(true);
  });
});

describe("loadPeftAdapter", () => {
  const mods = [
    { module: L0Q, r: 4, inF: 16, outF: 16 },
    { module: L0V, r: 4, inF: 16, outF: 8 },
    { module: L1Q, r: 2, inF: 16, outF: 16 },
  ];
  const config = { ...baseConfig, rank_pattern: { "layers.1.self_attn.q_proj": 2 }, alpha_pattern: { v_proj: 2 } };

  it("loads A [r,in], B [out,r] per module with the resolved scale, zero-copy for F32", () => {
    const { bytes, a, b } = peftBytes(mods);
    const { adapter, summary } = readPeftAdapter(config, bytes);
    expect([...adapter.modules.keys()]).toEqual([L0Q, L0V, L1Q]);
    const q = adapter.modules.get(L0Q)!;
    expect(q).toMatchObject({ rank: 4, inFeatures: 16, outFeatures: 16, scale: 2 });
    expect(adapter.modules.get(L0V)!.scale).toBe(0.5);
    expect(adapter.modules.get(L1Q)!).toMatchObject({ rank: 2, scale: 4 });
    for (const m of mods) {
      expect(adapter.modules.get(m.module)!.a).toEqual(a.get(m.module));
      expect(adapter.modules.get(m.module)!.b).toEqual(b.get(m.module));
    }
    expect(q.a.buffer).toBe(bytes.buffer); // zero-copy view
    expect(loadPeftAdapter(config, bytes, { copy: true }).modules.get(L0Q)!.a.buffer).not.toBe(bytes.buffer);
    expect(adapter.baseModel).toBe("org/tiny");
    expect(summary).toMatchObject({ rank: 4, ranks: [2, 4], alpha: 8, scale: null, scales: [0.5, 2, 4], dtype: "F32", targetNames: ["q_proj", "v_proj"], parameters: 4 * 32 + 4 * 24 + 2 * 32 });
  });

  it("widens F16 / BF16 exactly and accepts the .lora_A.<adapter>.weight variant", () => {
    const { bytes, a } = peftBytes(mods.map((m) => ({ ...m, dtype: "F16" as const, infix: "default" })));
    const { adapter, summary } = readPeftAdapter(config, bytes);
    expect(summary.dtype).toBe("F16");
    expect(adapter.modules.get(L0Q)!.a).toEqual(f16ToF32(f32ToF16(a.get(L0Q)!)));
    const bf = peftBytes(mods.map((m, i) => ({ ...m, dtype: i === 0 ? ("BF16" as const) : ("F32" as const) })));
    const loaded = readPeftAdapter(config, bf.bytes);
    expect(loaded.summary.dtype).toBe("mixed");
    expect(loaded.adapter.modules.get(L0Q)!.b).toEqual(bf16ToF32(f32ToBf16(bf.b.get(L0Q)!)));
  });

  it("malformed corpus: each adapter is refused with its specific code", () => {
    const f = (m: Parameters<typeof peftBytes>[0], extra: TensorToWrite[] = []) => peftBytes(m, extra).bytes;
    const one = [{ module: L0Q, r: 4, inF: 16, outF: 16 }];
    expectFormatError(() => loadPeftAdapter(baseConfig, f([{ ...one[0], skip: "B" }])), "missing_lora_b", /"model.layers.0.self_attn.q_proj" has lora_A .* but no lora_B/);
    expectFormatError(() => loadPeftAdapter(baseConfig, f([{ ...one[0], skip: "A" }])), "missing_lora_a");
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, r: 8 }, f(one)), "rank_mismatch", /weights have rank 4 but adapter_config.json gives r = 8/);
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, rank_pattern: { q_proj: 2 } }, f(one)), "rank_mismatch", /rank_pattern\["q_proj"\] = 2/);
    const abMismatch = writeSafetensors([
      { name: `base_model.model.${L0Q}.lora_A.weight`, dtype: "F32", shape: [4, 16], data: new Float32Array(64) },
      { name: `base_model.model.${L0Q}.lora_B.weight`, dtype: "F32", shape: [16, 3], data: new Float32Array(48) },
    ]);
    expectFormatError(() => loadPeftAdapter(baseConfig, abMismatch), "rank_mismatch", /lora_A is \[4, 16\] \(rank 4\) but lora_B is \[16, 3\] \(rank 3\)/);
    const nan = peftBytes(one);
    const nanA = loadPeftAdapter(baseConfig, nan.bytes, { copy: true }); // sanity: loads
    expect(nanA.modules.size).toBe(1);
    const withNan = (value: number, part: "A" | "B") => {
      const { a, b } = peftBytes(one);
      const t = (part === "A" ? a : b).get(L0Q)!;
      t[5] = value;
      return writeSafetensors([
        { name: `base_model.model.${L0Q}.lora_A.weight`, dtype: "F32", shape: [4, 16], data: a.get(L0Q)! },
        { name: `base_model.model.${L0Q}.lora_B.weight`, dtype: "F16", shape: [16, 4], data: b.get(L0Q)! },
      ]);
    };
    expectFormatError(() => loadPeftAdapter(baseConfig, withNan(NaN, "A")), "non_finite_weight", /lora_A.weight" has a non-finite value \(NaN\) at flat index 5/);
    expectFormatError(() => loadPeftAdapter(baseConfig, withNan(Infinity, "B")), "non_finite_weight", /lora_B.weight" has a non-finite value \(Infinity\)/);
    expectFormatError(() => loadPeftAdapter(baseConfig, withNan(1e6, "B")), "non_finite_weight"); // overflows F16 → Inf
    expectFormatError(() => loadPeftAdapter(baseConfig, f(one, [{ name: "base_model.model.lm_head.weight", dtype: "F32", shape: [2, 2], data: new Float32Array(4) }])), "unexpected_tensor", /"base_model.model.lm_head.weight" is not a PEFT LoRA weight/);
    expectFormatError(() => loadPeftAdapter(baseConfig, f(one, [{ name: "base_model.model.score.modules_to_save.default.weight", dtype: "F32", shape: [2], data: new Float32Array(2) }])), "unexpected_tensor");
    expectFormatError(() => loadPeftAdapter(baseConfig, f(one, [{ name: "extra", dtype: "F32", shape: [1], data: new Float32Array(1) }])), "unexpected_tensor", /"extra"/);
    expectFormatError(() => loadPeftAdapter(baseConfig, f(one, [{ name: `base_model.model.${L0Q}.lora_magnitude_vector`, dtype: "F32", shape: [16], data: new Float32Array(16) }])), "unsupported_dora");
    expectFormatError(() => loadPeftAdapter(baseConfig, f(one, [{ name: `base_model.model.${L0Q}.lora_B.bias`, dtype: "F32", shape: [16], data: new Float32Array(16) }])), "unsupported_feature", /lora_bias/);
    expectFormatError(() => loadPeftAdapter(baseConfig, f(one, [{ name: "base_model.model.model.embed_tokens.lora_embedding_A", dtype: "F32", shape: [4, 10], data: new Float32Array(40) }])), "unsupported_target", /embedding module "model.embed_tokens"/);
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, target_modules: null }, f([{ module: "lm_head", r: 4, inF: 16, outF: 32 }])), "unsupported_target", /"lm_head" is an embedding or output head/);
    expectFormatError(() => loadPeftAdapter(baseConfig, f([...one, { module: L0V, r: 4, inF: 16, outF: 8, infix: "other" }])), "multiple_adapters", /adapter "other"/);
    expectFormatError(() => loadPeftAdapter(baseConfig, writeSafetensors([])), "empty_adapter");
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, target_modules: ["k_proj"] }, f(one)), "module_not_targeted", /not matched by target_modules \["k_proj"\]/);
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, layers_to_transform: [3] }, f(one)), "module_not_targeted", /layers_to_transform \[3\]/);
    const conv = writeSafetensors([
      { name: `base_model.model.conv.lora_A.weight`, dtype: "F32", shape: [4, 3, 1, 1], data: new Float32Array(12) },
      { name: `base_model.model.conv.lora_B.weight`, dtype: "F32", shape: [5, 4, 1, 1], data: new Float32Array(20) },
    ]);
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, target_modules: ["conv"] }, conv), "unsupported_target", /Conv LoRA/);
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, use_dora: true }, f(one)), "unsupported_dora");
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, modules_to_save: ["classifier"] }, f(one)), "unsupported_modules_to_save");
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, bias: "all" }, f(one)), "unsupported_bias");
    expectFormatError(() => loadPeftAdapter({ ...baseConfig, peft_type: "IA3" }, f(one)), "unsupported_peft_type");
    const trunc = f(one);
    expectFormatError(() => loadPeftAdapter(baseConfig, trunc.subarray(0, trunc.length - 10)), "offsets_out_of_range");
  });
});

describe("firstNonFinite", () => {
  it("equals a naive findIndex(!isFinite) on random arrays with NaN / ±Inf planted", () => {
    const rng = createRng(13);
    for (let t = 0; t < 300; t++) {
      const x = randomUniform(rng, Math.floor(rng.nextFloat() * 40), 1e30);
      const plants = Math.floor(rng.nextFloat() * 3);
      for (let k = 0; k < plants && x.length > 0; k++) x[Math.floor(rng.nextFloat() * x.length)] = [NaN, Infinity, -Infinity][k % 3];
      expect(firstNonFinite(x)).toBe(x.findIndex((v) => !Number.isFinite(v)));
    }
    expect(firstNonFinite(new Float32Array([-0, 0, 3.4e38, -3.4e38]))).toBe(-1);
  });
});

describe("writePeftAdapter", () => {
  let folded = 0;
  function sameAdapter(x: LoraAdapter, y: LoraAdapter): void {
    expect([...y.modules.keys()].sort()).toEqual([...x.modules.keys()].sort());
    for (const [k, m] of x.modules) {
      const n = y.modules.get(k)!;
      expect({ rank: n.rank, inFeatures: n.inFeatures, outFeatures: n.outFeatures }).toEqual({ rank: m.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures });
      expect(n.a).toEqual(m.a);
      if (n.scale === m.scale) expect(n.b).toEqual(m.b);
      else {
        // No double alpha gives alpha/r === scale: the scale was folded into B (scale 1).
        folded++;
        expect(alphaForScale(m.scale, m.rank)).toBeNull();
        expect(n.scale).toBe(1);
        expect(n.b).toEqual(m.b.map((v) => Math.fround(v * m.scale)));
      }
    }
    expect(y.fanInFanOut).toBe(x.fanInFanOut);
  }

  it("round-trips mixed ranks and arbitrary scales exactly (property test)", () => {
    const rng = createRng(11);
    const names = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"];
    for (let t = 0; t < 25; t++) {
      const specs = Array.from({ length: 1 + Math.floor(rng.nextFloat() * 6) }, (_, i) => ({
        module: `model.layers.${i % 3}.self_attn.${names[(i + t) % names.length]}`,
        rank: 1 + Math.floor(rng.nextFloat() * 8),
        inFeatures: 1 + Math.floor(rng.nextFloat() * 12),
        outFeatures: 1 + Math.floor(rng.nextFloat() * 12),
        scale: [1, 2, 0.5, 16 / 3, 32 / Math.sqrt(7), rng.nextFloat() * 10, -1.25][Math.floor(rng.nextFloat() * 7)],
      }));
      const unique = [...new Map(specs.map((s) => [s.module, s])).values()];
      const adapter = randomLoraAdapter(rng, unique, { baseModel: "org/m", fanInFanOut: t % 2 === 0 });
      const files = writePeftAdapter(adapter);
      const back = loadPeftAdapter(JSON.parse(JSON.stringify(files.config)), files.safetensors);
      sameAdapter(adapter, back);
      expect(back.baseModel).toBe("org/m");
    }
    // Scales that come from alpha/r always reproduce; a few random ones need folding.
    expect(folded).toBeLessThan(10);
  });

  it("writes the PEFT layout: default r/alpha, exact-name patterns, F16 storage", () => {
    const rng = createRng(3);
    const adapter = randomLoraAdapter(rng, [
      { module: L0Q, rank: 4, inFeatures: 8, outFeatures: 8, scale: 2 },
      { module: L0V, rank: 4, inFeatures: 8, outFeatures: 8, scale: 2 },
      { module: L1Q, rank: 2, inFeatures: 8, outFeatures: 8, scale: 0.75 },
    ]);
    const files = writePeftAdapter(adapter, { dtype: "F16", baseModel: "x/y" });
    expect(files.config).toMatchObject({ peft_type: "LORA", r: 4, lora_alpha: 8, rank_pattern: { [L1Q]: 2 }, alpha_pattern: { [L1Q]: 1.5 }, base_model_name_or_path: "x/y", target_modules: [L0Q, L0V, L1Q], bias: "none", use_dora: false });
    const st = readSafetensors(files.safetensors);
    expect(st.metadata).toEqual({ format: "pt" });
    expect(st.tensors.get(`base_model.model.${L0Q}.lora_A.weight`)).toMatchObject({ dtype: "F16", shape: [4, 8] });
    const back = loadPeftAdapter(files.config, files.safetensors);
    expect(back.modules.get(L0Q)!.a).toEqual(f16ToF32(f32ToF16(adapter.modules.get(L0Q)!.a)));
    expect(describeAdapter(back).scales).toEqual([0.75, 2]);
  });

  it("alphaForScale: exact whenever it answers; always answers for scales PEFT produces and for r = 2^k", () => {
    const rng = createRng(8);
    let nulls = 0;
    const check = (ok: boolean, what: string) => {
      if (!ok) throw new Error(what);
    };
    for (let i = 0; i < 2000; i++) {
      const r = 1 + Math.floor(rng.nextFloat() * 256);
      const s = (rng.nextFloat() - 0.3) * 10 ** (Math.floor(rng.nextFloat() * 8) - 4);
      const alpha = alphaForScale(s, r);
      if (alpha === null) nulls++;
      else check(alpha / r === s, `alpha ${alpha} / r ${r} !== ${s}`);
      const pow2 = 2 ** Math.floor(rng.nextFloat() * 9);
      check(alphaForScale(s, pow2)! / pow2 === s, `pow2 ${pow2}, s ${s}`);
      const peftAlpha = Math.floor(rng.nextFloat() * 512) + 1;
      check(alphaForScale(peftAlpha / r, r)! / r === peftAlpha / r, `alpha ${peftAlpha}, r ${r}`);
    }
    expect(nulls).toBeLessThan(1000);
  });
});
