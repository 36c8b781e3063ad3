/**
 * Delta weight and merge: the plain reference code the runner's ONNX Runtime merge must equal.
 */
import { factorValues, type LoraFactor } from "./factor.js";
import type { ComposedModule, LoraModule } from "./types.js";

export interface DeltaOptions {
  /**
   * PEFT `fan_in_fan_out`: the base layer stores W as [in, out] (GPT-2 Conv1D), so ΔW is
   * returned transposed, [in, out], to add to it directly. Default false: [out, in].
   */
  fanInFanOut?: boolean;
}

function isComposed(m: LoraModule<LoraFactor> | ComposedModule): m is ComposedModule {
  return "at" in m;
}

function checkModuleShapes(m: LoraModule<LoraFactor> | ComposedModule): void {
  const { rank, inFeatures, outFeatures } = m;
  for (const [name, v] of [
    ["rank", rank],
    ["inFeatures", inFeatures],
    ["outFeatures", outFeatures],
  ] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`module ${m.module}: ${name} must be a non-negative integer, got ${v}`);
  }
  const [first, second] = isComposed(m)
    ? ([["at", m.at, inFeatures * rank], ["bt", m.bt, rank * outFeatures]] as const)
    : ([["a", m.a, rank * inFeatures], ["b", m.b, outFeatures * rank]] as const);
  for (const [name, arr, expected] of [first, second]) {
    if (arr.length !== expected) {
      throw new RangeError(`module ${m.module}: ${name} has ${arr.length} elements, expected ${expected} for rank ${rank}, in ${inFeatures}, out ${outFeatures}`);
    }
  }
}

/**
 * The dense weight update of one LoRA module (or one composed module).
 *
 * Semantics:
 *   LoraModule:     ΔW[o,i] = scale · Σ_k B[o,k] · A[k,i]          (ΔW = s·B·A)
 *   ComposedModule: ΔW[o,i] = Σ_k at[i,k] · bt[k,o]                 (ΔW = B′·A′ = btᵀ·atᵀ)
 * Returned as [out, in] row-major, or as its transpose [in, out] when fanInFanOut.
 * Accumulates in float64 and rounds once to float32. Cost O(out·in·r).
 */
export function deltaWeight(module: LoraModule<LoraFactor> | ComposedModule, opts: DeltaOptions = {}): Float32Array {
  checkModuleShapes(module);
  const { rank: r, inFeatures: nIn, outFeatures: nOut } = module;
  const fanInFanOut = opts.fanInFanOut ?? false;
  // Unify both forms as ΔW[o,i] = Σ_k left(o,k) · right(k,i), with left [out, r], right [r, in].
  let left: Float64Array; // [out, r]  (s·B, or btᵀ)
  let right: Float32Array | Float64Array; // [r, in] (A, or atᵀ)
  if (isComposed(module)) {
    left = new Float64Array(nOut * r);
    for (let k = 0; k < r; k++) for (let o = 0; o < nOut; o++) left[o * r + k] = module.bt[k * nOut + o];
    const at = module.at;
    right = new Float64Array(r * nIn);
    for (let i = 0; i < nIn; i++) for (let k = 0; k < r; k++) right[k * nIn + i] = at[i * r + k];
  } else {
    if (!Number.isFinite(module.scale)) throw new RangeError(`module ${module.module}: scale must be finite, got ${module.scale}`);
    const b = factorValues(module.b); // [out, r]
    left = new Float64Array(nOut * r);
    for (let j = 0; j < left.length; j++) left[j] = module.scale * b[j];
    right = factorValues(module.a); // [r, in]
  }
  const row = new Float64Array(nIn); // one row of ΔW, accumulated in float64
  const out = new Float32Array(nOut * nIn); // [out, in] or [in, out]
  for (let o = 0; o < nOut; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const c = left[o * r + k];
      if (c === 0) continue;
      const rk = k * nIn;
      for (let i = 0; i < nIn; i++) row[i] += c * right[rk + i];
    }
    if (fanInFanOut) {
      for (let i = 0; i < nIn; i++) out[i * nOut + o] = row[i];
    } else {
      out.set(row, o * nIn);
    }
  }
  return out;
}

/**
 * Merged weight W′ = W + ΔW (the "merged" serving path).
 * Semantics: W′[j] = fp32(W[j] + ΔW[j]) elementwise; both in the same layout
 * ([out, in], or [in, out] for fan_in_fan_out layers: pass a ΔW built with the same option).
 * Equals ONNX Runtime's float32 Add bit for bit (the float64 sum of two float32 values
 * rounds to the same float32 as a float32 add).
 */
export function mergeWeight(w: Float32Array, delta: Float32Array): Float32Array {
  if (w.length !== delta.length) {
    throw new RangeError(`mergeWeight: W has ${w.length} elements but ΔW has ${delta.length}`);
  }
  const merged = new Float32Array(w.length);
  for (let j = 0; j < w.length; j++) merged[j] = w[j] + delta[j];
  return merged;
}
