import { f32ToF16 } from "../dtype/f16.js";
import { AdapterFormatError } from "../errors.js";
import { factorValues, type LoraFactor } from "../lora/factor.js";
import type { LoraAdapter, LoraModule } from "../lora/types.js";
import { firstNonFinite } from "../peft/load-peft-adapter.js";
import { tensorToFloat32 } from "../safetensors/tensor-to-float32.js";
import { readOnnxAdapter, type OnnxAdapterFile, type OnnxAdapterParameter } from "./read-onnx-adapter.js";
import { writeOnnxAdapter, type OnnxAdapterParameterToWrite } from "./write-onnx-adapter.js";

/**
 * Parameter naming used for .onnx_adapter files (ONNX Runtime GenAI's model builder convention):
 *   "<module>.lora_A.MatMul.weight"  [in, r]   = Aᵀ
 *   "<module>.lora_B.MatMul.weight"  [r, out]  = s·Bᵀ   (the scale is folded into B)
 * so the graph computes y = x·W + (x·A′)·B′ with plain MatMuls, exactly the layout the runner
 * feeds (at [in, R], bt [R, out]). The file has no rank/alpha metadata, hence the fold; an
 * imported adapter has scale 1. `<module>` is the PEFT/Hugging Face module path unless a
 * `parameterName` / `parseParameterName` mapping is given (ORT GenAI's builder names modules its
 * own way, e.g. "model.layers.0.attn.q_proj").
 */
export function defaultParameterName(module: string, part: "A" | "B"): string {
  return `${module}.lora_${part}.MatMul.weight`;
}

const NAME_RE = /^(.+)\.lora_(A|B)\.MatMul\.weight$/s;

export function parseDefaultParameterName(name: string): { module: string; part: "A" | "B" } | null {
  const m = NAME_RE.exec(name);
  return m ? { module: m[1], part: m[2] as "A" | "B" } : null;
}

export interface PeftToOnnxAdapterOptions {
  /** Storage type of the parameters (default float32). */
  dtype?: "float32" | "float16";
  adapterVersion?: number;
  modelVersion?: number;
  parameterName?: (module: string, part: "A" | "B") => string;
}

/**
 * Aᵀ and s·Bᵀ of one module.
 * Semantics: at[i·r + k] = A[k·in + i];  bt[k·out + o] = fp32(s · B[o·r + k]).
 */
export function moduleToMatMulLayout(m: LoraModule<LoraFactor>): { at: Float32Array; bt: Float32Array } {
  const { rank: r, inFeatures: inF, outFeatures: outF, scale: s } = m;
  const a = factorValues(m.a); // [r, in]
  const b = factorValues(m.b); // [out, r]
  const at = new Float32Array(inF * r); // [in, r]
  for (let k = 0; k < r; k++) {
    const row = k * inF;
    for (let i = 0; i < inF; i++) at[i * r + k] = a[row + i];
  }
  const bt = new Float32Array(r * outF); // [r, out]
  for (let o = 0; o < outF; o++) {
    const row = o * r;
    for (let k = 0; k < r; k++) bt[k * outF + o] = s * b[row + k];
  }
  return { at, bt };
}

/** The .onnx_adapter parameters of an adapter (see `defaultParameterName` for the layout). */
export function onnxAdapterParameters(adapter: LoraAdapter<LoraFactor>, opts: PeftToOnnxAdapterOptions = {}): OnnxAdapterParameterToWrite[] {
  const name = opts.parameterName ?? defaultParameterName;
  const dtype = opts.dtype ?? "float32";
  const out: OnnxAdapterParameterToWrite[] = [];
  for (const m of [...adapter.modules.values()].sort((x, y) => (x.module < y.module ? -1 : 1))) {
    const { at, bt } = moduleToMatMulLayout(m);
    out.push({ name: name(m.module, "A"), dims: [m.inFeatures, m.rank], dtype, data: dtype === "float16" ? f32ToF16(at) : at });
    out.push({ name: name(m.module, "B"), dims: [m.rank, m.outFeatures], dtype, data: dtype === "float16" ? f32ToF16(bt) : bt });
  }
  return out;
}

/** An in-memory adapter → .onnx_adapter bytes for ONNX Runtime (GenAI). */
export function peftToOnnxAdapter(adapter: LoraAdapter<LoraFactor>, opts: PeftToOnnxAdapterOptions = {}): Uint8Array {
  return writeOnnxAdapter({ adapterVersion: opts.adapterVersion, modelVersion: opts.modelVersion, parameters: onnxAdapterParameters(adapter, opts) });
}

export interface OnnxAdapterToPeftOptions {
  baseModel?: string | null;
  fanInFanOut?: boolean;
  /** Inverse of `parameterName`: null for a name that is not a LoRA parameter (→ unexpected_tensor). */
  parseParameterName?: (name: string) => { module: string; part: "A" | "B" } | null;
}

