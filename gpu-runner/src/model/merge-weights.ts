/**
 * W′ = W + ΔW for merged sessions, computed by ONNX Runtime (one Gemm graph with dynamic sizes,
 * created once per layout and weight dtype), never by JS loops. ORT reads W from the merged copy and
 * writes W′ back over it (`Session.runInto` with the input's own memory as the output): no copies in
 * or out per module, and W's bytes come from DRAM once (bench case 5: 0.915× the time of reading W
 * from the base and writing the copy, per-round median of 12 interleaved rounds on loraedge-small).
 * fp16 weights are up-cast, summed with ΔW in fp32 and rounded to fp16 once (Cast: round to nearest even).
 */
import type { Backend, Session } from "../backend/index.js";
import { float16, float32 } from "../backend/index.js";
import { DataType, GraphBuilder } from "../onnx/index.js";
import type { ComposedModule } from "#core/lora/types";

export type WeightDtype = "float32" | "float16";

/**
 * "in_out": Semantics: W′[x, y] = W[x, y] + Σ_c at[x, c]·bt[c, y]   (W [in, out])
 * "out_in": Semantics: W′[y, x] = W[y, x] + Σ_c at[x, c]·bt[c, y]   (W [out, in])
 * "float16": W′ = f16(f32(W) + ΔW), the sum in fp32.
 * One Gemm (Y = op(A)·op(B) + C, C = W): the GEMM accumulates onto W, no ΔW temporary and no
 * separate Add pass; "out_in" uses the Gemm's transpose flags (ΔWᵀ = btᵀ·atᵀ), no Transpose nodes.
 * Cost: 2·in·out·R FLOPs + one read of W and one write of W′.
 */
export function mergeGraph(layout: "in_out" | "out_in", dtype: WeightDtype): Uint8Array {
  const g = new GraphBuilder();
  const F = DataType.FLOAT;
  const wType = dtype === "float16" ? DataType.FLOAT16 : F;
  const wIn = g.input("w", wType, layout === "in_out" ? ["in", "out"] : ["out", "in"]);
  const w = dtype === "float16" ? g.node("Cast", [wIn], { to: F }) : wIn;
  const at = g.input("at", F, ["in", "R"]); // [in, R]
  const bt = g.input("bt", F, ["R", "out"]); // [R, out]
  const gemm = { alpha: { float: 1 }, beta: { float: 1 } };
  const sumName = dtype === "float16" ? undefined : "merged";
  const sum =
    layout === "in_out"
      ? g.node("Gemm", [at, bt, w], gemm, sumName ? { output: sumName } : {}) // [in, R]·[R, out] + W
      : g.node("Gemm", [bt, at, w], { ...gemm, transA: 1, transB: 1 }, sumName ? { output: sumName } : {}); // [out, R]·[R, in] + W
  if (dtype === "float16") g.node("Cast", [sum], { to: DataType.FLOAT16 }, { output: "merged" });
  g.output("merged", wType, layout === "in_out" ? ["in", "out"] : ["out", "in"]);
  return g.encode(`loraedge-merge-gemm-${layout}-${dtype}`);
}

type WeightArrayKind<T extends Float32Array | Uint16Array> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

/**
 * One weight of a weights buffer as a typed view sharing its memory — never a copy: a merged
 * session's W′ is written through this view into its weights copy, so a copy would silently leave W
 * unmerged. Throws (naming the weight) when the weight is not aligned to its element size or lies
 * outside the buffer. Cannot fire for models built or imported here: every writer lays weights out on
 * 64-byte boundaries (`onnx/graph-builder.ts`, `onnx/float16.ts`, `model-build/import-onnx-export.ts`)
 * and `model-dir.ts` reads the file into a fresh buffer (byte offset 0); `createOnnxModel` checks every
 * merge target this way at load and notes (logs) a foreign layout; `createMerged` then refuses a mix
 * touching such a target before copying anything, while a model never merged still serves.
 */
export function weightView<T extends Float32Array | Uint16Array>(Kind: WeightArrayKind<T>, bytes: Uint8Array, name: string, loc: { offset: number; length: number }): T {
  const at = bytes.byteOffset + loc.offset;
  // The offset itself too: a merged session's weights copy starts at byte offset 0.
  if (at % Kind.BYTES_PER_ELEMENT !== 0 || loc.offset % Kind.BYTES_PER_ELEMENT !== 0 || loc.length % Kind.BYTES_PER_ELEMENT !== 0) {
    throw new Error(`weight ${name} (byte offset ${loc.offset}, ${loc.length} bytes) is not aligned to its ${Kind.BYTES_PER_ELEMENT}-byte elements in the weights file`);
  }
  if (loc.offset < 0 || loc.offset + loc.length > bytes.byteLength) {
    throw new Error(`weight ${name} (byte offset ${loc.offset}, ${loc.length} bytes) lies outside the ${bytes.byteLength}-byte weights file`);
  }
  return new Kind(bytes.buffer, at, loc.length / Kind.BYTES_PER_ELEMENT);
}

export class WeightMerger {
  private readonly sessions = new Map<string, Promise<Session>>();

  constructor(private readonly backend: Backend) {}

  private session(layout: "in_out" | "out_in", dtype: WeightDtype): Promise<Session> {
    const key = `${layout}/${dtype}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = this.backend.createSession(mergeGraph(layout, dtype));
      this.sessions.set(key, s);
    }
    return s;
  }

  /**
   * W ← W + ΔW for one module, in place: `weight` is W in `layout` (float32 values, or fp16 bits as a
   * Uint16Array, merged in fp32 and rounded once) and receives W′. R = 0: nothing to do.
   * Safe in place: ORT's CPU Gemm first copies C into Y element by element (`GemmBroadcastBias`, the
   * [M, N] case — here each element onto itself), then accumulates the GEMM onto Y (beta 1); the fp16
   * graph Casts all of W up before its last Cast writes; onnxruntime-web copies its own output in
   * after the run. `merge-weights.test.ts` holds both layouts and fp16 equal to the reference.
   */
  async mergeInPlace<W extends Float32Array | Uint16Array>(weight: W, layout: "in_out" | "out_in", module: ComposedModule): Promise<void> {
    const { inFeatures: I, outFeatures: O, rank: R } = module;
    if (weight.length !== I * O) throw new Error(`merge ${module.module}: weight has ${weight.length} values, expected ${I}×${O}`);
    if (R === 0) return;
    const dims = layout === "in_out" ? [I, O] : [O, I];
    const fp16 = weight instanceof Uint16Array;
    const tensor = (data: W) => (fp16 ? float16(data as Uint16Array, dims) : float32(data as Float32Array, dims));
    const session = await this.session(layout, fp16 ? "float16" : "float32");
    await session.runInto({ w: tensor(weight), at: float32(module.at, [I, R]), bt: float32(module.bt, [R, O]) }, { merged: tensor(weight) });
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
