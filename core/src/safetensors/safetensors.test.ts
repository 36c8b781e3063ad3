import { describe, expect, it } from "vitest";
import { expectFormatError } from "../testing/expect-format-error.js";
import { createRng } from "../random/xoshiro128.js";
import { f32ToBf16 } from "../dtype/bf16.js";
import { f16ToF32, f32ToF16 } from "../dtype/f16.js";
import { AdapterFormatError } from "../errors.js";
import { readSafetensors } from "./read-safetensors.js";
import { tensorToFloat32 } from "./tensor-to-float32.js";
import { writeSafetensors, type TensorToWrite } from "./write-safetensors.js";

/** Raw file from a header (object or literal JSON text) and a data section. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerLenOverride?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  const dv = new DataView(out.buffer);
  const n = headerLenOverride ?? json.length;
  dv.setUint32(0, n % 2 ** 32, true);
  dv.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Naive reference: element i of an F32 tensor read with a DataView. */
function naiveF32(data: Uint8Array): Float32Array {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Float32Array(data.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

describe("safetensors round trips", () => {
  it("F32 / F16 / BF16 write → read is bit-exact (random shapes, property test)", () => {
    const rng = createRng(42);
    const next = () => rng.nextFloat();
    for (let trial = 0; trial < 40; trial++) {
      const tensors: TensorToWrite[] = [];
      const count = 1 + Math.floor(next() * 6);
      for (let k = 0; k < count; k++) {
        const rank = Math.floor(next() * 4); // scalars included
        const shape = Array.from({ length: rank }, () => Math.floor(next() * 7)); // zero dims included
        const numel = shape.reduce((p, d) => p * d, 1);
        const dtype = (["F32", "F16", "BF16"] as const)[Math.floor(next() * 3)];
        const data =
          dtype === "F32"
            ? new Float32Array(numel).map(() => (next() - 0.5) * 10)
            : new Uint16Array(numel).map(() => Math.floor(next() * 65536));
        tensors.push({ name: `t${trial}.${k}`, dtype, shape, data });
      }
      const bytes = writeSafetensors(tensors, { format: "pt", trial: String(trial) });
      const file = readSafetensors(bytes);
      expect(file.metadata).toEqual({ format: "pt", trial: String(trial) });
      expect(file.tensors.size).toBe(tensors.length);
      for (const t of tensors) {
        const got = file.tensors.get(t.name)!;
        expect(got.dtype).toBe(t.dtype);
        expect(got.shape).toEqual(t.shape);
        expect(sameBytes(got.data, t.data)).toBe(true);
        // tensor data of each dtype starts aligned to its element size
        expect(got.data.byteOffset % (t.dtype === "F32" ? 4 : 2)).toBe(0);
      }
      expect((8 + new DataView(bytes.buffer).getUint32(0, true)) % 8).toBe(0);
    }
  });

  it("converts Float32 input to F16/BF16 with round-to-nearest-even and back exactly", () => {
    const rng = createRng(7);
    const next = () => rng.nextFloat();
    const x = new Float32Array(1000).map(() => (next() - 0.5) * 100);
    const bytes = writeSafetensors([
      { name: "h", dtype: "F16", shape: [10, 100], data: x },
      { name: "b", dtype: "BF16", shape: [1000], data: x },
      { name: "f", dtype: "F32", shape: [1000], data: x },
    ]);
    const file = readSafetensors(bytes);
    expect(sameBytes(tensorToFloat32(file.tensors.get("h")!), f16ToF32(f32ToF16(x)))).toBe(true);
    const bf = new Uint32Array(f32ToBf16(x).length);
    f32ToBf16(x).forEach((v, i) => (bf[i] = (v << 16) >>> 0));
    expect(sameBytes(tensorToFloat32(file.tensors.get("b")!), bf)).toBe(true);
    expect(sameBytes(tensorToFloat32(file.tensors.get("f")!), x)).toBe(true);
  });

  it("tensorToFloat32 is zero-copy for aligned F32 and equals a DataView reference when unaligned", () => {
    const x = new Float32Array([1.5, -2, 3.25, NaN, Infinity, -0]);
    const bytes = writeSafetensors([{ name: "x", dtype: "F32", shape: [2, 3], data: x }]);
    const t = readSafetensors(bytes).tensors.get("x")!;
    const view = tensorToFloat32(t);
    expect(view.buffer).toBe(bytes.buffer); // aliases the file
    expect(sameBytes(view, x)).toBe(true);
    // Same file at an odd offset inside a bigger buffer: data is unaligned → copied, same values.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const t2 = readSafetensors(shifted.subarray(1)).tensors.get("x")!;
    const copy = tensorToFloat32(t2);
    expect(copy.buffer).not.toBe(shifted.buffer);
    expect(sameBytes(copy, naiveF32(t2.data))).toBe(true);
  });

  it("accepts a Map, an empty file and a header padded with spaces", () => {
    const m = new Map([["a", { dtype: "F32" as const, shape: [2], data: new Float32Array([1, 2]) }]]);
    expect(readSafetensors(writeSafetensors(m)).tensors.get("a")!.shape).toEqual([2]);
    const empty = readSafetensors(writeSafetensors([]));
    expect(empty.tensors.size).toBe(0);
    expect(empty.metadata).toBeNull();
    expect(readSafetensors(rawFile('{}      ')).tensors.size).toBe(0);
  });

  it("writer refuses duplicates, size mismatches and bad shapes", () => {
    const d = new Float32Array(2);
    expectFormatError(() => writeSafetensors([{ name: "a", dtype: "F32", shape: [2], data: d }, { name: "a", dtype: "F32", shape: [2], data: d }]), "duplicate_key");
    expectFormatError(() => writeSafetensors([{ name: "a", dtype: "F32", shape: [3], data: d }]), "shape_size_mismatch");
    expectFormatError(() => writeSafetensors([{ name: "a", dtype: "F32", shape: [-2], data: d }]), "invalid_shape");
    expectFormatError(() => writeSafetensors([{ name: "a", dtype: "F32", shape: [2], data: new Uint16Array(2) }]), "invalid_tensor_info");
  });
});

describe("safetensors golden bytes", () => {
  it("reads and writes exactly the bytes the reference writer produces for a small file", () => {
    // safetensors' reference serializer: u64 LE N, JSON {__metadata__, name: {dtype, shape,
    // data_offsets}} padded with spaces to a multiple of 8, then the little-endian data.
    const json = '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"h":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}}';
    const pad = (8 - (json.length % 8)) % 8;
    const header = json + " ".repeat(pad);
    const golden = new Uint8Array(8 + header.length + 20);
    new DataView(golden.buffer).setUint32(0, header.length, true);
    golden.set(new TextEncoder().encode(header), 8);
    // 1, 2, 3, 4 as F32 LE; then 1.0 (0x3c00) and −2.0 (0xc000) as F16 LE
    golden.set([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0x00, 0x3c, 0x00, 0xc0], 8 + header.length);
    const file = readSafetensors(golden);
    expect(tensorToFloat32(file.tensors.get("w")!)).toEqual(new Float32Array([1, 2, 3, 4]));
    expect(tensorToFloat32(file.tensors.get("h")!)).toEqual(new Float32Array([1, -2]));
    const written = writeSafetensors(
      [
        { name: "w", dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
        { name: "h", dtype: "F16", shape: [2], data: new Float32Array([1, -2]) },
      ],
      { format: "pt" },
    );
    expect(sameBytes(written, golden)).toBe(true);
  });
});

describe("safetensors malformed corpus", () => {
  const good = () => writeSafetensors([
    { name: "a", dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    { name: "b", dtype: "F16", shape: [3], data: new Uint16Array([1, 2, 3]) },
  ]);
  const f32x4 = new Uint8Array(16);

  it("file shorter than the length prefix", () => {
    expectFormatError(() => readSafetensors(new Uint8Array(5)), "file_truncated", /5 bytes, shorter than the 8-byte/);
  });
  it("header length beyond the end of the file (truncated file)", () => {
    const g = good();
    expectFormatError(() => readSafetensors(g.subarray(0, 40)), "file_truncated", /exceeds the 32 bytes that follow/);
  });
  it("truncated data section", () => {
    const g = good();
    expectFormatError(() => readSafetensors(g.subarray(0, g.length - 3)), "offsets_out_of_range", /tensor "b".*extend past/);
  });
  it("huge header length (u64 high word set, and above the cap)", () => {
    const f = rawFile({}, new Uint8Array(0), 2 ** 40);
    expectFormatError(() => readSafetensors(f), "header_too_large", /≥ 2\^53|exceeds the 100000000-byte cap/);
    expectFormatError(() => readSafetensors(rawFile({}, new Uint8Array(0), 200_000_000)), "header_too_large", /200000000 bytes exceeds the 100000000-byte cap/);
    expectFormatError(() => readSafetensors(good(), { maxHeaderBytes: 16 }), "header_too_large", /16-byte cap/);
  });
  it("header not UTF-8", () => {
    const f = rawFile("{}");
    f[8] = 0xff;
    expectFormatError(() => readSafetensors(f), "header_not_utf8");
  });
  it("header not JSON", () => {
    expectFormatError(() => readSafetensors(rawFile("{not json")), "header_not_json", /not valid JSON/);
  });
  it("header JSON but not an object", () => {
    expectFormatError(() => readSafetensors(rawFile("[1,2]")), "header_not_object", /got an array/);
    expectFormatError(() => readSafetensors(rawFile("42")), "header_not_object", /got number/);
    expectFormatError(() => readSafetensors(rawFile("null")), "header_not_object", /got null/);
  });
  it("duplicate tensor names (JSON.parse would keep the last silently)", () => {
    const h = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}';
    expectFormatError(() => readSafetensors(rawFile(h, f32x4)), "duplicate_key", /tensor name "a" appears more than once/);
    const escaped = '{"\\u0061":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[0],"data_offsets":[16,16]}}';
    expectFormatError(() => readSafetensors(rawFile(escaped, f32x4)), "duplicate_key", /"a"/);
    const inner = '{"a":{"dtype":"F32","dtype":"F16","shape":[4],"data_offsets":[0,16]}}';
    expectFormatError(() => readSafetensors(rawFile(inner, f32x4)), "duplicate_key", /key "dtype" appears more than once in header entry "a"/);
  });
  it("unknown and unsupported dtypes", () => {
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F33", shape: [4], data_offsets: [0, 16] } }, f32x4)), "unknown_dtype", /unknown dtype "F33"/);
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, f32x4)), "unsupported_dtype", /dtype I64; supported dtypes are F32, F16, BF16/);
  });
  it("shape × dtype size ≠ byte length", () => {
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, f32x4)), "shape_size_mismatch", /F32\[3\] needs 12 bytes but data_offsets \[0, 16\] hold 16/);
    // element count overflowing 2^53
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 16] } }, f32x4)), "shape_size_mismatch");
  });
  it("lying offsets: past the end, reversed, not integers", () => {
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: [4], data_offsets: [8, 24] } }, f32x4)), "offsets_out_of_range", /extend past the 16-byte data section/);
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: [0], data_offsets: [16, 8] } }, f32x4)), "offsets_out_of_range", /end before they begin/);
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16.5] } }, f32x4)), "invalid_tensor_info");
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: [4], data_offsets: [-16, 0] } }, f32x4)), "invalid_tensor_info");
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: [4] } }, f32x4)), "invalid_tensor_info", /data_offsets must be/);
  });
  it("overlapping offsets", () => {
    const h = { a: { dtype: "F32", shape: [3], data_offsets: [0, 12] }, b: { dtype: "F32", shape: [2], data_offsets: [8, 16] } };
    expectFormatError(() => readSafetensors(rawFile(h, f32x4)), "offsets_overlap", /"b" \[8, 16\] overlaps tensor "a" which ends at 12/);
  });
  it("offsets that do not cover the data exactly (gap, trailing bytes)", () => {
    const gap = { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [2], data_offsets: [8, 16] } };
    expectFormatError(() => readSafetensors(rawFile(gap, f32x4)), "offsets_gap", /bytes \[4, 8\)/);
    const trailing = { a: { dtype: "F32", shape: [3], data_offsets: [0, 12] } };
    expectFormatError(() => readSafetensors(rawFile(trailing, f32x4)), "offsets_gap", /4 trailing bytes/);
  });
  it("invalid shapes, entries and metadata", () => {
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: [-4], data_offsets: [0, 16] } }, f32x4)), "invalid_shape");
    expectFormatError(() => readSafetensors(rawFile({ a: { dtype: "F32", shape: "4", data_offsets: [0, 16] } }, f32x4)), "invalid_shape");
    expectFormatError(() => readSafetensors(rawFile({ a: [1, 2] }, f32x4)), "invalid_tensor_info");
    expectFormatError(() => readSafetensors(rawFile({ a: { shape: [4], data_offsets: [0, 16] } }, f32x4)), "invalid_tensor_info", /no string "dtype"/);
    expectFormatError(() => readSafetensors(rawFile({ __metadata__: { n: 1 } })), "invalid_metadata", /"__metadata__"."n" must be a string/);
    expectFormatError(() => readSafetensors(rawFile({ __metadata__: [] })), "invalid_metadata");
  });
  it("random corruption of a valid file yields a result or an AdapterFormatError, never a crash", () => {
    const rng = createRng(99);
    const next = () => rng.nextFloat();
    const base = good();
    for (let i = 0; i < 2000; i++) {
      const f = base.slice(0, Math.max(0, base.length - Math.floor(next() * 4) * Math.floor(next() * 8)));
      const flips = 1 + Math.floor(next() * 3);
      for (let k = 0; k < flips && f.length > 0; k++) f[Math.floor(next() * f.length)] = Math.floor(next() * 256);
      try {
        const file = readSafetensors(f);
        for (const t of file.tensors.values()) tensorToFloat32(t);
      } catch (e) {
        if (!(e instanceof AdapterFormatError)) throw e;
      }
    }
  });
});
