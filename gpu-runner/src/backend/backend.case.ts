/**
 * One test suite for every Backend (hono "common case" pattern): backend.node.test.ts and
 * backend.web.test.ts run it against onnxruntime-node and onnxruntime-web.
 */
import { describe, expect, it } from "vitest";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { allocateSafetensorsBytes } from "#core/safetensors/index";
import { simdKernelsAvailable } from "#core/simd/index";
import { DataType, GraphBuilder, WeightBlob } from "../onnx/index.js";
import { float32, int64, type Backend, type BackendName } from "./backend.js";
import { loadBackend } from "./load-backend.js";

/**
 * The LoRA paths of the model graphs, W external: y = x·W + (x·At)·Bt (per row: At [b, in, R],
 * Bt [b, R, out]), and with `shared` also + ((x·Ac) ⊙ Mk)·Bc (one Ac [in, Rc], Bc [Rc, out] for
 * the batch, Mk [b, 1, Rc] masking it per row).
 */
function loraGraph(inF: number, outF: number, w: Float32Array, shared: boolean): { graph: Uint8Array; weights: Uint8Array } {
  const g = new GraphBuilder();
  const blob = new WeightBlob("w.bin");
  const x = g.input("x", DataType.FLOAT, ["b", "s", inF]);
  const at = g.input("at", DataType.FLOAT, ["b", inF, "R"]);
  const bt = g.input("bt", DataType.FLOAT, ["b", "R", outF]);
  const wName = g.initializer(blob.add("w", [inF, outF], w));
  const perRow = g.node("Add", [g.node("MatMul", [x, wName]), g.node("MatMul", [g.node("MatMul", [x, at]), bt])], {}, shared ? {} : { output: "y" });
  if (shared) {
    const ac = g.input("ac", DataType.FLOAT, [inF, "Rc"]);
    const bc = g.input("bc", DataType.FLOAT, ["Rc", outF]);
    const mk = g.input("mk", DataType.FLOAT, ["b", 1, "Rc"]);
    g.node("Add", [perRow, g.node("MatMul", [g.node("Mul", [g.node("MatMul", [x, ac]), mk]), bc])], {}, { output: "y" });
  }
  g.output("y", DataType.FLOAT, ["b", "s", outF]);
  return { graph: g.encode(shared ? "lora-two-path" : "lora-matmul"), weights: blob.bytes() };
}

function plain(x: Float32Array, b: number, s: number, inF: number, outF: number, w: Float32Array, at: Float32Array, bt: Float32Array, R: number): Float32Array {
  const y = new Float32Array(b * s * outF);
  for (let i = 0; i < b; i++)
    for (let t = 0; t < s; t++)
      for (let o = 0; o < outF; o++) {
        let acc = 0;
        for (let k = 0; k < inF; k++) acc += x[(i * s + t) * inF + k] * w[k * outF + o];
        for (let c = 0; c < R; c++) {
          let xa = 0;
          for (let k = 0; k < inF; k++) xa += x[(i * s + t) * inF + k] * at[(i * inF + k) * R + c];
          acc += xa * bt[(i * R + c) * outF + o];
        }
        y[(i * s + t) * outF + o] = acc;
      }
  return y;
}

