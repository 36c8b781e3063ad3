/**
 * A plain TypeScript forward pass of the Llama-family decoder (float64 accumulation, no ONNX),
 * used only by tests to hold the ONNX graph to the math. Full recompute, one sequence at a time.
 */
import type { ComposedMix } from "#core/lora/types";
import type { LlamaCheckpoint } from "../model-build/checkpoint.js";

function tensor(checkpoint: LlamaCheckpoint, name: string): Float32Array {
  const t = checkpoint.tensors.get(name);
  if (!t) throw new Error(`reference: checkpoint is missing ${name}`);
  return t.data;
}

/**
 * Semantics: y[s, o] = Σ_i W[o, i]·x[s, i] + Σ_c (Σ_i x[s, i]·at[i, c])·bt[c, o]
 * with W [out, in] (HF nn.Linear), x [seq, in], at [in, R], bt [R, out].
 */
export function referenceLinear(x: Float64Array, seq: number, inF: number, outF: number, w: Float32Array, lora?: { at: Float32Array; bt: Float32Array; rank: number }): Float64Array {
  const y = new Float64Array(seq * outF);
  for (let s = 0; s < seq; s++) {
    for (let o = 0; o < outF; o++) {
      let acc = 0;
      for (let i = 0; i < inF; i++) acc += w[o * inF + i] * x[s * inF + i];
      y[s * outF + o] = acc;
    }
    if (lora && lora.rank > 0) {
      const R = lora.rank;
      const xa = new Float64Array(R);
      for (let c = 0; c < R; c++) {
        let acc = 0;
        for (let i = 0; i < inF; i++) acc += x[s * inF + i] * lora.at[i * R + c];
        xa[c] = acc;
      }
      for (let o = 0; o < outF; o++) {
        let acc = 0;
        for (let c = 0; c < R; c++) acc += xa[c] * lora.bt[c * outF + o];
        y[s * outF + o] += acc;
      }
    }
  }
  return y;
}

/** Semantics: y[s, i] = x[s, i] / √(mean_i x[s, i]² + eps) · w[i]. */
export function referenceRmsNorm(x: Float64Array, seq: number, d: number, w: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(seq * d);
  for (let s = 0; s < seq; s++) {
    let ms = 0;
    for (let i = 0; i < d; i++) ms += x[s * d + i] ** 2;
    const inv = 1 / Math.sqrt(ms / d + eps);
    for (let i = 0; i < d; i++) y[s * d + i] = x[s * d + i] * inv * w[i];
  }
  return y;
}

/**
 * Semantics (HF rotate_half): for head vector v at position p and i < hd/2, with
 * θᵢ = p·base^(−2i/hd): v′[i] = v[i]·cos θᵢ − v[i+hd/2]·sin θᵢ, v′[i+hd/2] = v[i+hd/2]·cos θᵢ + v[i]·sin θᵢ.
 */
export function referenceRope(x: Float64Array, seq: number, heads: number, hd: number, positions: readonly number[], base: number): void {
  const half = hd / 2;
  for (let s = 0; s < seq; s++) {
    for (let h = 0; h < heads; h++) {
      const o = (s * heads + h) * hd;
      for (let i = 0; i < half; i++) {
        const angle = positions[s] * Math.pow(base, (-2 * i) / hd);
        const c = Math.cos(angle);
        const sn = Math.sin(angle);
        const a = x[o + i];
        const b = x[o + i + half];
        x[o + i] = a * c - b * sn;
        x[o + i + half] = b * c + a * sn;
      }
    }
  }
}

/**
 * Logits [tokens.length, vocab] of the whole sequence (causal attention, positions 0..n−1),
 * with the mix's LoRA applied on every module it contains.
 */
export function referenceForward(checkpoint: LlamaCheckpoint, tokens: readonly number[], mix: ComposedMix | null = null): Float32Array {
  const c = checkpoint.config;
  const n = tokens.length;
  const d = c.hiddenSize;
  const H = c.numHeads;
  const KVH = c.numKvHeads;
  const hd = c.headDim;
  const groups = H / KVH;
  const lora = (module: string) => {
    const m = mix?.modules.get(module);
    return m ? { at: m.at, bt: m.bt, rank: m.rank } : undefined;
  };
  const linear = (x: Float64Array, module: string, inF: number, outF: number) => {
    const y = referenceLinear(x, n, inF, outF, tensor(checkpoint, `${module}.weight`), lora(module));
    const bias = checkpoint.tensors.get(`${module}.bias`)?.data; // [out] (Qwen2 q/k/v)
    if (bias) for (let s = 0; s < n; s++) for (let o = 0; o < outF; o++) y[s * outF + o] += bias[o];
    return y;
  };
  const positions = tokens.map((_, i) => i);

  const embed = tensor(checkpoint, "model.embed_tokens.weight");
  let x = new Float64Array(n * d); // [n, d]
  tokens.forEach((t, s) => {
    for (let i = 0; i < d; i++) x[s * d + i] = embed[t * d + i];
  });
  for (let layer = 0; layer < c.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    const h = referenceRmsNorm(x, n, d, tensor(checkpoint, `${p}.input_layernorm.weight`), c.rmsNormEps);
    const q = linear(h, `${p}.self_attn.q_proj`, d, H * hd); // [n, H, hd]
    const k = linear(h, `${p}.self_attn.k_proj`, d, KVH * hd); // [n, KVH, hd]
    const v = linear(h, `${p}.self_attn.v_proj`, d, KVH * hd); // [n, KVH, hd]
    referenceRope(q, n, H, hd, positions, c.ropeTheta);
    referenceRope(k, n, KVH, hd, positions, c.ropeTheta);
    const attn = new Float64Array(n * H * hd); // [n, H, hd]
    const scale = 1 / Math.sqrt(hd);
    for (let head = 0; head < H; head++) {
      const kvh = Math.floor(head / groups);
      for (let s = 0; s < n; s++) {
        const scores = new Float64Array(s + 1);
        let max = -Infinity;
        for (let t = 0; t <= s; t++) {
          let acc = 0;
          for (let i = 0; i < hd; i++) acc += q[(s * H + head) * hd + i] * k[(t * KVH + kvh) * hd + i];
          scores[t] = acc * scale;
          max = Math.max(max, scores[t]);
        }
        let sum = 0;
        for (let t = 0; t <= s; t++) sum += scores[t] = Math.exp(scores[t] - max);
        for (let t = 0; t <= s; t++) {
          const w = scores[t] / sum;
          for (let i = 0; i < hd; i++) attn[(s * H + head) * hd + i] += w * v[(t * KVH + kvh) * hd + i];
        }
      }
    }
    const o = linear(attn, `${p}.self_attn.o_proj`, H * hd, d);
    x = x.map((val, i) => val + o[i]);
    const h2 = referenceRmsNorm(x, n, d, tensor(checkpoint, `${p}.post_attention_layernorm.weight`), c.rmsNormEps);
    const gate = linear(h2, `${p}.mlp.gate_proj`, d, c.intermediateSize);
    const up = linear(h2, `${p}.mlp.up_proj`, d, c.intermediateSize);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]); // silu(gate)·up
    const down = linear(act, `${p}.mlp.down_proj`, c.intermediateSize, d);
    x = x.map((val, i) => val + down[i]);
  }
  const normed = referenceRmsNorm(x, n, d, tensor(checkpoint, "model.norm.weight"), c.rmsNormEps);
  const head = tensor(checkpoint, c.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"); // [vocab, d]
  return Float32Array.from(referenceLinear(normed, n, d, c.vocabSize, head));
}
