/**
 * Per-request exact mix of LoRA adapters ("cat"): the fast path the runner runs for every
 * request, so it only allocates its output and uses plain typed-array loops.
 */
import { allocatedFloat32, type Float32Alloc, freshFloat32 } from "../dtype/float32-alloc.js";
import { f16BitsToF32Bits } from "../dtype/f16.js";
import { factorValues, HalfFactor, type LoraFactor, widenFactorInto } from "../lora/factor.js";
import type { ComposedMix, ComposedModule, LoraAdapter, LoraModule, MixTerm } from "../lora/types.js";
import { transposer } from "../simd/kernels.js";

/** A mix that cannot be composed (bad weight, shape mismatch, inconsistent adapters). */
export class MixError extends Error {
  override name = "MixError";
}

interface ModulePlan {
  module: string;
  inFeatures: number;
  outFeatures: number;
  rank: number; // R = Σ rᵢ so far
  parts: Array<{ source: LoraModule<LoraFactor>; coef: number }>; // coef = wᵢ·sᵢ
}

function checkLoraModule(name: string, m: LoraModule<LoraFactor>, termIndex: number): void {
  const where = `term ${termIndex}, module ${name}`;
  if (m.module !== name) throw new MixError(`${where}: module is keyed as "${name}" but names itself "${m.module}"`);
  for (const [field, v] of [
    ["rank", m.rank],
    ["inFeatures", m.inFeatures],
    ["outFeatures", m.outFeatures],
  ] as const) {
    if (!Number.isInteger(v) || v < 0) throw new MixError(`${where}: ${field} must be a non-negative integer, got ${v}`);
  }
  if (m.a.length !== m.rank * m.inFeatures) {
    throw new MixError(`${where}: lora_A has ${m.a.length} elements, expected rank ${m.rank} × in ${m.inFeatures}`);
  }
  if (m.b.length !== m.outFeatures * m.rank) {
    throw new MixError(`${where}: lora_B has ${m.b.length} elements, expected out ${m.outFeatures} × rank ${m.rank}`);
  }
  if (!Number.isFinite(m.scale)) throw new MixError(`${where}: scale must be finite, got ${m.scale}`);
}

export interface ComposeOptions {
  /**
   * Where each output array comes from (default: a fresh Float32Array): e.g. a pool of buffers of
   * mixes that left, so composing does not pay for fresh pages (zeroing, first touch, GC).
   * Must return an array of exactly `length` floats that nothing else reads or writes; its old
   * contents do not matter (every element is overwritten). See `dtype/float32-alloc.ts`.
   */
  alloc?: Float32Alloc;
  /**
   * Transpose with the SIMD kernels where they run (default true: `simd/kernels.ts` `transposer`,
   * bit for bit the loops below for every value but a signalling NaN in B, which the kernel copies as
   * it is and the JS loop quiets); false: the plain JS loops, the reference the tests hold them equal to.
   */
  simd?: boolean;
  /**
   * Also verify, as each module is composed, that every value has |v| ≤ `bound` (a finite bound ≥ 0):
   * on the SIMD path the bound scan runs over the module's Aᵗ/Bᵗ in the workspace before they are
   * copied out (in cache, no extra pass over memory), and the mix carries `verifiedBound` when all
   * passed. The JS path does not verify (no `verifiedBound`): the caller scans, as it would without it.
   */
  bound?: number;
}

