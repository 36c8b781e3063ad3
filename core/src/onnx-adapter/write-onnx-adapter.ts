import { Builder } from "flatbuffers";
import { AdapterFormatError } from "../errors.js";
import { hostToLittleEndianBytes } from "../safetensors/tensor-to-float32.js";
import { ONNX_ADAPTER_FORMAT_VERSION, ONNX_ADAPTER_IDENTIFIER } from "./read-onnx-adapter.js";
import { ONNX_ADAPTER_DTYPES, type OnnxAdapterDtype } from "./tensor-data-type.js";

export interface OnnxAdapterParameterToWrite {
  name: string;
  dims: number[];
  dtype: OnnxAdapterDtype;
  /** Raw little-endian bytes, or Float32Array (float32) / Uint16Array bits (float16, bfloat16). */
  data: Uint8Array | Float32Array | Uint16Array;
}

export interface OnnxAdapterToWrite {
  adapterVersion?: number;
  modelVersion?: number;
  parameters: Iterable<OnnxAdapterParameterToWrite>;
}

function rawBytes(p: OnnxAdapterParameterToWrite): Uint8Array {
  if (p.data instanceof Float32Array) {
    if (p.dtype !== "float32") throw new AdapterFormatError("onnx_adapter_invalid", `writeOnnxAdapter: "${p.name}" has Float32Array data but dtype ${p.dtype}`);
    return hostToLittleEndianBytes(p.data);
  }
  if (p.data instanceof Uint16Array) {
    if (ONNX_ADAPTER_DTYPES[p.dtype].bytes !== 2) throw new AdapterFormatError("onnx_adapter_invalid", `writeOnnxAdapter: "${p.name}" has Uint16Array data but dtype ${p.dtype}`);
    return hostToLittleEndianBytes(p.data);
  }
  return p.data;
}

/**
 * Serialises an ONNX Runtime adapter file (FlatBuffers "TORT", format version 1), laid out as
 * ONNX Runtime's own AdapterFormatBuilder does: Parameter tables {name, dims, data_type,
 * raw_data (8-byte aligned)}, then the Adapter root {format_version, adapter_version,
 * model_version, parameters}.
 */
export function writeOnnxAdapter(adapter: OnnxAdapterToWrite): Uint8Array {
  const params = [...adapter.parameters];
  let total = 0;
  const seen = new Set<string>();
  const prepared = params.map((p) => {
    if (!p.name) throw new AdapterFormatError("onnx_adapter_invalid", "writeOnnxAdapter: a parameter has an empty name");
    if (seen.has(p.name)) throw new AdapterFormatError("onnx_adapter_invalid", `writeOnnxAdapter: parameter "${p.name}" given twice`);
    seen.add(p.name);
    if (!(p.dtype in ONNX_ADAPTER_DTYPES)) throw new AdapterFormatError("unsupported_dtype", `writeOnnxAdapter: "${p.name}" has unknown dtype ${String(p.dtype)}`);
    if (!p.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new AdapterFormatError("invalid_shape", `writeOnnxAdapter: "${p.name}" has invalid dims ${JSON.stringify(p.dims)}`);
    const raw = rawBytes(p);
    const need = p.dims.reduce((a, d) => a * d, 1) * ONNX_ADAPTER_DTYPES[p.dtype].bytes;
    if (need !== raw.length) {
      throw new AdapterFormatError("shape_size_mismatch", `writeOnnxAdapter: "${p.name}" ${p.dtype}[${p.dims.join(", ")}] needs ${need} bytes, data has ${raw.length}`);
    }
    total += raw.length + 64 + p.name.length * 3 + 8 * p.dims.length;
    return { ...p, raw };
  });

  const b = new Builder(Math.max(1024, total + 256));
  const offsets = prepared.map((p) => {
    const name = b.createString(p.name);
    b.startVector(8, p.dims.length, 8);
    for (let i = p.dims.length - 1; i >= 0; i--) b.addInt64(BigInt(p.dims[i]));
    const dims = b.endVector();
    b.prep(8, p.raw.length); // raw_data (force_align: 8): the bytes must start 8-aligned
    const raw = b.createByteVector(p.raw);
    b.startObject(4);
    b.addFieldOffset(0, name, 0);
    b.addFieldOffset(1, dims, 0);
    b.addFieldInt32(2, ONNX_ADAPTER_DTYPES[p.dtype].code, 0);
    b.addFieldOffset(3, raw, 0);
    return b.endObject();
  });
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]);
  const vec = b.endVector();
  b.startObject(4);
  b.addFieldInt32(0, ONNX_ADAPTER_FORMAT_VERSION, 0);
  b.addFieldInt32(1, adapter.adapterVersion ?? 1, 0);
  b.addFieldInt32(2, adapter.modelVersion ?? 0, 0);
  b.addFieldOffset(3, vec, 0);
  const root = b.endObject();
  b.finish(root, ONNX_ADAPTER_IDENTIFIER);
  return b.asUint8Array().slice(); // own the bytes (the builder's buffer is larger)
}
