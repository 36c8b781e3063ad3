import { PerformanceObserver } from "node:perf_hooks";
import { allFiniteInPlace, allFiniteStreamed, allocateKernelBytes, composeMix, f16BitsToF32Bits, f16ToF32InMemory, f16ToF32Simd, KERNEL_MIN_BYTES, loadPeftAdapter, readSafetensors, simdKernelsAvailable, writePeftAdapter } from "#core/index";
import { AdapterCache, adapterBytes, joinChunks, parseAdapter, safetensorsTarget, sha256Hex, uninitializedFloat32 } from "../../gpu-runner/src/adapters/index.js";
import { float16, float32, loadBackend } from "../../gpu-runner/src/backend/index.js";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { DataType, GraphBuilder } from "../../gpu-runner/src/onnx/index.js";
import { readModelDir } from "../../gpu-runner/src/model/index.js";
import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { pairedRatio, summarize } from "../lib/stats.js";
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
function castGraph(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input("x", DataType.FLOAT16, ["n"]); // [n] the file's halves
  g.node("Cast", [x], { to: DataType.FLOAT }, { output: "y" }); // [n] F32
  g.output("y", DataType.FLOAT, ["n"]);
  return g.encode("bench-cast-f16");
}

/** A file as the network delivers it to the runner: 64 KiB chunks (undici's usual read size). */
const chunksOf = (bytes: Uint8Array) => Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.slice(i * 65536, (i + 1) * 65536));

