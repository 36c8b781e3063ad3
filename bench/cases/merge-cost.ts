import { float32 } from "../../gpu-runner/src/backend/index.js";
import { loadBackend } from "../../gpu-runner/src/backend/index.js";
import { DataType, GraphBuilder } from "../../gpu-runner/src/onnx/index.js";
import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { benchSessionOptions, loadBenchModel, randomMix } from "../lib/workload.js";

/** A plain [M, K]·[K, N] MatMul graph: the backend's reference GEMM speed. */
function matmulGraph(): Uint8Array {
  const g = new GraphBuilder();
  const a = g.input("a", DataType.FLOAT, ["M", "K"]);
  const b = g.input("b", DataType.FLOAT, ["K", "N"]);
  g.node("MatMul", [a, b], {}, { output: "c" });
  g.output("c", DataType.FLOAT, ["M", "N"]);
  return g.encode("bench-matmul");
}

/**
 * Case 5: building a merged session = a copy of the base weights + W′ = W + ΔW for every module
 * (one ONNX Runtime Gemm per module, in place in the copy) + a new session from the same
 * graph with the new weights (externalData). The ΔW figure is compared with the same backend
 * running the same GEMMs ([in, R]·[R, out] per module) as bare MatMuls, interleaved.
 */
export const mergeCost: BenchCase = {
  id: "5",
  title: "merge cost",
  async run(ctx) {
    const model = await loadBenchModel(ctx.modelId);
    const backend = await loadBackend("node");
    const session = await backend.createSession(matmulGraph(), benchSessionOptions());
    try {
      const mix = randomMix(model.manifest, [8, 16, 32], 505);
      const modules = [...mix.modules.values()];
      const flops = modules.reduce((s, m) => s + 2 * m.rank * m.inFeatures * m.outFeatures, 0);
      const copies: number[] = [];
      const deltas: number[] = [];
      const sessions: number[] = [];
      ctx.progress(`${modules.length} modules, total rank ${mix.maxRank}: merged build vs bare MatMuls, interleaved`);
      const result = await interleave(
        {
          merged: async () => {
            const merged = await model.createMerged(mix);
            copies.push(merged.buildMs.copy);
            deltas.push(merged.buildMs.delta);
            sessions.push(merged.buildMs.session);
            await merged.dispose();
            return merged.buildMs.delta;
          },
          matmul: async () => {
            const t0 = performance.now();
            for (const m of modules) {
              await session.run({
                a: float32(m.at, [m.inFeatures, m.rank]),
                b: float32(m.bt, [m.rank, m.outFeatures]),
              });
            }
            return performance.now() - t0;
          },
        },
        ctx,
      );
      const measured = (v: number[]) => v.slice(-result.merged.samples.length);
      const efficiency = pairedRatio(result.matmul.samples, result.merged.samples);
      const deltaGflops = flops / 1e6 / result.merged.stats.median;
      const matmulGflops = flops / 1e6 / result.matmul.stats.median;
      const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
      return {
        figures: [
          figure("copy of the base weights", median(measured(copies)), "ms", { note: "the merged session's own weights buffer (ORT then overwrites the merged targets in it)" }),
          figure("ΔW compute", median(measured(deltas)), "ms", { note: "per module one Gemm W′ = at·bt + W in place in the copy (W read from it, W′ written over it)" }),
          figure("session creation", median(measured(sessions)), "ms"),
          figure("ΔW GFLOP/s", deltaGflops, "GFLOP/s"),
          figure("bare MatMul GFLOP/s (same GEMMs)", matmulGflops, "GFLOP/s"),
          figure("ΔW ÷ bare MatMul speed", efficiency.median * 100, "%", {
            stats: { ...efficiency, median: efficiency.median * 100, iqr: efficiency.iqr * 100, min: efficiency.min * 100, max: efficiency.max * 100 },
            goal: { op: ">=", target: 75 },
            note: "beyond the bare MatMul: one read of W (Gemm's C) per module; no ΔW temporary, no copies in or out of ORT",
          }),
        ],
      };
    } finally {
      await session.release();
      await model.dispose();
    }
  },
};
