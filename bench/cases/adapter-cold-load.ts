import { composeMix, loadPeftAdapter, readSafetensors, writePeftAdapter } from "#core/index";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { readModelDir } from "../../gpu-runner/src/model/index.js";
import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { randomAdapter } from "../lib/workload.js";

/** Ceiling for a pass over `words`: a bare JS loop that reads every 32-bit word (OR-reduced). */
function readEveryWord(words: Int32Array): number {
  let acc = 0;
  for (let i = 0; i < words.length; i++) acc |= words[i];
  return acc;
}

/** Ceiling for widening 16-bit values: a bare loop u16 → u32 (x << 16, BF16's rule) into a fresh array, as a load allocates its output. */
function widenEveryHalf(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  const o = new Int32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) o[i] = halves[i] << 16;
  return out;
}

/**
 * Case 6: the runner's cold path for an adapter it has not cached: safetensors bytes → parsed and
 * validated header → F32 tensors (zero-copy views for aligned F32, a table conversion for F16) → a
 * LoraAdapter checked for NaN/Inf and shapes → composed with another adapter into the runner's
 * At/Bt layout. Beside each load, in the same rounds, its ceiling in this JS engine: a memcpy of the
 * same bytes (Uint8Array.set), a bare loop reading every 32-bit word of them (what any per-value check
 * must at least do), and a bare loop widening every 16-bit value into a fresh F32 array.
 * Each variant repeats `reps` times per round (JIT warm, timer granularity); the figure is the
 * median over rounds of the per-round mean.
 */
export const adapterColdLoad: BenchCase = {
  id: "6",
  title: "adapter cold load",
  async run(ctx) {
    const { manifest } = await readModelDir(await ensureModel(ctx.modelId));
    const rank = ctx.quick ? 16 : 64;
    const reps = ctx.quick ? 2 : 5;
    const adapter = randomAdapter(manifest, rank, 606);
    const f32 = writePeftAdapter(adapter, { dtype: "F32" });
    const f16 = writePeftAdapter(adapter, { dtype: "F16" });
    const other = randomAdapter(manifest, 8, 607);
    const gb = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1000);
    ctx.progress(
      `rank ${rank} on ${adapter.modules.size} modules: F32 ${(f32.safetensors.length / 2 ** 20).toFixed(1)} MiB, F16 ${(f16.safetensors.length / 2 ** 20).toFixed(1)} MiB`,
    );
    // The tensor data sections (8-byte aligned by the writer) as the bare loops see them.
    const dataOf = (bytes: Uint8Array) => {
      const headerLen = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
      return bytes.subarray(8 + headerLen);
    };
    const f32Data = dataOf(f32.safetensors);
    const f16Data = dataOf(f16.safetensors);
    const f32Words = new Int32Array(f32Data.buffer, f32Data.byteOffset, f32Data.byteLength / 4);
    const f16Halves = new Uint16Array(f16Data.buffer, f16Data.byteOffset, f16Data.byteLength / 2);
    const copyTarget = new Uint8Array(f32.safetensors.length);
    let sink = 0;
    const timed = (fn: () => unknown) => () => {
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) fn();
      return (performance.now() - t0) / reps;
    };
    const result = await interleave(
      {
        parse: timed(() => readSafetensors(f32.safetensors)),
        loadF32: timed(() => loadPeftAdapter(f32.config, f32.safetensors)),
        loadF16: timed(() => loadPeftAdapter(f16.config, f16.safetensors)),
        memcpy: timed(() => copyTarget.set(f32.safetensors)),
        readWords: timed(() => (sink ^= readEveryWord(f32Words))),
        widenHalves: timed(() => (sink ^= widenEveryHalf(f16Halves).length)),
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
    if (sink === 0.5) ctx.progress("unreachable"); // keeps the bare loops' results alive
    const med = (k: keyof typeof result) => result[k].stats.median;
    /**
     * A load's GB/s with its goal, then the bare loop beside it: the per-round ratio of their speeds
     * (ceiling's time scaled to the whole file ÷ the load's time) and the ceiling's own GB/s.
     */
    const againstCeiling = (
      load: { name: string; key: "loadF32" | "loadF16"; fileBytes: number; goal: number; note: string },
      ceiling: { name: string; key: "readWords" | "widenHalves"; dataBytes: number; note: string },
    ) => {
      const ratio = pairedRatio(result[ceiling.key].samples.map((ms) => ms * (load.fileBytes / ceiling.dataBytes)), result[load.key].samples);
      return [
        figure(load.name, gb(load.fileBytes, med(load.key)), "GB/s", { goal: { op: ">=", target: load.goal }, note: load.note }),
        figure(`${load.name.split(" (")[0]} ÷ ${ceiling.name}`, ratio.median, "×", { stats: ratio }),
        figure(`ceiling: ${ceiling.name}`, gb(ceiling.dataBytes, med(ceiling.key)), "GB/s", { note: ceiling.note }),
      ];
    };
    const size = f32.safetensors.length;
    return {
      figures: [
        figure("parse + validate header/offsets (F32)", gb(size, med("parse")), "GB/s", {
          goal: { op: ">=", target: 1 },
          note: "the tensor data is not touched: header JSON + offset checks only",
        }),
        ...againstCeiling(
          { name: "load F32 (parse, views, NaN/shape checks)", key: "loadF32", fileBytes: size, goal: 10, note: "zero-copy views; the NaN/Inf scan reads every value once" },
          { name: "bare JS loop reading every 32-bit word", key: "readWords", dataBytes: f32Data.byteLength, note: "V8's own speed for one pass over the values: what any per-value check reaches in JS" },
        ),
        figure("ceiling: memcpy of the file (Uint8Array.set)", gb(size, med("memcpy")), "GB/s"),
        ...againstCeiling(
          { name: "load F16 (→ F32 conversion)", key: "loadF16", fileBytes: f16.safetensors.length, goal: 4, note: "65 536-entry table of f32 bits into a fresh F32 array, then the NaN/Inf scan of the output" },
          { name: "bare JS loop u16 → u32 into a fresh array", key: "widenHalves", dataBytes: f16Data.byteLength, note: "no table, no checks: a shift per value plus the output's allocation (fresh pages)" },
        ),
        figure("compose with a rank-8 adapter", result.compose.stats.median, "ms", { stats: result.compose.stats }),
        figure("adapter size (F32)", size / 2 ** 20, "MiB"),
      ],
    };
  },
};
