import { allFiniteInPlace, allocateKernelBytes, composeMix, f16BitsToF32Bits, f16ToF32Simd, loadPeftAdapter, readSafetensors, simdKernelsAvailable, writePeftAdapter } from "#core/index";
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

/**
 * Case 6: the runner's cold path for an adapter it has not cached: safetensors bytes → parsed and
 * validated header → F32 tensors → a LoraAdapter checked for NaN/Inf and shapes → composed with
 * another adapter into the runner's At/Bt layout.
 * The runner receives a blob into a plain buffer (`gpu-runner/src/adapters/edge-source.ts`): aligned
 * F32 tensors are zero-copy views checked by the JS scan; F16 converts through the SIMD kernel with
 * the check in the same pass, into a fresh F32 array (the adapter's own memory). The goal figures
 * measure that path. Beside it, the SIMD alternative for F32: the bytes received into a WebAssembly
 * Memory of their own (`allocateKernelBytes`) and scanned in place, and the receive step itself
 * (fresh buffer + copy of the body) for both placements, so the end-to-end comparison (receive +
 * load) shows whether the faster scan pays for the dearer receive — it did not on this machine
 * (2026-11-30: 2.3× the receive time), which is why the runner stays on plain buffers.
 * Ceilings in the same rounds: a memcpy of the file, a bare JS loop over every 32-bit word, the SIMD
 * scan kernel alone; for F16 the kernel alone into memory already touched and a fresh F32 array of
 * the output's size written once (allocation + first touch of fresh pages).
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
      `rank ${rank} on ${adapter.modules.size} modules: F32 ${(f32.safetensors.length / 2 ** 20).toFixed(1)} MiB, F16 ${(f16.safetensors.length / 2 ** 20).toFixed(1)} MiB; SIMD kernels ${simdKernelsAvailable() ? "on" : "unavailable"}`,
    );
    /** The file as the runner receives it. */
    const received = (bytes: Uint8Array) => {
      const into = allocateKernelBytes(bytes.length, 0); // as the runner receives every file ≥ KERNEL_MIN_BYTES (this one: 48 MiB in a full run)
      into.set(bytes);
      return into;
    };
    const f32Received = received(f32.safetensors);
    const f16Received = received(f16.safetensors);
    // The tensor data sections (8-byte aligned by the writer) as the bare loops see them.
    const dataOf = (bytes: Uint8Array) => {
      const headerLen = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
      return bytes.subarray(8 + headerLen);
    };
    const f32Data = dataOf(f32Received);
    const f16Data = dataOf(f16Received);
    const f32Values = new Float32Array(f32Data.buffer, f32Data.byteOffset, f32Data.byteLength / 4);
    if (simdKernelsAvailable() && allFiniteInPlace(f32Values) === null) throw new Error("the received bytes are not in a kernel Memory: the F32 figures would measure the JS path");
    const f32Words = new Int32Array(f32Data.buffer, f32Data.byteOffset, f32Data.byteLength / 4);
    const f16Halves = new Uint16Array(f16Data.buffer, f16Data.byteOffset, f16Data.byteLength / 2);
    const warmOutput = new Float32Array(f16Halves.length).fill(1); // touched once, reused every round
    const copyTarget = new Uint8Array(f32.safetensors.length);
    const f16Table = (h: number) => f16BitsToF32Bits(h);
    let sink = 0;
    const timed = (fn: () => unknown) => () => {
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) fn();
      return (performance.now() - t0) / reps;
    };
    const result = await interleave(
      {
        parse: timed(() => readSafetensors(f32Received)),
        loadF32: timed(() => loadPeftAdapter(f32.config, f32Received)),
        loadF32Plain: timed(() => loadPeftAdapter(f32.config, f32.safetensors)),
        loadF16: timed(() => loadPeftAdapter(f16.config, f16.safetensors)),
        memcpy: timed(() => copyTarget.set(f32.safetensors)),
        scanKernel: timed(() => (sink ^= allFiniteInPlace(f32Values) ? 1 : 2)),
        readWords: timed(() => (sink ^= readEveryWord(f32Words))),
        convertKernelWarm: timed(() => (sink ^= f16ToF32Simd(f16Halves, warmOutput, f16Table) ? 1 : 2)),
        freshOutput: timed(() => (sink ^= new Float32Array(f16Halves.length).fill(1).length)),
        receiveKernel: timed(() => (sink ^= received(f32.safetensors).length)),
        receivePlain: timed(() => (sink ^= new Uint8Array(f32.safetensors.length).set(f32.safetensors) ?? 1)),
        compose: () => {
          const loaded = loadPeftAdapter(f32.config, f32Received);
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
    type Key = keyof typeof result;
    /**
     * A load's GB/s with its goal, then each ceiling beside it: the per-round ratio of their speeds
     * (the ceiling's time scaled to the whole file ÷ the load's time) and the ceiling's own GB/s.
     */
    const againstCeilings = (
      load: { name: string; key: Key; fileBytes: number; goal?: number; note: string },
      ceilings: Array<{ name: string; key: Key; dataBytes: number; note: string }>,
    ) => [
      figure(load.name, gb(load.fileBytes, med(load.key)), "GB/s", { ...(load.goal === undefined ? {} : { goal: { op: ">=", target: load.goal } }), note: load.note }),
      ...ceilings.flatMap((ceiling) => {
        const ratio = pairedRatio(result[ceiling.key].samples.map((ms) => ms * (load.fileBytes / ceiling.dataBytes)), result[load.key].samples);
        return [
          figure(`${load.name.split(" (")[0]} ÷ ${ceiling.name}`, ratio.median, "×", { stats: ratio }),
          figure(`ceiling: ${ceiling.name}`, gb(ceiling.dataBytes, med(ceiling.key)), "GB/s", { note: ceiling.note }),
        ];
      }),
    ];
    const size = f32.safetensors.length;
    const receiveRatio = pairedRatio(result.receiveKernel.samples, result.receivePlain.samples);
    const sum = (a: number[], b: number[]) => a.map((x, i) => x + b[i]!);
    const endToEnd = pairedRatio(sum(result.receiveKernel.samples, result.loadF32.samples), sum(result.receivePlain.samples, result.loadF32Plain.samples));
    return {
      figures: [
        figure("parse + validate header/offsets (F32)", gb(size, med("parse")), "GB/s", {
          goal: { op: ">=", target: 1 },
          note: "the tensor data is not touched: header JSON + offset checks only",
        }),
        ...againstCeilings(
          {
            name: "load F32 (parse, views, NaN/shape checks)",
            key: "loadF32Plain",
            fileBytes: size,
            goal: 10,
            note: "as the runner receives a blob (a plain buffer): zero-copy views, the JS NaN/Inf scan reading words in pairs",
          },
          [{ name: "bare JS loop reading every 32-bit word", key: "readWords", dataBytes: f32Data.byteLength, note: "V8's own speed for one pass over the values in JS" }],
        ),
        figure("ceiling: memcpy of the file (Uint8Array.set)", gb(size, med("memcpy")), "GB/s"),
        ...againstCeilings(
          {
            name: "load F32 from bytes in a WebAssembly Memory (SIMD scan in place)",
            key: "loadF32",
            fileBytes: size,
            note: "the alternative: only if its receive step costs no more (next rows)",
          },
          [{ name: "SIMD scan kernel alone over the data", key: "scanKernel", dataBytes: f32Data.byteLength, note: "the one read of every value the check needs, nothing else" }],
        ),
        figure("receive time: into a kernel Memory ÷ into an ArrayBuffer (fresh + copy)", receiveRatio.median, "×", {
          stats: receiveRatio,
          note: "a time ratio (> 1: the Memory is dearer); the step before the load (edge-source.ts)",
        }),
        figure("receive + load F32 time: kernel Memory ÷ plain buffer", endToEnd.median, "×", {
          stats: endToEnd,
          note: "per round; > 1 means the SIMD scan does not pay for its receive step, so the runner receives into plain buffers",
        }),
        ...againstCeilings(
          {
            name: "load F16 (→ F32 conversion)",
            key: "loadF16",
            fileBytes: f16.safetensors.length,
            goal: 4,
            note: "SIMD kernel: 8 values per step, NaN/Inf check in the same pass, into a fresh F32 array per tensor",
          },
          [
            {
              name: "fresh F32 output written once",
              key: "freshOutput",
              dataBytes: f16Data.byteLength,
              note: "new Float32Array(n).fill: allocation + first touch of fresh pages, the floor of any F16 load that returns its own F32 memory",
            },
            { name: "SIMD conversion alone into warm memory", key: "convertKernelWarm", dataBytes: f16Data.byteLength, note: "the same kernel into an output touched before: what the conversion itself costs" },
          ],
        ),
        figure("compose with a rank-8 adapter", result.compose.stats.median, "ms", { stats: result.compose.stats }),
        figure("adapter size (F32)", size / 2 ** 20, "MiB"),
      ],
    };
  },
};