export function runBackendTests({ name }: { name: BackendName }): void {
  describe(`backend ${name}`, () => {
    const getBackend = (): Promise<Backend> => loadBackend(name);

    it("runs x·W + (x·At)·Bt with external weights, equal to plain loops, at R = 3 and R = 0", async () => {
      const backend = await getBackend();
      expect(backend.name).toBe(name);
      const [b, s, inF, outF] = [2, 3, 5, 4];
      const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
      const w = rand(inF * outF, 1);
      const { graph, weights } = loraGraph(inF, outF, w, false);
      const session = await backend.createSession(graph, { externalData: [{ path: "w.bin", data: weights }] });
      expect(session.inputNames).toEqual(["x", "at", "bt"]);
      const x = rand(b * s * inF, 2);
      for (const R of [3, 0]) {
        const at = rand(b * inF * R, 3);
        const bt = rand(b * R * outF, 4);
        const out = await session.run({ x: float32(x, [b, s, inF]), at: float32(at, [b, inF, R]), bt: float32(bt, [b, R, outF]) });
        expect(out.y.dims).toEqual([b, s, outF]);
        const want = plain(x, b, s, inF, outF, w, at, bt, R);
        const got = out.y.data as Float32Array;
        for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
      }
      await session.release();
    });

    it("runs x·W + (x·At)·Bt + ((x·Ac) ⊙ Mk)·Bc equal to plain loops with R and Rc each 0 or not (zero-size MatMul/Mul)", async () => {
      const backend = await getBackend();
      const [b, s, inF, outF] = [3, 2, 5, 4];
      const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
      const w = rand(inF * outF, 1);
      const { graph, weights } = loraGraph(inF, outF, w, true);
      const session = await backend.createSession(graph, { externalData: [{ path: "w.bin", data: weights }] });
      const x = rand(b * s * inF, 2);
      // Run the zero cases after non-zero ones too, so stale buffers from an earlier run would show.
      for (const [R, Rc] of [[3, 4], [0, 0], [3, 0], [0, 4], [0, 0], [2, 5]]) {
        const at = rand(b * inF * R, 3);
        const bt = rand(b * R * outF, 4);
        const ac = rand(inF * Rc, 5);
        const bc = rand(Rc * outF, 6);
        const mk = Float32Array.from({ length: b * Rc }, (_, i) => ((i % Rc) + Math.floor(i / Rc)) % 2); // rows keep different columns
        const out = await session.run({ x: float32(x, [b, s, inF]), at: float32(at, [b, inF, R]), bt: float32(bt, [b, R, outF]), ac: float32(ac, [inF, Rc]), bc: float32(bc, [Rc, outF]), mk: float32(mk, [b, 1, Rc]) });
        expect(out.y.dims).toEqual([b, s, outF]);
        const want = plain(x, b, s, inF, outF, w, at, bt, R);
        for (let i = 0; i < b; i++)
          for (let t = 0; t < s; t++)
            for (let c = 0; c < Rc; c++) {
              let xc = 0;
              for (let k = 0; k < inF; k++) xc += x[(i * s + t) * inF + k] * ac[k * Rc + c];
              for (let o = 0; o < outF; o++) want[(i * s + t) * outF + o] += xc * mk[i * Rc + c] * bc[c * outF + o];
            }
        const got = out.y.data as Float32Array;
        for (let i = 0; i < want.length; i++) expect(got[i], `R=${R} Rc=${Rc} [${i}]`).toBeCloseTo(want[i], 5);
      }
      await session.release();
    });

    it.skipIf(!simdKernelsAvailable())("feeds an adapter's tensors as they lie in the WebAssembly Memory it was received into (F16 widened in place, F32 in place): results equal to plain copies", async () => {
      const backend = await getBackend();
      // One module, A [R, in] and B [out, R]: fed as at = B ([1, out, R]) and bt = A ([1, R, in]), so y = x·W + (x·B)·A.
      const [R, inF, outF, s] = [5, 11, 7, 3];
      const adapter = randomLoraAdapter(createRng(21), [{ module: "model.layers.0.self_attn.q_proj", rank: R, inFeatures: inF, outFeatures: outF }]);
      const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
      const { graph, weights } = loraGraph(outF, inF, rand(outF * inF, 1), false);
      const session = await backend.createSession(graph, { externalData: [{ path: "w.bin", data: weights }] });
      const x = float32(rand(s * outF, 2), [1, s, outF]);
      for (const dtype of ["F16", "F32"] as const) {
        const file = writePeftAdapter(adapter, { dtype });
        const received = allocateSafetensorsBytes(file.safetensors.length, file.safetensors, { minBytes: 0 });
        received.set(file.safetensors);
        const m = [...loadPeftAdapter(file.config, received).modules.values()][0]!;
        expect(m.a.buffer).toBe(received.buffer);
        expect(m.a.byteOffset).toBeGreaterThan(0); // a view inside the Memory, not at its start
        const inMemory = await session.run({ x, at: float32(m.b, [1, outF, R]), bt: float32(m.a, [1, R, inF]) });
        const copied = await session.run({ x, at: float32(m.b.slice(), [1, outF, R]), bt: float32(m.a.slice(), [1, R, inF]) });
        expect(Array.from(inMemory.y.data as Float32Array), dtype).toEqual(Array.from(copied.y.data as Float32Array));
      }
      await session.release();
    });

    it("passes int64 tensors through Gather", async () => {
      const backend = await getBackend();
      const g = new GraphBuilder();
      const ids = g.input("ids", DataType.INT64, ["n"]);
      const table = g.initializer({ name: "table", dims: [3, 2], dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer) });
      g.node("Gather", [table, ids], {}, { output: "rows" });
      g.output("rows", DataType.FLOAT, ["n", 2]);
      const session = await backend.createSession(g.encode("gather"));
      const out = await session.run({ ids: int64(BigInt64Array.from([2n, 0n]), [2]) });
      expect(Array.from(out.rows.data as Float32Array)).toEqual([5, 6, 1, 2]);
      await session.release();
    });

    it("runInto writes an output into a view of a larger buffer and leaves the rest of it alone", async () => {
      const backend = await getBackend();
      const g = new GraphBuilder();
      const a = g.input("a", DataType.FLOAT, ["n"]);
      const b = g.input("b", DataType.FLOAT, ["n"]);
      g.node("Add", [a, b], {}, { output: "sum" });
      g.output("sum", DataType.FLOAT, ["n"]);
      const session = await backend.createSession(g.encode("add-into"));
      const big = new Float32Array(8).fill(-7);
      const view = big.subarray(2, 5);
      await session.runInto({ a: float32(Float32Array.from([1, 2, 3]), [3]), b: float32(Float32Array.from([10, 20, 30]), [3]) }, { sum: float32(view, [3]) });
      expect(Array.from(big)).toEqual([-7, -7, 11, 22, 33, -7, -7, -7]);
      await session.release();
    });

    it("rejects a graph that is not ONNX with an error", async () => {
      const backend = await getBackend();
      await expect(backend.createSession(new Uint8Array([1, 2, 3, 4]))).rejects.toThrow();
    });
  });
}
