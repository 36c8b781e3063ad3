/**
 * W′ = W + ΔW for merged sessions, computed by ONNX Runtime (one tiny MatMul+Add graph with
 * dynamic sizes, created once per backend), never by JS loops.
 */
import type { Backend, Session } from "../backend/index.js";
import { float32, expectFloat32 } from "../backend/index.js";
import { DataType, GraphBuilder } from "../onnx/index.js";
import type { ComposedModule } from "#core/lora/types";

/**
 * "in_out": Semantics: W′[x, y] = W[x, y] + Σ_c at[x, c]·bt[c, y]   (W [in, out])
 * "out_in": Semantics: W′[y, x] = W[y, x] + Σ_c at[x, c]·bt[c, y]   (W [out, in])
 */
function mergeGraph(layout: "in_out" | "out_in"): Uint8Array {
  const g = new GraphBuilder();
  const F = DataType.FLOAT;
  const w = g.input("w", F, layout === "in_out" ? ["in", "out"] : ["out", "in"]);
  const at = g.input("at", F, ["in", "R"]); // [in, R]
  const bt = g.input("bt", F, ["R", "out"]); // [R, out]
  // R > 0 always here (modules of rank 0 are skipped), so the Transposes are safe.
  const delta = layout === "in_out" ? g.node("MatMul", [at, bt]) : g.node("MatMul", [g.node("Transpose", [bt], { perm: [1, 0] }), g.node("Transpose", [at], { perm: [1, 0] })]);
  g.node("Add", [w, delta], {}, { output: "merged" });
  g.output("merged", F, layout === "in_out" ? ["in", "out"] : ["out", "in"]);
  return g.encode(`loraedge-merge-${layout}`);
}

export class WeightMerger {
  private readonly sessions = new Map<string, Promise<Session>>();

  constructor(private readonly backend: Backend) {}

  private session(layout: "in_out" | "out_in"): Promise<Session> {
    let s = this.sessions.get(layout);
    if (!s) {
      s = this.backend.createSession(mergeGraph(layout));
      this.sessions.set(layout, s);
    }
    return s;
  }

  /** W′ for one module; `weight` is W in `layout`. */
  async merge(weight: Float32Array, layout: "in_out" | "out_in", module: ComposedModule): Promise<Float32Array> {
    const { inFeatures: I, outFeatures: O, rank: R } = module;
    if (weight.length !== I * O) throw new Error(`merge ${module.module}: weight has ${weight.length} values, expected ${I}×${O}`);
    if (R === 0) return weight;
    const session = await this.session(layout);
    const out = await session.run({
      w: float32(weight, layout === "in_out" ? [I, O] : [O, I]),
      at: float32(module.at, [I, R]),
      bt: float32(module.bt, [R, O]),
    });
    return expectFloat32(out.merged, "merged").data;
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
