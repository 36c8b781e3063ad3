import { ByteBuffer } from "flatbuffers";
import { describe, expect, it } from "vitest";
import { naiveDelta } from "../testing/naive-delta.js";
import { expectFormatError } from "../testing/expect-format-error.js";
import { f16ToF32, f32ToF16 } from "../dtype/f16.js";
import { AdapterFormatError } from "../errors.js";
import type { LoraAdapter } from "../lora/types.js";
import { loadPeftAdapter } from "../peft/load-peft-adapter.js";
import { writePeftAdapter } from "../peft/write-peft-adapter.js";
import { createRng } from "../random/xoshiro128.js";
import { randomLoraAdapter } from "../random/random-adapter.js";
import { onnxAdapterToPeft, peftToOnnxAdapter } from "./convert.js";
import { readOnnxAdapter } from "./read-onnx-adapter.js";
import { ONNX_ADAPTER_DTYPES, type OnnxAdapterDtype } from "./tensor-data-type.js";
import { writeOnnxAdapter, type OnnxAdapterParameterToWrite } from "./write-onnx-adapter.js";

/**
 * Reference reader written the way flatc-generated TypeScript reads the schema, with the
 * flatbuffers runtime's own (unchecked) accessors: holds the writer to the FlatBuffers layout
 * rules independently of readOnnxAdapter.
 */
function referenceRead(bytes: Uint8Array) {
  const bb = new ByteBuffer(bytes);
  expect(bb.__has_identifier("TORT")).toBe(true);
  const root = bb.readInt32(bb.position()) + bb.position();
  const int = (table: number, slot: number) => {
    const o = bb.__offset(table, 4 + 2 * slot);
    return o ? bb.readInt32(table + o) : 0;
  };
  const paramsOff = bb.__offset(root, 10);
  const params = [];
  for (let i = 0; i < bb.__vector_len(root + paramsOff); i++) {
    const t = bb.__indirect(bb.__vector(root + paramsOff) + 4 * i);
    const name = bb.__string(t + bb.__offset(t, 4)) as string;
    const dimsOff = bb.__offset(t, 6);
    const dims = Array.from({ length: bb.__vector_len(t + dimsOff) }, (_, k) => Number(bb.readInt64(bb.__vector(t + dimsOff) + 8 * k)));
    const rawOff = bb.__offset(t, 10);
    const start = bb.__vector(t + rawOff);
    params.push({ name, dims, dataType: int(t, 2), rawStart: start, raw: bytes.subarray(start, start + bb.__vector_len(t + rawOff)) });
  }
  return { formatVersion: int(root, 0), adapterVersion: int(root, 1), modelVersion: int(root, 2), params };
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Position of field `slot` of the table at `table` (0 when absent). */
function fieldPos(bytes: Uint8Array, table: number, slot: number): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const vt = table - dv.getInt32(table, true);
  const off = 4 + 2 * slot < dv.getUint16(vt, true) ? dv.getUint16(vt + 4 + 2 * slot, true) : 0;
  return off ? table + off : 0;
}
const u32 = (bytes: Uint8Array, pos: number) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(pos, true);
const setU32 = (bytes: Uint8Array, pos: number, v: number) => new DataView(bytes.buffer, bytes.byteOffset).setUint32(pos, v, true);

