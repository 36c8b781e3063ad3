import type { LoraModule } from "../lora/types.js";

/** Naive reference ΔW[o, i] = s·Σ_k B[o, k]·A[k, i], [out, in], in float64. */
export function naiveDelta(m: Omit<LoraModule, "module">): Float64Array {
  const d = new Float64Array(m.outFeatures * m.inFeatures);
  for (let o = 0; o < m.outFeatures; o++)
    for (let i = 0; i < m.inFeatures; i++) {
      let s = 0;
      for (let k = 0; k < m.rank; k++) s += m.b[o * m.rank + k] * m.a[k * m.inFeatures + i];
      d[o * m.inFeatures + i] = m.scale * s;
    }
  return d;
}
