/**
 * W′ = W + ΔW for merged sessions, computed by ONNX Runtime (one tiny MatMul+Add graph with
 * dynamic sizes, created once per backend and weight dtype), never by JS loops. fp16 weights are
 * up-cast, summed with ΔW in fp32 and rounded to fp16 once (Cast: round to nearest even).
 */
import type { Backend, Session } from "../backend/index.js";
import { float16, float32, expectFloat32 } from "../backend/index.js";
import { DataType, GraphBuilder } from "../onnx/index.js";
import type { ComposedModule } from "#core/lora/types";

export type WeightDtype = "float32" | "float16";

/**
 * "in_out": Semantics: W′[x, y] = W[x, y] + Σ_c at[x, c]·bt[c, y]   (W [in, out])
 * "out_in": Semantics: W′[y, x] = W[y, x] + Σ_c at[x, c]·bt[c, y]   (W [out, in])
 * "float16": W′ = f16(f32(W) + ΔW), the sum in fp32.
 */
function mergeGraph(layout: "in_out" | "out_in", dtype: WeightDtype): Uint8Array {
  const g = new GraphBuilder();
  const F = DataType.FLOAT;
  const wType = dtype === "float16" ? DataType.FLOAT16 : F;
  const wIn = g.input("w", wType, layout === "in_out" ? ["in", "out"] : ["out", "in"]);
  const w = dtype === "float16" ? g.node("Cast", [wIn], { to: F }) : wIn;
  const at = g.input("at", F, ["in", "R"]); // [in, R]
  const bt = g.input("bt", F, ["R", "out"]); // [R, out]
  // R > 0 always here (modules of rank 0 are skipped), so the Transposes are safe.
  const delta = layout === "in_out" ? g.node("MatMul", [at, bt]) : g.node("MatMul", [g.node("Transpose", [bt], { perm: [1, 0] }), g.node("Transpose", [at], { perm: [1, 0] })]);
  if (dtype === "float16") g.node("Cast", [g.node("Add", [w, delta])], { to: DataType.FLOAT16 }, { output: "merged" });
  else g.node("Add", [w, delta], {}, { output: "merged" });
  g.output("merged", wType, layout === "in_out" ? ["in", "out"] : ["out", "in"]);
  return g.encode(`loraedge-merge-${layout}-${dtype}`);
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

  /** W′ for one module; `weight` is W in `layout`: float32 values, or fp16 bits (Uint16Array) merged in fp32 and rounded once. */
  async merge<W extends Float32Array | Uint16Array>(weight: W, layout: "in_out" | "out_in", module: ComposedModule): Promise<W> {
    const { inFeatures: I, outFeatures: O, rank: R } = module;
    if (weight.length !== I * O) throw new Error(`merge ${module.module}: weight has ${weight.length} values, expected ${I}×${O}`);
    if (R === 0) return weight;
    const dims = layout === "in_out" ? [I, O] : [O, I];
    const fp16 = weight instanceof Uint16Array;
    const session = await this.session(layout, fp16 ? "float16" : "float32");
    const out = await session.run({
      w: fp16 ? float16(weight, dims) : float32(weight as Float32Array, dims),
      at: float32(module.at, [I, R]),
      bt: float32(module.bt, [R, O]),
    });
    if (fp16) {
      const merged = out.merged;
      if (merged?.type !== "float16") throw new Error(`merge ${module.module}: expected a float16 result`);
      return merged.data as W;
    }
    return expectFloat32(out.merged, "merged").data as W;
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