/**
 * Case 6: the runner's cold path for an adapter it has not cached: the body's chunks → the buffer the
 * runner receives them into (`gpu-runner/src/adapters/receive-bytes.ts`) → parsed and validated header
 * → F32 tensors → a LoraAdapter checked for NaN/Inf and shapes → composed with another adapter into
 * the runner's At/Bt layout.
 * The runner receives a blob into a plain buffer (`edge-source.ts`) and parses it with `parseAdapter`
 * (`gpu-runner/src/adapters/parse-adapter.ts`): F32 tensors are zero-copy views checked by the SIMD
 * scan streamed through a 64 KiB scratch Memory; F16 converts through the same scratch, the check in
 * the same pass, into the arrays the adapter cache hands out: an evicted adapter's (recycled), else
 * uninitialized memory (`Buffer.allocUnsafeSlow`, each tensor its own buffer). The F16 goal times the
 * COLD parse (`parseAdapter` with nothing to recycle: a cache not yet full, new output arrays — the
 * worse of cold and recycled), against its limits measured in the same rounds, each with the
 * per-round ratio (X GB/s of F16 writes 2X of F32: every limit is in F16 bytes): the streamed
 * conversion alone into recycled arrays (the placement's data work, no allocation); new output
 * arrays written once, dropped at once and held as the parse holds them (the allocation's own cost:
 * held arrays outlive scavenges and cost external-memory GCs); and output pages new to the process
 * (a WebAssembly Memory, mapped anew each time) written once: the first-touch limit. The minor page
 * faults of each (process.resourceUsage) show which memory is first touched: glibc recycles the heap
 * the parse allocates from (the runner's allocator never trims it), so the cold parse pays none; the
 * GC pauses that start during each show what holding new external arrays costs instead.
 * Beside it, without a goal, the recycled steady state: the parse inside a real `AdapterCache`
 * turning over (a budget of one adapter, each load a new id: its insert evicts the previous adapter,
 * whose arrays the next parse writes into — a runner whose cache is full), with its own ceilings.
 * The F32 goal times `parseAdapter` on the blob. Beside it the alternative placement (`safetensorsTarget`): the blob received into a
 * WebAssembly Memory of its own, F32 scanned in place, an all-F16 file received after a lead of ≈ its
 * data size and widened to F32 in place (`core/src/safetensors/widen-in-place.ts`; each repetition
 * on bytes received afresh, the receive not timed), with the receive step both ways and receive +
 * load end to end both ways (per round), so a faster load bought with a dearer receive shows.
 * Ceilings in the same rounds: a memcpy of the file, a bare JS loop over every 32-bit word, the SIMD
 * scan kernel alone in place; for F16 the conversion kernel alone (inside a Memory already touched),
 * the streamed conversion alone and the F32 output written once into recycled arrays (the floors of
 * the cache's path), the cold parse's limits above, and for the in-place alternative a fresh
 * Memory of the lead's size written once (the pages the widening writes that the receive did not).
 * And ONNX Runtime's own native code over the same bytes, read in place (one-node graphs, 2 threads): a
 * ReduceSum of the F32 values (one read of each, the check's work) and a Cast of the halves to F32.
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
    const f16TensorLengths = [...readSafetensors(f16.safetensors).tensors.values()].map((t) => t.data.byteLength / 2);
    const recycledOutputs = f16TensorLengths.map((n) => new Float32Array(n));
    // The load's data work alone: each tensor's halves streamed by the kernel into arrays kept across rounds.
    const f16Tensors = [...readSafetensors(f16.safetensors).tensors.values()].map((t) => new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 2));
    const streamedOutputs = f16Tensors.map((t) => new Float32Array(t.length));
    /** A runner's adapter cache turning over: budget one adapter, the parse timed inside it. */
    let parseMs = 0;
    const turningOver = new AdapterCache(
      { fetchAdapter: async () => ({ configJson: f16ConfigJson, safetensors: f16.safetensors, announcedSha256: null }) },
      {
        budgetBytes: adapterBytes(adapter),
        parse: (configJson, bytes, alloc) => {
          const t0 = performance.now();
          const parsed = parseAdapter(configJson, bytes, alloc);
          parseMs += performance.now() - t0;
          return parsed;
        },
      },
    );
    const f16Sha = sha256Hex(f16.safetensors);
    let nextId = 0;
    // Two loads before anything else: the first two parses find nothing to recycle and take fresh
    // arrays; from the third on, arrays circulate.
    for (let i = 0; i < 2; i++) (await turningOver.acquire(`adapter-${nextId++}`, f16Sha)).release();
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
    // The conversion kernel alone: halves and output apart in one Memory, both touched before.
    const halves = f16Data.byteLength / 2;
    const warm = allocateKernelBytes(6 * halves + 64, { minBytes: 0 }).fill(1);
    warm.set(f16Data, 4 * halves);
    const copyTarget = new Uint8Array(f32.safetensors.length);
    // ONNX Runtime over the same bytes: its inputs are the JS arrays in place (no copy), its output preallocated.
    // Its pool threads do not spin after a run: they would take the second core from the next variant.
    const backend = await loadBackend("node");
    const reduceSum = await backend.createSession(reduceSumGraph(), { ...benchSessionOptions(), spinning: false });
    const cast = await backend.createSession(castGraph(), { ...benchSessionOptions(), spinning: false });
    const reduceOut = new Float32Array(1);
    const f16Halves = new Uint16Array(f16Data.buffer, f16Data.byteOffset, halves); // [halves]
    const castOut = new Float32Array(halves); // [halves], touched once and kept across rounds
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
    /**
     * `timed`, also recording per round the minor page faults per repetition (the kernel's count of
     * pages this process touched for the first time: heap memory glibc recycled costs none) and the
     * round's time window, to which the garbage collector's pauses are attributed after the rounds.
     */
    const faultsPerRep: Record<string, number[]> = {};
    const windows: Record<string, Array<[number, number]>> = {};
    const timedWithCosts = (name: string, fn: () => unknown) => () => {
      const before = process.resourceUsage().minorPageFault;
      const t0 = performance.now();
      const ms = timed(fn)();
      (windows[name] ??= []).push([t0, performance.now()]);
      (faultsPerRep[name] ??= []).push((process.resourceUsage().minorPageFault - before) / reps);
      return ms;
    };
    const gcPauses: Array<[number, number]> = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcPauses.push([e.startTime, e.duration]);
    });
    gcObserver.observe({ entryTypes: ["gc"] });
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
    const measured = interleave(
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
        ortCast: timedAsync(() => cast.runInto({ x: float16(f16Halves, [halves]) }, { y: float32(castOut, [halves]) })),
        loadF16: loadF16Received,
        loadF16Plain: timedWithCosts("loadF16Plain", () => parseAdapter(f16ConfigJson, f16.safetensors, uninitializedFloat32)),
        loadF16Cached: async () => {
          parseMs = 0;
          for (let r = 0; r < reps; r++) (await turningOver.acquire(`adapter-${nextId++}`, f16Sha)).release();
          return parseMs / reps;
        },
        receiveF16: timed(() => (sink ^= receive(f16Chunks, f16.safetensors.length).length)),
        receiveF16Plain: timed(() => (sink ^= receivePlain(f16Chunks, f16.safetensors.length).length)),
        convertKernel: timed(() => (sink ^= f16ToF32InMemory(warm.buffer, 4 * halves, 0, halves, f16BitsToF32Bits) ? 1 : 2)),
        freshLead: timed(() => (sink ^= allocateKernelBytes(leadBytes, { minBytes: 0 }).fill(1).length)),
        freshOutput: timedWithCosts("freshOutput", () => {
          for (const n of f16TensorLengths) sink ^= uninitializedFloat32(n).fill(1).length;
        }),
        // As the parse holds them: every tensor's array alive until the whole adapter is written.
        freshOutputHeld: timedWithCosts("freshOutputHeld", () => {
          const held = f16TensorLengths.map((n) => uninitializedFloat32(n).fill(1));
          sink ^= held.length;
        }),
        // Pages the process never had: a WebAssembly Memory is mapped anew each time (never recycled).
        firstTouchOutput: timedWithCosts("firstTouchOutput", () => (sink ^= allocateKernelBytes(4 * halves, { minBytes: 0 }).fill(1).length)),
        streamedConversion: timed(() => {
          f16Tensors.forEach((t, i) => (sink ^= f16ToF32Simd(t, streamedOutputs[i]!, f16BitsToF32Bits) ? 1 : 2));
        }),
        recycledOutput: timed(() => {
          for (const out of recycledOutputs) sink ^= out.fill(1).length;
        }),
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
    // Disconnected however the rounds end: a variant that throws must not leave the observer collecting (interleave is
    // async: a throw rejects `measured`, awaited inside the try).
    let result: Awaited<typeof measured>;
    try {
      result = await measured;
      await new Promise((resolve) => setTimeout(resolve, 100)); // the observer's last entries
    } finally {
      gcObserver.disconnect();
      await reduceSum.release();
      await cast.release();
    }
    /** Per measured round: the GC pause ms that started inside the variant's window, per repetition. */
    const gcMsPerRep = (name: string) =>
      windows[name]!.slice(ctx.warmup).map(([from, to]) => gcPauses.reduce((ms, [at, duration]) => (at >= from && at < to ? ms + duration : ms), 0) / reps);
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
    /** Receive time Memory ÷ plain, then receive + load time the Memory way ÷ the runner's (plain) way, per round. */
    const receiveAndEndToEnd = (dtype: string, keys: { receive: Key; receivePlain: Key; load: Key; loadPlain: Key }) => {
      const receive = pairedRatio(result[keys.receive].samples, result[keys.receivePlain].samples);
      const endToEnd = pairedRatio(sum(result[keys.receive].samples, result[keys.load].samples), sum(result[keys.receivePlain].samples, result[keys.loadPlain].samples));
      return [
        figure(`receive time ${dtype}: into a kernel Memory ÷ into a plain buffer`, receive.median, "×", {
          stats: receive,
          note: "a time ratio (> 1: the Memory is dearer): the 64 KiB chunks copied into a new buffer of each kind (receive-bytes.ts)",
        }),
        figure(`receive + load ${dtype} time: kernel Memory ÷ plain buffer`, endToEnd.median, "×", {
          stats: endToEnd,
          note: "per round; > 1: the in-place load does not pay for its receive, so the runner receives into plain buffers",
        }),
      ];
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
            name: "load F16 (→ F32 conversion, cold: new output arrays)",
            key: "loadF16Plain",
            fileBytes: f16.safetensors.length,
            goal: 4,
            note: "the runner's parse (parseAdapter) with nothing to recycle (a cache not yet full, the worse case): each tensor by the SIMD kernel (16 values per step, NaN/Inf check in the same pass) through the 64 KiB scratch into a new uninitialized array (Buffer.allocUnsafeSlow: heap memory glibc recycles, no first touch — see its page faults)",
          },
          [
            {
              name: "streamed conversion alone (into recycled arrays)",
              key: "streamedConversion",
              dataBytes: f16Data.byteLength,
              note: "the load's own data work with no allocation at all (see the recycled load below): the floor of this placement, whatever the output memory costs",
            },
            {
              name: "new F32 output arrays written once (the parse's allocation)",
              key: "freshOutput",
              dataBytes: f16Data.byteLength,
              note: "uninitializedFloat32(n).fill per tensor, each array dropped at once: the load's own allocation and one write of every output value, nothing read. Not first-touch memory: glibc hands out heap it recycled (the runner's allocator never trims it), see its page faults below. In F16 bytes per second: X GB/s of halves write 2X of F32",
            },
            {
              name: "new F32 output arrays written once, held as the parse holds them",
              key: "freshOutputHeld",
              dataBytes: f16Data.byteLength,
              note: "the same arrays kept alive until the last is written, as the parse keeps an adapter's tensors: the allocation's own cost (external-memory GCs: the arrays outlive scavenges) with one write, no conversion",
            },
            {
              name: "first-touch F32 output written once (pages new to the process)",
              key: "firstTouchOutput",
              dataBytes: f16Data.byteLength,
              note: "a WebAssembly Memory of the output's size (mapped anew each time, never recycled) filled once: what a truly cold load pays for its output pages alone (a page fault per 4 KiB, see below): the physical limit of a load whose output memory the process never had",
            },
          ],
        ),
        ...(["loadF16Plain", "freshOutput", "freshOutputHeld", "firstTouchOutput"] as const).map((key) => {
          const perRep = summarize(faultsPerRep[key]!.slice(ctx.warmup));
          const whose = { loadF16Plain: "the cold F16 load", freshOutput: "new output arrays written once", freshOutputHeld: "new output arrays held as the parse holds them", firstTouchOutput: "first-touch output written once" }[key];
          const gc = summarize(gcMsPerRep(key));
          return [
            figure(`minor page faults per ${whose}`, perRep.median, "faults", {
              stats: perRep,
              note: `process.resourceUsage().minorPageFault over each round's repetitions; the output is ${(4 * halves / 4096).toFixed(0)} pages of 4 KiB`,
            }),
            figure(`GC pauses per ${whose}`, gc.median, "ms", {
              stats: gc,
              note: `garbage collector pauses (perf_hooks "gc" entries) that started during the repetitions; the whole takes ${med(key).toFixed(1)} ms`,
            }),
          ];
        }).flat(),
        ...againstCeilings(
          {
            name: "load F16 recycled (cache turning over: evicted adapters' arrays)",
            key: "loadF16Cached",
            fileBytes: f16.safetensors.length,
            note: "the steady state of a full cache, no goal (the goal is on the cold load above): parseAdapter inside a real AdapterCache with a budget of one adapter, each load a new id, so each parse writes into the arrays of the adapter its insert evicted (memory already touched)",
          },
          [
            {
              name: "streamed conversion alone (into recycled arrays)",
              key: "streamedConversion",
              dataBytes: f16Data.byteLength,
              note: "f16ToF32Simd over every tensor into arrays kept across rounds: the load's own data work (64 KiB of halves through the scratch), without parse, checks or cache",
            },
            {
              name: "ONNX Runtime Cast F16→F32 over the data (native, 2 threads)",
              key: "ortCast",
              dataBytes: f16Data.byteLength,
              reference: true,
              note: "one-node graph: the file's halves in place → one preallocated F32 array kept across rounds (memory touched): ORT's own conversion speed on this machine",
            },
            { name: "SIMD conversion alone (memory touched before)", key: "convertKernel", dataBytes: f16Data.byteLength, note: "the same kernel inside one Memory, halves and output all touched, nothing copied: one read of the halves and one write of the values at the kernel's speed (the bandwidth floor of any F16 load)" },
            {
              name: "F32 output written once (recycled arrays)",
              key: "recycledOutput",
              dataBytes: f16Data.byteLength,
              note: "fill of one array per tensor, kept across rounds: the one write of every output value into memory already touched, nothing read",
            },
          ],
        ),
        ...againstCeilings(
          {
            name: "load F16 widened in place (bytes received into a WebAssembly Memory)",
            key: "loadF16",
            fileBytes: f16.safetensors.length,
            note: "the alternative placement (safetensorsTarget, widen-in-place.ts): the kernel converts where the file lies, no output allocation, no copy; bytes received afresh for each load",
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
        ...receiveAndEndToEnd("F16", { receive: "receiveF16", receivePlain: "receiveF16Plain", load: "loadF16", loadPlain: "loadF16Plain" }),
        figure("compose with a rank-8 adapter", result.compose.stats.median, "ms", { stats: result.compose.stats }),
        figure("adapter size (F32)", size / 2 ** 20, "MiB"),
      ],
    };
  },
};
