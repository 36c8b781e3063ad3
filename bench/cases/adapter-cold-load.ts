import { allFiniteInPlace, allFiniteStreamed, allocateKernelBytes, composeMix, halvesAllFiniteStreamed, KERNEL_MIN_BYTES, loadPeftAdapter, readSafetensors, simdKernelsAvailable, writePeftAdapter } from "#core/index";
import type { LoraAdapter, LoraFactor } from "#core/index";
import { joinChunks, parseAdapter, safetensorsTarget } from "../../gpu-runner/src/adapters/index.js";
import { float32, loadBackend } from "../../gpu-runner/src/backend/index.js";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { DataType, GraphBuilder } from "../../gpu-runner/src/onnx/index.js";
import { readModelDir } from "../../gpu-runner/src/model/index.js";
import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { benchSessionOptions, randomAdapter } from "../lib/workload.js";

/** Ceiling for a pass over `words`: a bare JS loop that reads every 32-bit word (OR-reduced). */
function readEveryWord(words: Int32Array): number {
  let acc = 0;
  for (let i = 0; i < words.length; i++) acc |= words[i];
  return acc;
}

/** One-node graphs: ONNX Runtime's own native speed over the same bytes (read in place, 2 threads). */
function reduceSumGraph(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input("x", DataType.FLOAT, ["n"]); // [n] the file's F32 values
  g.node("ReduceSum", [x], { keepdims: 0 }, { output: "s" }); // [] finite ⇔ every value finite, barring overflow
  g.output("s", DataType.FLOAT, []);
  return g.encode("bench-reduce-sum");
}

/** `n` uninitialized floats in a buffer of their own (`Buffer.allocUnsafeSlow`), as the previous runner's parse took them. */
const uninitialized = (n: number) => new Float32Array(Buffer.allocUnsafeSlow(4 * n).buffer, 0, n);

/**
 * The runner's F16 load before it kept halves (for the end-to-end comparison), both of its cases: the
 * same loader converting every tensor to F32 into new uninitialized arrays (a cache not yet full), or
 * into arrays kept across loads and handed out in the same order (a full cache's steady state: each
 * parse wrote into the arrays of the adapter its insert evicted, via its FloatBufferPool).
 */
const convertingParse = (configJson: string, bytes: Uint8Array) => loadPeftAdapter(configJson, bytes, { alloc: uninitialized });
function recyclingConvertingParse() {
  const arrays: Float32Array[] = [];
  let next = 0;
  const alloc = (n: number) => {
    const kept = arrays[next];
    const array = kept?.length === n ? kept : (arrays[next] = uninitialized(n));
    next++;
    return array;
  };
  return (configJson: string, bytes: Uint8Array) => {
    next = 0;
    return loadPeftAdapter(configJson, bytes, { alloc });
  };
}

/** A file as the network delivers it to the runner: 64 KiB chunks (undici's usual read size). */
const chunksOf = (bytes: Uint8Array) => Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.slice(i * 65536, (i + 1) * 65536));

