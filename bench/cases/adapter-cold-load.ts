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
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const n = words.length & ~3;
  for (let i = 0; i < n; i += 4) {
    a |= words[i];
    b |= words[i + 1];
    c |= words[i + 2];
    d |= words[i + 3];
  }
  for (let i = n; i < words.length; i++) a |= words[i];
  return a | b | c | d;
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
    const size = f32.safetensors.length;
    const size16 = f16.safetensors.length;
    const med = (k: keyof typeof result) => result[k].stats.median;
    // Per-round speed ratios (time of the ceiling ÷ time of the load, bytes scaled to the same file).
    const f32VsWords = pairedRatio(result.readWords.samples.map((ms) => ms * (size / f32Data.byteLength)), result.loadF32.samples);
    const f16VsWiden = pairedRatio(result.widenHalves.samples.map((ms) => ms * (size16 / f16Data.byteLength)), result.loadF16.samples);
    return {
      figures: [
        figure("parse + validate header/offsets (F32)", gb(size, med("parse")), "GB/s", {
          goal: { op: ">=", target: 1 },
          note: "the tensor data is not touched: header JSON + offset checks only",
        }),
        figure("load F32 (parse, views, NaN/shape checks)", gb(size, med("loadF32")), "GB/s", {
          goal: { op: ">=", target: 10 },
          note: "zero-copy views; the NaN/Inf scan reads every value once, as fast as the bare word loop below",
        }),
        figure("load F32 ÷ bare JS loop reading every 32-bit word", f32VsWords.median, "×", { stats: f32VsWords }),
        figure("ceiling: bare JS loop reading every 32-bit word", gb(f32Data.byteLength, med("readWords")), "GB/s", {
          note: "V8's own speed for one pass over the values: what a per-value check can reach in JS",
        }),
        figure("ceiling: memcpy of the file (Uint8Array.set)", gb(size, med("memcpy")), "GB/s"),
        figure("load F16 (→ F32 conversion)", gb(size16, med("loadF16")), "GB/s", {
          goal: { op: ">=", target: 4 },
          note: "65 536-entry table of f32 bits into a fresh F32 array, then the NaN/Inf scan of the output",
        }),
        figure("load F16 ÷ bare JS loop widening every half into a fresh array", f16VsWiden.median, "×", { stats: f16VsWiden }),
        figure("ceiling: bare JS loop u16 → u32 into a fresh array", gb(f16Data.byteLength, med("widenHalves")), "GB/s", {
          note: "no table, no checks: a shift per value plus the output's allocation (fresh pages)",
        }),
        figure("compose with a rank-8 adapter", result.compose.stats.median, "ms", { stats: result.compose.stats }),
        figure("adapter size (F32)", size / 2 ** 20, "MiB"),
      ],
    };
  },
};
