/**
 * A LoRA factor (lora_A or lora_B) as an adapter holds it: F32 values, or the file's 16-bit values
 * (F16 / BF16) kept as they are and widened to F32 exactly when something reads them.
 *
 * Why keep halves: the runner's loader (`loadPeftAdapter(…, { keepHalves: true })`) then only checks
 * them (one read) instead of writing twice their bytes of F32, and the adapter cache holds half the
 * bytes; `composeMix` widens them as it stages each factor for its transposes (in its workspace), so
 * the composed mix — the only thing the serving path feeds to ONNX Runtime — is F32 as before.
 */
import { bf16ToF32 } from "../dtype/bf16.js";
import { f16ToF32, f16ToF32Table } from "../dtype/f16.js";
import { halvesAllFiniteStreamed } from "../simd/kernels.js";
import type { LoraAdapter } from "./types.js";

/** The 16-bit formats a factor may be kept in. */
export type HalfDtype = "F16" | "BF16";

/**
 * A factor kept in a 16-bit format: `bits` holds its values row-major, in the same layout as the
 * Float32Array it stands for (lora_A [rank, in], lora_B [out, rank]). Widening is exact (every F16 and
 * BF16 value is an F32), so a HalfFactor and its widened Float32Array are the same factor.
 */
export class HalfFactor {
  constructor(
    readonly dtype: HalfDtype,
    /** [length] the values' IEEE bits (F16: binary16; BF16: the top half of an F32), host order. */
    readonly bits: Uint16Array,
  ) {}
  get length(): number {
    return this.bits.length;
  }
  get byteLength(): number {
    return this.bits.byteLength;
  }
}

/** lora_A or lora_B: F32 values, or 16-bit values read through `factorValues` / `widenFactorInto`. */
export type LoraFactor = Float32Array | HalfFactor;

export interface WidenOptions {
  /** Widen F16 with the SIMD kernel where it runs (default true); false: the JS table, the reference paths' choice. */
  simd?: boolean;
}

/**
 * Writes the factor's values into `out` (exactly `x.length` floats): a copy of F32 values, the
 * halves widened exactly (F16: NaN payloads kept; BF16: bits << 16). Returns `out`.
 */
export function widenFactorInto(x: LoraFactor, out: Float32Array, options: WidenOptions = {}): Float32Array {
  if (out.length !== x.length) throw new RangeError(`widenFactorInto: out has ${out.length} elements, the factor ${x.length}`);
  if (x instanceof Float32Array) {
    out.set(x);
    return out;
  }
  if (x.dtype === "BF16") return bf16ToF32(x.bits, out);
  return (options.simd ?? true) ? f16ToF32(x.bits, out) : f16ToF32Table(x.bits, out);
}

/** The factor's values as F32: an F32 factor itself (no copy), else its halves widened into a new array. */
export function factorValues(x: LoraFactor, options: WidenOptions = {}): Float32Array {
  return x instanceof Float32Array ? x : widenFactorInto(x, new Float32Array(x.length), options);
}

/** The exponent field of each 16-bit format: all ones ⇔ ±Inf or NaN. */
const EXPONENT_MASK: Record<HalfDtype, number> = { F16: 0x7c00, BF16: 0x7f80 };

/**
 * Index of the first ±Inf or NaN of a 16-bit factor, or −1.
 * Semantics: min { i : (bits[i] & E) = E } with E the format's exponent mask (−1 when none).
 * Cost: one read of the bits by the SIMD scan streamed through its scratch (`halvesAllFiniteStreamed`),
 * else a JS pass; the index is searched for only when something was found.
 */
export function firstNonFiniteHalf(x: HalfFactor): number {
  const mask = EXPONENT_MASK[x.dtype];
  if (halvesAllFiniteStreamed(x.bits, mask) === true) return -1;
  const bits = x.bits;
  for (let i = 0; i < bits.length; i++) if ((bits[i]! & mask) === mask) return i;
  return -1;
}

/** The adapter with every 16-bit factor widened into a new F32 array (F32 factors shared, not copied): for F32-only code such as `bake`. */
export function adapterAsFloat32(adapter: LoraAdapter<LoraFactor>): LoraAdapter {
  const modules = new Map([...adapter.modules].map(([name, m]) => [name, { ...m, a: factorValues(m.a), b: factorValues(m.b) }]));
  return { baseModel: adapter.baseModel, fanInFanOut: adapter.fanInFanOut, modules };
}
