import { factorValues, HalfFactor, type LoraFactor } from "../lora/factor.js";
import type { LoraAdapter, LoraModule } from "../lora/types.js";
import type { SafetensorsDtype } from "../safetensors/dtypes.js";
import { writeSafetensors, type TensorToWrite } from "../safetensors/write-safetensors.js";
import { moduleScaleResolver } from "./module-scale.js";
import type { PeftConfig } from "./peft-config.js";
import { peftKey } from "./peft-keys.js";

export interface WritePeftAdapterOptions {
  /** `base_model_name_or_path` (default: adapter.baseModel). */
  baseModel?: string | null;
  /** Storage dtype of A and B (default F32; F16/BF16 round to nearest even). */
  dtype?: SafetensorsDtype;
  /** PEFT `task_type` (default "CAUSAL_LM"). */
  taskType?: string | null;
  /** safetensors `__metadata__` (default {format: "pt"}, what PEFT writes). */
  metadata?: Record<string, string>;
}

export interface PeftAdapterFiles {
  /** adapter_config.json as an object (JSON.stringify it to write the file). */
  config: Record<string, unknown>;
  /** adapter_model.safetensors bytes. */
  safetensors: Uint8Array;
}

function nextDouble(x: number, dir: 1 | -1): number {
  const f = new Float64Array([x]);
  const u = new BigInt64Array(f.buffer);
  if (x === 0) return dir * Number.MIN_VALUE;
  u[0] += (x > 0 ? 1n : -1n) * BigInt(dir);
  return f[0];
}

/**
 * An alpha with alpha / r === scale exactly in double arithmetic (what PEFT computes), or null.
 * Semantics: alpha ≈ scale·r, nudged by a few ulps when the product rounds the wrong way.
 */
export function alphaForScale(scale: number, r: number): number | null {
  let cands = [scale * r];
  for (let k = 0; k < 4; k++) cands = cands.concat(cands.flatMap((c) => [nextDouble(c, 1), nextDouble(c, -1)]));
  for (const c of cands) if (c / r === scale) return c;
  return null;
}

function mostCommon<T>(xs: T[]): T {
  const counts = new Map<T, number>();
  let best = xs[0];
  for (const x of xs) {
    const n = (counts.get(x) ?? 0) + 1;
    counts.set(x, n);
    if (n > (counts.get(best) ?? 0)) best = x;
  }
  return best;
}

/**
 * Serialises an in-memory adapter as a PEFT LoRA adapter (adapter_config.json object +
 * adapter_model.safetensors bytes) that PEFT loads to the same ΔW = s·B·A per module.
 *
 * Scale: each module keeps its own A and B; r is its rank and alpha is chosen so that PEFT's
 * alpha / r reproduces `module.scale` exactly (use_rslora false). The most common (r, alpha)
 * become the defaults; other modules get exact-name `rank_pattern` / `alpha_pattern` entries.
 * If no double alpha reproduces a scale exactly (possible for arbitrary scales when r is not a
 * power of two, e.g. after a mix; never for a scale that came from alpha/r), that module's
 * scale is folded into B (fp32(B·s), alpha = r, scale 1): ΔW then equals up to one fp32 rounding. The written config is re-resolved with PEFT's pattern rules and
 * must give every module its rank and scale back.
 */
export function writePeftAdapter(adapter: LoraAdapter<LoraFactor>, opts: WritePeftAdapterOptions = {}): PeftAdapterFiles {
  const dtype = opts.dtype ?? "F32";
  const mods = [...adapter.modules.values()].sort((x, y) => (x.module < y.module ? -1 : x.module > y.module ? 1 : 0));
  const plan = mods.map((m) => {
    const alpha = alphaForScale(m.scale, m.rank);
    return alpha === null ? { m, alpha: m.rank, b: foldScale(m) } : { m, alpha, b: m.b };
  });
  const r = plan.length ? mostCommon(plan.map((p) => p.m.rank)) : 8;
  const alphaDefault = plan.length ? mostCommon(plan.map((p) => p.alpha)) : 8;
  const want = plan.map((p) => ({ module: p.m.module, rank: p.m.rank, scale: p.b === p.m.b ? p.m.scale : 1 }));
  // Exact module names as pattern keys; PEFT reads keys as regexes, so if an unescaped "."
  // lets one module's key capture another module, fall back to regex-escaped keys.
  let config: Record<string, unknown> | null = null;
  for (const escape of [false, true]) {
    const key = (module: string) => (escape ? module.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") : module);
    const rankPattern: Record<string, number> = {};
    const alphaPattern: Record<string, number> = {};
    for (const p of plan) {
      if (p.m.rank !== r) rankPattern[key(p.m.module)] = p.m.rank;
      if (p.alpha !== alphaDefault) alphaPattern[key(p.m.module)] = p.alpha;
    }
    const candidate: Record<string, unknown> = {
      peft_type: "LORA",
      task_type: opts.taskType === undefined ? "CAUSAL_LM" : opts.taskType,
      base_model_name_or_path: opts.baseModel === undefined ? adapter.baseModel : opts.baseModel,
      r,
      lora_alpha: alphaDefault,
      use_rslora: false,
      rank_pattern: rankPattern,
      alpha_pattern: alphaPattern,
      target_modules: mods.map((m) => m.module),
      fan_in_fan_out: adapter.fanInFanOut,
      bias: "none",
      use_dora: false,
      modules_to_save: null,
      lora_dropout: 0,
      init_lora_weights: true,
      layers_to_transform: null,
      layers_pattern: null,
      inference_mode: true,
    };
    if (reproduces(candidate, want)) {
      config = candidate;
      break;
    }
  }
  if (config === null) throw new Error("writePeftAdapter: internal error: no rank_pattern/alpha_pattern reproduces every module's rank and scale");

  const tensors: TensorToWrite[] = [];
  for (const p of plan) {
    tensors.push({ name: peftKey(p.m.module, "A"), dtype, shape: [p.m.rank, p.m.inFeatures], data: tensorData(p.m.a, dtype) });
    tensors.push({ name: peftKey(p.m.module, "B"), dtype, shape: [p.m.outFeatures, p.m.rank], data: tensorData(p.b, dtype) });
  }
  return { config, safetensors: writeSafetensors(tensors, opts.metadata ?? { format: "pt" }) };
}

/** A factor as written: halves kept in the dtype asked for are written as they are (bit for bit), anything else as F32 values. */
function tensorData(x: LoraFactor, dtype: SafetensorsDtype): Float32Array | Uint16Array {
  return x instanceof HalfFactor && x.dtype === dtype ? x.bits : factorValues(x);
}

/** B·s  [out, r] (only when no alpha reproduces s exactly). */
function foldScale(m: LoraModule<LoraFactor>): Float32Array {
  const b = factorValues(m.b);
  const out = new Float32Array(b.length);
  for (let i = 0; i < out.length; i++) out[i] = b[i] * m.scale;
  return out;
}

function reproduces(config: Record<string, unknown>, want: Array<{ module: string; rank: number; scale: number }>): boolean {
  const resolve = moduleScaleResolver({
    r: config.r as number,
    loraAlpha: config.lora_alpha as number,
    useRslora: false,
    rankPattern: config.rank_pattern as Record<string, number>,
    alphaPattern: config.alpha_pattern as Record<string, number>,
  } as PeftConfig);
  return want.every((w) => {
    const got = resolve(w.module);
    return got.rank === w.rank && got.scale === w.scale;
  });
}