/**
 * Composes a weighted mix of adapters into one low-rank pair per module, exactly.
 *
 * Semantics (per module, over the terms i that have it and wᵢ ≠ 0, in term order):
 *   A′ = [w₁s₁A₁; …; wₙsₙAₙ]   (rows stacked)        [R, in]
 *   B′ = [B₁ … Bₙ]             (columns side by side) [out, R],  R = Σ rᵢ
 *   ⇒ B′·A′ = Σ wᵢ·sᵢ·Bᵢ·Aᵢ exactly (scale 1); returned as at = A′ᵀ [in, R], bt = B′ᵀ [R, out].
 * Ranks may differ, weights may be negative, a module may be missing from some adapters, the
 * same adapter may appear twice. Terms with weight 0 are dropped; modules left with no term
 * are absent (ΔW = 0 there); an empty mix has no modules and maxRank 0.
 *
 * Throws MixError on a non-finite weight, on adapters that disagree on a module's in/out
 * sizes or on fan_in_fan_out, and on a module whose arrays do not match its declared shape.
 *
 * Cost: O(Σ over modules of (in + out)·R) time, one allocation of the output per module. Both
 * factors are transposes: by the SIMD kernels (4×4 blocks, each term's A or B copied (16-bit factors widened) into their
 * workspace, the module's Aᵗ / Bᵗ assembled there and copied out once) where WebAssembly runs, else
 * by the JS loops (loraedge-small, 3 terms of ranks 8 + 24 + 32, 51 MB into reused buffers: 26 vs 51 ms,
 * 1.95× by the per-round median of 11 interleaved rounds)
 * (`options.alloc`: reused buffers compose 64 loraedge-small mixes of 2.2 GB ≈ 1.9× faster than
 * fresh ones on the 2-core dev box, 1.34 s vs 2.50 s, medians of 5 interleaved rounds);
 * no matrix product is formed. Measured on the 2-core dev box: 4 adapters of r16 on one
 * 4096×4096 target (R = 64) ≈ 7 ms; two r16 adapters on 128 such targets (a 7B model's
 * q/k/v/o) ≈ 100 ms, so the runner should cache composed mixes by mix key.
 */
export function composeMix(terms: readonly MixTerm<LoraFactor>[], options: ComposeOptions = {}): ComposedMix {
  const alloc = options.alloc ?? freshFloat32;
  const simd = options.simd ?? true;
  const bound = options.bound;
  let verified = bound !== undefined && simd;
  // Pass 1: validate and plan (sizes, R per module), no tensor allocation.
  const plans = new Map<string, ModulePlan>();
  let fanInFanOut: boolean | null = null;
  for (let t = 0; t < terms.length; t++) {
    const { adapter, weight } = terms[t];
    if (typeof weight !== "number" || !Number.isFinite(weight)) {
      throw new MixError(`term ${t}: weight must be a finite number, got ${String(weight)}`);
    }
    if (weight === 0) continue;
    if (fanInFanOut === null) fanInFanOut = adapter.fanInFanOut;
    else if (adapter.fanInFanOut !== fanInFanOut) {
      throw new MixError(`term ${t}: fan_in_fan_out is ${adapter.fanInFanOut} but earlier terms have ${fanInFanOut}; adapters of one mix must target the same base layout`);
    }
    for (const [name, m] of adapter.modules) {
      checkLoraModule(name, m, t);
      let plan = plans.get(name);
      if (plan === undefined) {
        plan = { module: name, inFeatures: m.inFeatures, outFeatures: m.outFeatures, rank: 0, parts: [] };
        plans.set(name, plan);
      } else if (plan.inFeatures !== m.inFeatures || plan.outFeatures !== m.outFeatures) {
        throw new MixError(`term ${t}, module ${name}: shape in ${m.inFeatures} × out ${m.outFeatures} does not match in ${plan.inFeatures} × out ${plan.outFeatures} from an earlier term`);
      }
      if (m.rank === 0) continue;
      plan.rank += m.rank;
      plan.parts.push({ source: m, coef: weight * m.scale });
    }
  }

  // Pass 2: fill at [in, R] and bt [R, out].
  const modules = new Map<string, ComposedModule>();
  let maxRank = 0;
  for (const plan of plans.values()) {
    const R = plan.rank;
    if (R === 0) continue;
    const nIn = plan.inFeatures;
    const nOut = plan.outFeatures;
    const at = allocatedFloat32(alloc, nIn * R, "compose"); // [in, R]
    const bt = allocatedFloat32(alloc, R * nOut, "compose"); // [R, out]
    const t = simd ? transposer(plan.parts.reduce((n, p) => Math.max(n, p.source.rank), 0) * Math.max(nIn, nOut), R * Math.max(nIn, nOut)) : null;
    if (t) {
      // A factor into the workspace's src: F16 widened there by the kernel, anything else written (BF16 widened) by `widenFactorInto`.
      const stage = (x: LoraFactor) => (x instanceof HalfFactor && x.dtype === "F16" ? t.widenF16(x.bits, f16BitsToF32Bits) : widenFactorInto(x, t.src.subarray(0, x.length)));
      let off = 0;
      for (const { source, coef } of plan.parts) {
        stage(source.a); // A [r, in]
        t.transpose(source.rank, nIn, off, R, coef); // at[i, off+k] = coef · A[k, i]
        off += source.rank;
      }
      if (verified && !t.dstWithin(nIn * R, bound!)) verified = false;
      at.set(t.dst.subarray(0, nIn * R));
      off = 0;
      for (const { source } of plan.parts) {
        stage(source.b); // B [out, r]
        t.transpose(nOut, source.rank, off * nOut, nOut); // bt[off+k, o] = B[o, k]
        off += source.rank;
      }
      if (verified && !t.dstWithin(R * nOut, bound!)) verified = false;
      bt.set(t.dst.subarray(0, R * nOut));
      modules.set(plan.module, { module: plan.module, rank: R, inFeatures: nIn, outFeatures: nOut, at, bt });
      if (R > maxRank) maxRank = R;
      continue;
    }
    verified = false; // the JS loops do not verify
    let off = 0; // column offset of this term's block in at / row offset in bt
    for (const { source, coef } of plan.parts) {
      const r = source.rank;
      const a = factorValues(source.a, { simd: false }); // [r, in]
      const b = factorValues(source.b, { simd: false }); // [out, r]
      // at[i, off+k] = coef · A[k, i]
      for (let k = 0; k < r; k++) {
        const ak = k * nIn;
        let dst = off + k;
        for (let i = 0; i < nIn; i++, dst += R) at[dst] = coef * a[ak + i];
      }
      // bt[off+k, o] = B[o, k]
      for (let k = 0; k < r; k++) {
        const dst = (off + k) * nOut;
        let src = k;
        for (let o = 0; o < nOut; o++, src += r) bt[dst + o] = b[src];
      }
      off += r;
    }
    modules.set(plan.module, { module: plan.module, rank: R, inFeatures: nIn, outFeatures: nOut, at, bt });
    if (R > maxRank) maxRank = R;
  }
  return verified ? { modules, maxRank, verifiedBound: bound } : { modules, maxRank };
}