function toF32(name: string, p: OnnxAdapterParameter): Float32Array {
  const dtype = p.dtype === "float32" ? "F32" : p.dtype === "float16" ? "F16" : p.dtype === "bfloat16" ? "BF16" : null;
  if (dtype === null) {
    throw new AdapterFormatError("unsupported_dtype", `.onnx_adapter: parameter "${name}" is ${p.dtype}; supported: float32, float16, bfloat16 (quantized adapters are not supported)`, { name, dtype: p.dtype });
  }
  return tensorToFloat32({ dtype, data: p.data });
}

/**
 * .onnx_adapter (bytes or parsed) → in-memory adapter with scale 1 (the file's B already holds
 * s·B). Checks: every parameter is a LoRA A/B (unexpected_tensor), pairs complete
 * (missing_lora_a/b), 2-D with A [in, r] and B [r, out] of equal r (shape_mismatch,
 * rank_mismatch), float dtype (unsupported_dtype), finite values (non_finite_weight).
 * Semantics: A[k·in + i] = at[i·r + k];  B[o·r + k] = bt[k·out + o].
 */
export function onnxAdapterToPeft(input: Uint8Array | OnnxAdapterFile, opts: OnnxAdapterToPeftOptions = {}): LoraAdapter {
  const file = input instanceof Uint8Array ? readOnnxAdapter(input) : input;
  const parse = opts.parseParameterName ?? parseDefaultParameterName;
  const pairs = new Map<string, { A?: [string, OnnxAdapterParameter]; B?: [string, OnnxAdapterParameter] }>();
  for (const [name, p] of file.parameters) {
    const key = parse(name);
    if (!key) {
      throw new AdapterFormatError("unexpected_tensor", `.onnx_adapter: parameter "${name}" is not a LoRA weight (expected "<module>.lora_A.MatMul.weight" / "<module>.lora_B.MatMul.weight")`, { name });
    }
    const slot = pairs.get(key.module) ?? {};
    if (slot[key.part]) throw new AdapterFormatError("unexpected_tensor", `.onnx_adapter: two parameters map to lora_${key.part} of module "${key.module}"`, { name });
    slot[key.part] = [name, p];
    pairs.set(key.module, slot);
  }
  if (pairs.size === 0) throw new AdapterFormatError("empty_adapter", ".onnx_adapter: the file holds no LoRA parameters");
  const modules = new Map<string, LoraModule>();
  for (const module of [...pairs.keys()].sort()) {
    const { A, B } = pairs.get(module)!;
    if (!B) throw new AdapterFormatError("missing_lora_b", `.onnx_adapter: module "${module}" has lora_A but no lora_B`, { module });
    if (!A) throw new AdapterFormatError("missing_lora_a", `.onnx_adapter: module "${module}" has lora_B but no lora_A`, { module });
    for (const [n, p] of [A, B]) {
      if (p.dims.length !== 2) throw new AdapterFormatError("shape_mismatch", `.onnx_adapter: parameter "${n}" must be 2-D, got [${p.dims.join(", ")}]`, { name: n });
    }
    const [inF, r] = A[1].dims;
    const [rB, outF] = B[1].dims;
    if (r !== rB) {
      throw new AdapterFormatError("rank_mismatch", `.onnx_adapter: module "${module}": lora_A is [${A[1].dims.join(", ")}] (rank ${r}) but lora_B is [${B[1].dims.join(", ")}] (rank ${rB})`, { module });
    }
    if (r === 0 || inF === 0 || outF === 0) throw new AdapterFormatError("shape_mismatch", `.onnx_adapter: module "${module}" has an empty dimension`, { module });
    const at = toF32(A[0], A[1]);
    const bt = toF32(B[0], B[1]);
    for (const [n, f] of [[A[0], at], [B[0], bt]] as const) {
      const i = firstNonFinite(f);
      if (i >= 0) throw new AdapterFormatError("non_finite_weight", `.onnx_adapter: parameter "${n}" has a non-finite value (${f[i]}) at flat index ${i}`, { name: n, index: i });
    }
    const a = new Float32Array(r * inF); // [r, in]
    for (let i = 0; i < inF; i++) for (let k = 0; k < r; k++) a[k * inF + i] = at[i * r + k];
    const b = new Float32Array(outF * r); // [out, r]
    for (let k = 0; k < r; k++) for (let o = 0; o < outF; o++) b[o * r + k] = bt[k * outF + o];
    modules.set(module, { module, rank: r, inFeatures: inF, outFeatures: outF, scale: 1, a, b });
  }
  return { baseModel: opts.baseModel ?? null, fanInFanOut: opts.fanInFanOut ?? false, modules };
}