function sample(): OnnxAdapterParameterToWrite[] {
  return [
    { name: "x.lora_A.MatMul.weight", dims: [3, 2], dtype: "float32", data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    { name: "x.lora_B.MatMul.weight", dims: [2, 5], dtype: "float16", data: new Uint16Array(10).map((_, i) => 0x3c00 + i) },
  ];
}

describe(".onnx_adapter container", () => {
  it("write → read round-trips every dtype bit-exactly, with raw_data 8-byte aligned (property test)", () => {
    const rng = createRng(17);
    const names = Object.keys(ONNX_ADAPTER_DTYPES) as OnnxAdapterDtype[];
    for (let t = 0; t < 30; t++) {
      const params: OnnxAdapterParameterToWrite[] = Array.from({ length: Math.floor(rng.nextFloat() * 5) }, (_, i) => {
        const dims = Array.from({ length: Math.floor(rng.nextFloat() * 4) }, () => Math.floor(rng.nextFloat() * 6));
        const dtype = names[Math.floor(rng.nextFloat() * names.length)];
        const n = dims.reduce((p, d) => p * d, 1) * ONNX_ADAPTER_DTYPES[dtype].bytes;
        return { name: `p${i}.${"é".repeat(i)}`, dims, dtype, data: new Uint8Array(n).map(() => Math.floor(rng.nextFloat() * 256)) };
      });
      const bytes = writeOnnxAdapter({ adapterVersion: t, modelVersion: 7, parameters: params });
      const file = readOnnxAdapter(bytes);
      expect({ f: file.formatVersion, a: file.adapterVersion, m: file.modelVersion }).toEqual({ f: 1, a: t, m: 7 });
      expect([...file.parameters.keys()]).toEqual(params.map((p) => p.name));
      const ref = referenceRead(bytes);
      expect(ref.formatVersion).toBe(1);
      expect(ref.adapterVersion).toBe(t);
      params.forEach((p, i) => {
        const got = file.parameters.get(p.name)!;
        expect(got.dims).toEqual(p.dims);
        expect(got.dtype).toBe(p.dtype);
        expect(sameBytes(got.data, p.data)).toBe(true);
        expect(ref.params[i]).toMatchObject({ name: p.name, dims: p.dims, dataType: ONNX_ADAPTER_DTYPES[p.dtype].code });
        expect(sameBytes(ref.params[i].raw, p.data)).toBe(true);
        if (got.data.length > 0) expect(ref.params[i].rawStart % 8).toBe(0);
      });
    }
  });

  it("malformed corpus: each file refused with its specific code", () => {
    const good = () => writeOnnxAdapter({ parameters: sample() });
    expectFormatError(() => readOnnxAdapter(new Uint8Array(6)), "onnx_adapter_invalid", /too short/);
    const wrongId = good();
    wrongId.set([0x4f, 0x52, 0x54, 0x4d], 4); // "ORTM" (an .ort model, not an adapter)
    expectFormatError(() => readOnnxAdapter(wrongId), "onnx_adapter_invalid", /identifier is "ORTM", expected "TORT"/);
    const rootOut = good();
    setU32(rootOut, 0, rootOut.length + 100);
    expectFormatError(() => readOnnxAdapter(rootOut), "onnx_adapter_invalid", /outside the/);
    const truncated = good();
    expectFormatError(() => readOnnxAdapter(truncated.subarray(0, truncated.length - 40)), "onnx_adapter_invalid");

    const v2 = good();
    const root = u32(v2, 0);
    new DataView(v2.buffer).setInt32(fieldPos(v2, root, 0), 2, true);
    expectFormatError(() => readOnnxAdapter(v2), "onnx_adapter_version", /format_version 2 is not supported/);

    const hugeVec = good();
    const pv = fieldPos(hugeVec, root, 3);
    setU32(hugeVec, pv + u32(hugeVec, pv), 0x7fffffff); // parameters vector claims 2^31 − 1 entries
    expectFormatError(() => readOnnxAdapter(hugeVec), "onnx_adapter_invalid", /parameters vector at byte/);

    // Patch inside the first Parameter table: raw_data length, data_type, dims.
    const param0 = (bytes: Uint8Array) => {
      const pvp = fieldPos(bytes, root, 3);
      const vec = pvp + u32(bytes, pvp);
      return vec + 4 + u32(bytes, vec + 4);
    };
    const rawLen = good();
    const rp = fieldPos(rawLen, param0(rawLen), 3);
    setU32(rawLen, rp + u32(rawLen, rp), 20);
    expectFormatError(() => readOnnxAdapter(rawLen), "onnx_adapter_invalid", /float32\[3, 2\] needs 24 bytes of raw_data, has 20/);
    const strType = good();
    new DataView(strType.buffer).setInt32(fieldPos(strType, param0(strType), 2), 8, true);
    expectFormatError(() => readOnnxAdapter(strType), "onnx_adapter_invalid", /data_type 8/);
    const negDim = good();
    const dp = fieldPos(negDim, param0(negDim), 1);
    new DataView(negDim.buffer).setBigInt64(dp + u32(negDim, dp) + 4, -3n, true);
    expectFormatError(() => readOnnxAdapter(negDim), "onnx_adapter_invalid", /invalid dimension -3/);
    const dupName = good();
    const np = fieldPos(dupName, param0(dupName), 0);
    const name0 = np + u32(dupName, np) + 4;
    dupName.set(new TextEncoder().encode("x.lora_B"), name0); // "x.lora_A.MatMul.weight" → "x.lora_B.MatMul.weight"
    expectFormatError(() => readOnnxAdapter(dupName), "onnx_adapter_invalid", /"x.lora_B.MatMul.weight" appears more than once/);
  });

  it("random corruption yields a result or an AdapterFormatError, never a crash or a hang", () => {
    const rng = createRng(23);
    const base = writeOnnxAdapter({ parameters: sample() });
    for (let i = 0; i < 3000; i++) {
      const f = base.slice(0, base.length - Math.floor(rng.nextFloat() * 3) * Math.floor(rng.nextFloat() * 16));
      for (let k = 0; k < 1 + Math.floor(rng.nextFloat() * 3); k++) f[Math.floor(rng.nextFloat() * f.length)] = Math.floor(rng.nextFloat() * 256);
      try {
        onnxAdapterToPeft(readOnnxAdapter(f));
      } catch (e) {
        if (!(e instanceof AdapterFormatError)) throw e;
      }
    }
  });
});

describe("PEFT ↔ .onnx_adapter", () => {
  const specs = [
    { module: "model.layers.0.self_attn.q_proj", rank: 4, inFeatures: 12, outFeatures: 12, scale: 2 },
    { module: "model.layers.0.self_attn.v_proj", rank: 2, inFeatures: 12, outFeatures: 6, scale: 0.5 },
    { module: "model.layers.1.mlp.down_proj", rank: 3, inFeatures: 20, outFeatures: 12, scale: 16 / 3 },
  ];

  it("exports Aᵀ [in, r] and s·Bᵀ [r, out] under ORT GenAI names", () => {
    const adapter = randomLoraAdapter(createRng(2), specs);
    const file = readOnnxAdapter(peftToOnnxAdapter(adapter, { adapterVersion: 3 }));
    expect(file.adapterVersion).toBe(3);
    expect([...file.parameters.keys()]).toEqual(specs.flatMap((s) => [`${s.module}.lora_A.MatMul.weight`, `${s.module}.lora_B.MatMul.weight`]));
    for (const m of adapter.modules.values()) {
      const a = file.parameters.get(`${m.module}.lora_A.MatMul.weight`)!;
      const b = file.parameters.get(`${m.module}.lora_B.MatMul.weight`)!;
      expect(a.dims).toEqual([m.inFeatures, m.rank]);
      expect(b.dims).toEqual([m.rank, m.outFeatures]);
      const at = new Float32Array(a.data.slice().buffer);
      const bt = new Float32Array(b.data.slice().buffer);
      for (let i = 0; i < m.inFeatures; i++) for (let k = 0; k < m.rank; k++) expect(at[i * m.rank + k]).toBe(m.a[k * m.inFeatures + i]);
      for (let k = 0; k < m.rank; k++) for (let o = 0; o < m.outFeatures; o++) expect(bt[k * m.outFeatures + o]).toBe(Math.fround(m.scale * m.b[o * m.rank + k]));
    }
  });

  it("PEFT files → .onnx_adapter → PEFT files give the same ΔW (exact for power-of-two scales)", () => {
    const original = randomLoraAdapter(createRng(4), specs);
    const peft = writePeftAdapter(original, { baseModel: "org/base" });
    const loaded = loadPeftAdapter(peft.config, peft.safetensors);
    const back = onnxAdapterToPeft(peftToOnnxAdapter(loaded), { baseModel: "org/base" });
    const again = writePeftAdapter(back);
    const final: LoraAdapter = loadPeftAdapter(again.config, again.safetensors);
    expect(final.baseModel).toBe("org/base");
    for (const m of original.modules.values()) {
      const f = final.modules.get(m.module)!;
      expect(f.scale).toBe(1);
      expect(f.a).toEqual(m.a);
      if (Number.isInteger(Math.log2(m.scale))) expect(f.b).toEqual(m.b.map((v) => v * m.scale));
      const want = naiveDelta(m);
      const got = naiveDelta(f);
      let err = 0;
      let norm = 0;
      for (let i = 0; i < want.length; i++) {
        err = Math.max(err, Math.abs(got[i] - want[i]));
        norm = Math.max(norm, Math.abs(want[i]));
      }
      expect(err / norm).toBeLessThan(1e-6);
    }
  });

  it("float16 export stores fp16-rounded Aᵀ / s·Bᵀ", () => {
    const adapter = randomLoraAdapter(createRng(6), specs.slice(0, 1));
    const back = onnxAdapterToPeft(peftToOnnxAdapter(adapter, { dtype: "float16" }));
    const m = adapter.modules.get(specs[0].module)!;
    expect(back.modules.get(m.module)!.a).toEqual(f16ToF32(f32ToF16(m.a)));
  });

  it("refuses non-LoRA parameters, incomplete pairs, rank mismatches, non-float and non-finite data", () => {
    const p = (name: string, dims: number[], dtype: OnnxAdapterDtype = "float32", fill = 0.5) => ({
      name,
      dims,
      dtype,
      data: dtype === "float32" ? new Float32Array(dims.reduce((x, d) => x * d, 1)).fill(fill) : new Uint8Array(dims.reduce((x, d) => x * d, 1) * ONNX_ADAPTER_DTYPES[dtype].bytes),
    });
    const w = (...params: OnnxAdapterParameterToWrite[]) => writeOnnxAdapter({ parameters: params });
    expectFormatError(() => onnxAdapterToPeft(w(p("onnx::MatMul_12", [2, 2]))), "unexpected_tensor", /"onnx::MatMul_12" is not a LoRA weight/);
    expectFormatError(() => onnxAdapterToPeft(w(p("m.lora_A.MatMul.weight", [4, 2]))), "missing_lora_b");
    expectFormatError(() => onnxAdapterToPeft(w(p("m.lora_B.MatMul.weight", [2, 4]))), "missing_lora_a");
    expectFormatError(() => onnxAdapterToPeft(w(p("m.lora_A.MatMul.weight", [4, 2]), p("m.lora_B.MatMul.weight", [3, 4]))), "rank_mismatch", /rank 2.*rank 3/);
    expectFormatError(() => onnxAdapterToPeft(w(p("m.lora_A.MatMul.weight", [4, 2, 1]), p("m.lora_B.MatMul.weight", [2, 4]))), "shape_mismatch");
    expectFormatError(() => onnxAdapterToPeft(w(p("m.lora_A.MatMul.weight", [4, 2], "int8"), p("m.lora_B.MatMul.weight", [2, 4]))), "unsupported_dtype", /int8/);
    expectFormatError(() => onnxAdapterToPeft(w(p("m.lora_A.MatMul.weight", [4, 2], "float32", NaN), p("m.lora_B.MatMul.weight", [2, 4]))), "non_finite_weight");
    expectFormatError(() => onnxAdapterToPeft(w()), "empty_adapter");
  });
});