/**
 * Case 6: the runner's cold path for an adapter it has not cached: the body's chunks → the buffer the
 * runner receives them into (`gpu-runner/src/adapters/receive-bytes.ts`) → parsed and validated header
 * → the tensors checked for NaN/Inf and shapes → a LoraAdapter → composed with another adapter into
 * the runner's At/Bt layout.
 * The runner receives a blob into a plain buffer (`edge-source.ts`) and parses it with `parseAdapter`
 * (`gpu-runner/src/adapters/parse-adapter.ts`), which converts nothing: F32 tensors are zero-copy views
 * checked by the SIMD scan streamed through a 64 KiB scratch Memory; F16 tensors stay 16-bit views of
 * the bytes (`HalfFactor`), checked by the halves scan the same way, and `composeMix` widens them as it
 * stages each factor for its transposes. The F16 goal times that load; beside it, the halves scan alone
 * and, since the widening moved into composition, the whole cold path end to end: load + compose with
 * a rank-8 adapter, halves kept ÷ the previous runner's way (every tensor converted to F32 at load) in
 * both its cases — into new uninitialized arrays (cold) and into arrays recycled across loads (a full
 * cache) — and composition alone from halves ÷ from the same values loaded as F32.
 * The F32 goal times `parseAdapter` on the blob. Beside it the alternative placement (`safetensorsTarget`): the blob received into a
 * WebAssembly Memory of its own, F32 scanned in place, an all-F16 file received after a lead of ≈ its
 * data size and widened to F32 in place (`core/src/safetensors/widen-in-place.ts`; each repetition
 * on bytes received afresh, the receive not timed), with the receive step both ways and receive +
 * load end to end both ways (per round), so a faster load bought with a dearer receive shows.
 * Ceilings in the same rounds: a memcpy of the file, a bare JS loop over every 32-bit word, the SIMD
 * scan kernel alone in place, and for the in-place alternative a fresh Memory of the lead's size
 * written once (the pages the widening writes that the receive did not). And ONNX Runtime's own native
 * code over the same bytes, read in place (a one-node graph, 2 threads): a ReduceSum of the F32 values
 * (one read of each, the check's work).
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
    const f32Chunks = chunksOf(f32.safetensors);
    const f16Chunks = chunksOf(f16.safetensors);
    // As the runner parses them (AdapterCache: the config as received, JSON text).
    const f32ConfigJson = JSON.stringify(f32.config);
    const f16ConfigJson = JSON.stringify(f16.config);
    // The halves scan alone: every tensor's bits as the load's views see them.
    const f16Tensors = [...readSafetensors(f16.safetensors).tensors.values()].map((t) => new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 2));
    /** The runner's receive (edge-source.ts: a plain buffer) and the alternative into a kernel Memory. */
    const receivePlain = (chunks: Uint8Array[], n: number) => joinChunks(chunks, n);
    const receive = (chunks: Uint8Array[], n: number) => joinChunks(chunks, n, safetensorsTarget);
    const f32Received = receive(f32Chunks, f32.safetensors.length);
    // The tensor data sections (8-byte aligned by the writer) as the bare loops see them.
    const dataOf = (bytes: Uint8Array) => {
      const headerLen = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
      return bytes.subarray(8 + headerLen);
    };
    const f32Data = dataOf(f32Received);
    const f16Data = dataOf(f16.safetensors);
    const f32Values = new Float32Array(f32Data.buffer, f32Data.byteOffset, f32Data.byteLength / 4);
    const f16Probe = receive(f16Chunks, f16.safetensors.length);
    const leadBytes = f16Probe.byteOffset;
    const placed = simdKernelsAvailable() && f16.safetensors.length >= KERNEL_MIN_BYTES; // a quick run's files are under it: plain buffers, the JS paths
    if (placed && (allFiniteInPlace(f32Values) === null || leadBytes === 0)) throw new Error("the runner's receive did not place the files for the kernels: the figures would measure the JS paths");
    const f32Words = new Int32Array(f32Data.buffer, f32Data.byteOffset, f32Data.byteLength / 4);
    const f32PlainData = dataOf(f32.safetensors);
    const f32PlainValues = new Float32Array(f32PlainData.buffer, f32PlainData.byteOffset, f32PlainData.byteLength / 4);
    const copyTarget = new Uint8Array(f32.safetensors.length);
    // ONNX Runtime over the same bytes: its input is the JS array in place (no copy), its output preallocated.
    // Its pool threads do not spin after a run: they would take the second core from the next variant.
    const backend = await loadBackend("node");
    const reduceSum = await backend.createSession(reduceSumGraph(), { ...benchSessionOptions(), spinning: false });
    const reduceOut = new Float32Array(1);
    const timedAsync = (fn: () => Promise<unknown>) => async () => {
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) await fn();
      return (performance.now() - t0) / reps;
    };
    let sink = 0;
    const timed = (fn: () => unknown) => () => {
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) fn();
      return (performance.now() - t0) / reps;
    };
    /** The F16 load on bytes received afresh each time (the load widens them in place: one load per receive). */
    const loadF16Received = () => {
      let ms = 0;
      for (let r = 0; r < reps; r++) {
        const bytes = receive(f16Chunks, f16.safetensors.length);
        const t0 = performance.now();
        loadPeftAdapter(f16.config, bytes);
        ms += performance.now() - t0;
      }
      return ms / reps;
    };
    /** A cold adapter to its first composed mix: `parse` of the F16 file, then composed with the rank-8 adapter as the engine composes. */
    const coldToMix = (parse: (configJson: string, bytes: Uint8Array) => LoraAdapter<LoraFactor>) =>
      timed(() => {
        const loaded = parse(f16ConfigJson, f16.safetensors);
        sink ^= composeMix(
          [
            { adapter: loaded, weight: 0.7 },
            { adapter: other, weight: 0.3 },
          ],
          { bound: 1e4 },
        ).maxRank;
      });
    /** Composition alone, the adapter loaded before the rounds. */
    const composeOnly = (loaded: LoraAdapter<LoraFactor>) =>
      timed(() => {
        sink ^= composeMix(
          [
            { adapter: loaded, weight: 0.7 },
            { adapter: other, weight: 0.3 },
          ],
          { bound: 1e4 },
        ).maxRank;
      });
    const halvesLoaded = parseAdapter(f16ConfigJson, f16.safetensors);
    const convertedLoaded = convertingParse(f16ConfigJson, f16.safetensors);
    let result: Awaited<ReturnType<typeof measure>>;
    const measure = () =>
      interleave(
        {
          parse: timed(() => readSafetensors(f32Received)),
          loadF32: timed(() => loadPeftAdapter(f32.config, f32Received)),
          loadF32Plain: timed(() => parseAdapter(f32ConfigJson, f32.safetensors)),
          receiveF32: timed(() => (sink ^= receive(f32Chunks, f32.safetensors.length).length)),
          receiveF32Plain: timed(() => (sink ^= receivePlain(f32Chunks, f32.safetensors.length).length)),
          memcpy: timed(() => copyTarget.set(f32.safetensors)),
          scanKernel: timed(() => (sink ^= allFiniteInPlace(f32Values) ? 1 : 2)),
          scanStreamed: timed(() => (sink ^= allFiniteStreamed(f32PlainValues) ? 1 : 2)),
          readWords: timed(() => (sink ^= readEveryWord(f32Words))),
          ortReduceSum: timedAsync(() => reduceSum.runInto({ x: float32(f32PlainValues, [f32PlainValues.length]) }, { s: float32(reduceOut, []) })),
          loadHalves: timed(() => parseAdapter(f16ConfigJson, f16.safetensors)),
          scanHalves: timed(() => {
            for (const t of f16Tensors) sink ^= halvesAllFiniteStreamed(t, 0x7c00) ? 1 : 2;
          }),
          coldHalves: coldToMix(parseAdapter),
          coldConverted: coldToMix(convertingParse),
          coldConvertedRecycled: coldToMix(recyclingConvertingParse()),
          composeHalves: composeOnly(halvesLoaded),
          composeConverted: composeOnly(convertedLoaded),
          loadF16: loadF16Received,
          receiveF16: timed(() => (sink ^= receive(f16Chunks, f16.safetensors.length).length)),
          receiveF16Plain: timed(() => (sink ^= receivePlain(f16Chunks, f16.safetensors.length).length)),
          freshLead: timed(() => (sink ^= allocateKernelBytes(leadBytes, { minBytes: 0 }).fill(1).length)),
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
    try {
      result = await measure();
    } finally {
      await reduceSum.release();
    }
    if (sink === 0.5) ctx.progress("unreachable"); // keeps the bare loops' results alive
    const med = (k: keyof typeof result) => result[k].stats.median;
    type Key = keyof typeof result;
    /**
     * A load's GB/s with its goal, then each ceiling beside it: the per-round ratio of their speeds
     * (the ceiling's time scaled to the whole file ÷ the load's time) and the ceiling's own GB/s.
     */
    const againstCeilings = (
      load: { name: string; key: Key; fileBytes: number; goal?: number; note: string },
      ceilings: Array<{ name: string; key: Key; dataBytes: number; note: string; reference?: true }>,
    ) => [
      figure(load.name, gb(load.fileBytes, med(load.key)), "GB/s", { ...(load.goal === undefined ? {} : { goal: { op: ">=", target: load.goal } }), note: load.note }),
      ...ceilings.flatMap((ceiling) => {
        const ratio = pairedRatio(result[ceiling.key].samples.map((ms) => ms * (load.fileBytes / ceiling.dataBytes)), result[load.key].samples);
        return [
          figure(`${load.name.split(" (")[0]} ÷ ${ceiling.name}`, ratio.median, "×", { stats: ratio }),
          figure(`${ceiling.reference ? "reference" : "ceiling"}: ${ceiling.name}`, gb(ceiling.dataBytes, med(ceiling.key)), "GB/s", { note: ceiling.note }),
        ];
      }),
    ];
    const size = f32.safetensors.length;
    const sum = (a: number[], b: number[]) => a.map((x, i) => x + b[i]!);
    /**
     * Receive time Memory ÷ plain, then (when both loads do the same work) receive + load time the Memory
     * way ÷ the runner's (plain) way, per round.
     */
    const receiveAndEndToEnd = (dtype: string, keys: { receive: Key; receivePlain: Key; load?: Key; loadPlain?: Key }) => {
      const receive = pairedRatio(result[keys.receive].samples, result[keys.receivePlain].samples);
      const figures = [
        figure(`receive time ${dtype}: into a kernel Memory ÷ into a plain buffer`, receive.median, "×", {
          stats: receive,
          note: "a time ratio (> 1: the Memory is dearer): the 64 KiB chunks copied into a new buffer of each kind (receive-bytes.ts)",
        }),
      ];
      if (keys.load === undefined || keys.loadPlain === undefined) return figures;
      const endToEnd = pairedRatio(sum(result[keys.receive].samples, result[keys.load].samples), sum(result[keys.receivePlain].samples, result[keys.loadPlain].samples));
      return [
        ...figures,
        figure(`receive + load ${dtype} time: kernel Memory ÷ plain buffer`, endToEnd.median, "×", {
          stats: endToEnd,
          note: "per round; > 1: the in-place load does not pay for its receive, so the runner receives into plain buffers",
        }),
      ];
    };
    /** A time ratio per round with both medians in ms. */
    const timeRatio = (name: string, a: Key, b: Key, note: string) => {
      const ratio = pairedRatio(result[a].samples, result[b].samples);
      return figure(name, ratio.median, "×", { stats: ratio, note: `${note} (${med(a).toFixed(1)} vs ${med(b).toFixed(1)} ms, medians)` });
    };
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
            note: "as the runner receives a blob (a plain buffer): zero-copy views, the SIMD scan streamed through a 64 KiB scratch Memory",
          },
          [
            { name: "SIMD scan streamed alone over the data", key: "scanStreamed", dataBytes: f32Data.byteLength, note: "the load's own check by itself: 64 KiB chunks of the plain buffer copied through the scratch Memory and scanned" },
            { name: "SIMD scan kernel alone over the data", key: "scanKernel", dataBytes: f32Data.byteLength, note: "in place in a Memory: the one read of every value the check needs, nothing else" },
            { name: "bare JS loop reading every 32-bit word", key: "readWords", dataBytes: f32Data.byteLength, note: "V8's own speed for one pass over the values in JS (the scan before the streamed kernel)" },
            {
              name: "ONNX Runtime ReduceSum over the data (native, 2 threads)",
              key: "ortReduceSum",
              dataBytes: f32Data.byteLength,
              reference: true,
              note: "one-node graph fed the plain buffer's values in place (no copy): ORT's own speed for one read of every value, the work the check needs (a sum is finite iff every value is, barring overflow)",
            },
          ],
        ),
        figure("ceiling: memcpy of the file (Uint8Array.set)", gb(size, med("memcpy")), "GB/s"),
        figure("load F32 from bytes in a WebAssembly Memory (SIMD scan in place)", gb(size, med("loadF32")), "GB/s", {
          note: "the alternative placement (safetensorsTarget): no copy through the scratch, but see its receive below",
        }),
        ...receiveAndEndToEnd("F32", { receive: "receiveF32", receivePlain: "receiveF32Plain", load: "loadF32", loadPlain: "loadF32Plain" }),
        ...againstCeilings(
          {
            name: "load F16 (parse, views kept 16-bit, NaN/Inf/shape checks)",
            key: "loadHalves",
            fileBytes: f16.safetensors.length,
            goal: 4,
            note: "the runner's parse (parseAdapter, keepHalves) of the blob as received (a plain buffer): nothing converted or allocated per value; each tensor's halves checked by the SIMD scan streamed through the 64 KiB scratch; composeMix widens them later (see the end-to-end figures below)",
          },
          [
            {
              name: "SIMD halves scan streamed alone over the data",
              key: "scanHalves",
              dataBytes: f16Data.byteLength,
              note: "the load's own check by itself (halvesAllFiniteStreamed per tensor): 64 KiB chunks copied through the scratch Memory and scanned, 16-bit lanes",
            },
            { name: "memcpy of the F32 file", key: "memcpy", dataBytes: size, note: "one read and one write of every byte: the load reads each byte once and writes only the scratch" },
          ],
        ),
        timeRatio(
          "cold F16 adapter → first composed mix: halves kept ÷ converted at load into new arrays (time)",
          "coldHalves",
          "coldConverted",
          "per round, < 1: faster. Load + composeMix with the rank-8 adapter (bound-checked, as the engine composes): the runner's parse (halves widened by composition, in its workspace) against the previous runner's with a cache not yet full (every tensor converted to F32 at load into new uninitialized arrays, composition then reading F32)",
        ),
        timeRatio(
          "cold F16 adapter → first composed mix: halves kept ÷ converted at load into recycled arrays (time)",
          "coldHalves",
          "coldConvertedRecycled",
          "per round, < 1: faster. The same against the previous runner with a full cache (its steady state: every tensor converted into arrays kept across loads, as its pool handed out an evicted adapter's)",
        ),
        timeRatio(
          "composeMix from halves ÷ from the same values as F32 (time)",
          "composeHalves",
          "composeConverted",
          "per round, composition alone with the adapter loaded before the rounds: what widening in the workspace adds to (or saves on) each new mix of a cached F16 adapter",
        ),
        ...againstCeilings(
          {
            name: "load F16 widened in place (bytes received into a WebAssembly Memory)",
            key: "loadF16",
            fileBytes: f16.safetensors.length,
            note: "the alternative placement for an F32 load of an F16 file (safetensorsTarget, widen-in-place.ts): the kernel converts where the file lies, no output allocation, no copy; bytes received afresh for each load",
          },
          [
            {
              name: "fresh Memory pages of the lead written once",
              key: "freshLead",
              dataBytes: f16Data.byteLength,
              note: `a WebAssembly Memory of ${(leadBytes / 2 ** 20).toFixed(1)} MiB filled once: the pages the widened values need beyond the received file's (a Memory's pages are always fresh, never recycled like a freed heap buffer's)`,
            },
          ],
        ),
        // No receive + load end to end for F16: the in-place load widens to F32, the runner's converts nothing (unlike work).
        ...receiveAndEndToEnd("F16", { receive: "receiveF16", receivePlain: "receiveF16Plain" }),
        figure("compose with a rank-8 adapter", result.compose.stats.median, "ms", { stats: result.compose.stats }),
        figure("adapter size (F32)", size / 2 ** 20, "MiB"),
      ],
    };
  },
};
