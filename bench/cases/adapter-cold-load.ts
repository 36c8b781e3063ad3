import { composeMix, loadPeftAdapter, readSafetensors, writePeftAdapter } from "#core/index";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { readModelDir } from "../../gpu-runner/src/model/index.js";
import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { randomAdapter } from "../lib/workload.js";

/**
 * Case 6: the runner's cold path for an adapter it has not cached: safetensors bytes → parsed and
 * validated header → F32 tensors (zero-copy for aligned F32, converted for F16) → a LoraAdapter
 * checked for NaN/Inf and shapes → composed with another adapter into the runner's At/Bt layout.
 */
export const adapterColdLoad: BenchCase = {
  id: "6",
  title: "adapter cold load",
  async run(ctx) {
    const { manifest } = await readModelDir(await ensureModel(ctx.modelId));
    const rank = ctx.quick ? 16 : 64;
    const adapter = randomAdapter(manifest, rank, 606);
    const f32 = writePeftAdapter(adapter, { dtype: "F32" });
    const f16 = writePeftAdapter(adapter, { dtype: "F16" });
    const other = randomAdapter(manifest, 8, 607);
    const gb = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1000);
    ctx.progress(
      `rank ${rank} on ${adapter.modules.size} modules: F32 ${(f32.safetensors.length / 2 ** 20).toFixed(1)} MiB, F16 ${(f16.safetensors.length / 2 ** 20).toFixed(1)} MiB`,
    );
    const result = await interleave(
      {
        parse: () => {
          const t0 = performance.now();
          readSafetensors(f32.safetensors);
          return performance.now() - t0;
        },
        loadF32: () => {
          const t0 = performance.now();
          loadPeftAdapter(f32.config, f32.safetensors);
          return performance.now() - t0;
        },
        loadF16: () => {
          const t0 = performance.now();
          loadPeftAdapter(f16.config, f16.safetensors);
          return performance.now() - t0;
        },
        compose: () => {
          const loaded = loadPeftAdapter(f32.config, f32.safetensors);
          const t0 = performance.now();
          composeMix([
            { adapter: loaded, weight: 0.7 },
            { adapter: other, weight: 0.3 },
          ]);
          return performance.now() - t0;
        },
      },
      { warmup: ctx.warmup, rounds: Math.max(ctx.rounds, 5) },
    );
    const size = f32.safetensors.length;
    return {
      figures: [
        figure("parse + validate header/offsets (F32)", gb(size, result.parse.stats.median), "GB/s", {
          goal: { op: ">=", target: 1 },
          note: "header JSON parse dominates for small files",
        }),
        figure("load F32 (parse, views, NaN/shape checks)", gb(size, result.loadF32.stats.median), "GB/s", {
          goal: { op: ">=", target: 10 },
          note: "the NaN/Inf scan touches every value once",
        }),
        figure("load F16 (→ F32 conversion)", gb(f16.safetensors.length, result.loadF16.stats.median), "GB/s", { goal: { op: ">=", target: 4 } }),
        figure("compose with a rank-8 adapter", result.compose.stats.median, "ms", { stats: result.compose.stats }),
        figure("adapter size (F32)", size / 2 ** 20, "MiB"),
      ],
    };
  },
};