export interface MixAsAdapterOptions {
  /** Stored as the adapter's `baseModel` (default null). */
  baseModel?: string | null;
  /** Stored as the adapter's `fanInFanOut` (default false); it does not change A or B. */
  fanInFanOut?: boolean;
}

/**
 * The composed mix as one ordinary adapter (the "cat" adapter), e.g. to upload cat(a, b).
 * Semantics: per module, scale 1, A = atᵀ [R, in], B = btᵀ [out, R], so s·B·A = B′·A′.
 * Cost O(Σ (in + out)·R).
 */
export function mixAsAdapter(mix: ComposedMix, opts: MixAsAdapterOptions = {}): LoraAdapter {
  const modules = new Map<string, LoraModule>();
  for (const [name, m] of mix.modules) {
    const { rank: R, inFeatures: nIn, outFeatures: nOut } = m;
    if (m.at.length !== nIn * R || m.bt.length !== R * nOut) {
      throw new MixError(`module ${name}: at/bt sizes ${m.at.length}/${m.bt.length} do not match rank ${R}, in ${nIn}, out ${nOut}`);
    }
    const a = new Float32Array(R * nIn); // [R, in]
    for (let i = 0; i < nIn; i++) for (let k = 0; k < R; k++) a[k * nIn + i] = m.at[i * R + k];
    const b = new Float32Array(nOut * R); // [out, R]
    for (let k = 0; k < R; k++) for (let o = 0; o < nOut; o++) b[o * R + k] = m.bt[k * nOut + o];
    modules.set(name, { module: name, rank: R, inFeatures: nIn, outFeatures: nOut, scale: 1, a, b });
  }
  return { baseModel: opts.baseModel ?? null, fanInFanOut: opts.fanInFanOut ?? false, modules };
}
