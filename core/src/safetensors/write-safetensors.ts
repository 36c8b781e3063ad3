import { f32ToBf16 } from "../dtype/bf16.js";
import { f32ToF16 } from "../dtype/f16.js";
import { AdapterFormatError } from "../errors.js";
import { DTYPE_BYTES, isSupportedDtype, type SafetensorsDtype } from "./dtypes.js";
import { hostToLittleEndianBytes } from "./tensor-to-float32.js";

/**
 * A tensor to write. `data` may be:
 *  - Float32Array: values; converted to `dtype` (F16/BF16 round to nearest even),
 *  - Uint16Array: raw F16/BF16 bits (only with dtype F16 or BF16),
 *  - Uint8Array: raw little-endian bytes of `dtype`, written as is.
 */
export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  /** Row-major dims; product × dtype size must equal the byte length. */
  shape: number[];
  data: Float32Array | Uint16Array | Uint8Array;
}

function encodeData(t: TensorToWrite): Uint8Array {
  const { data, dtype, name } = t;
  if (data instanceof Float32Array) {
    if (dtype === "F32") return hostToLittleEndianBytes(data);
    return hostToLittleEndianBytes(dtype === "F16" ? f32ToF16(data) : f32ToBf16(data));
  }
  if (data instanceof Uint16Array) {
    if (dtype === "F32") {
      throw new AdapterFormatError("invalid_tensor_info", `writeSafetensors: tensor "${name}" is F32 but its data is a Uint16Array`, { tensor: name });
    }
    return hostToLittleEndianBytes(data);
  }
  return data;
}

/**
 * Serialises tensors to safetensors bytes: `u64 LE N` · JSON header (space-padded so data
 * starts 8-byte aligned) · data. Tensors are laid out widest dtype first (so every tensor stays
 * aligned to its element size), in the given order within a dtype. Rejects empty or duplicate
 * names, bad shapes, unsupported dtypes and data whose size does not match the shape.
 */
export function writeSafetensors(
  tensors: Iterable<TensorToWrite> | Map<string, Omit<TensorToWrite, "name">>,
  metadata?: Record<string, string> | null,
): Uint8Array {
  const list: TensorToWrite[] =
    tensors instanceof Map ? [...tensors].map(([name, t]) => ({ ...t, name })) : [...tensors];
  const seen = new Set<string>();
  const encoded: Array<{ name: string; dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array }> = [];
  for (const t of list) {
    if (typeof t.name !== "string" || t.name.length === 0 || t.name === "__metadata__") {
      throw new AdapterFormatError("invalid_tensor_info", `writeSafetensors: invalid tensor name ${JSON.stringify(t.name)}`);
    }
    if (seen.has(t.name)) {
      throw new AdapterFormatError("duplicate_key", `writeSafetensors: tensor name "${t.name}" given twice`, { key: t.name });
    }
    seen.add(t.name);
    if (!isSupportedDtype(t.dtype)) {
      throw new AdapterFormatError("unsupported_dtype", `writeSafetensors: tensor "${t.name}" has unsupported dtype ${String(t.dtype)}`);
    }
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new AdapterFormatError("invalid_shape", `writeSafetensors: tensor "${t.name}" has invalid shape ${JSON.stringify(t.shape)}`);
    }
    const bytes = encodeData(t);
    const numel = t.shape.reduce((p, d) => p * d, 1);
    if (numel * DTYPE_BYTES[t.dtype] !== bytes.length) {
      throw new AdapterFormatError(
        "shape_size_mismatch",
        `writeSafetensors: tensor "${t.name}" ${t.dtype}[${t.shape.join(", ")}] needs ${numel * DTYPE_BYTES[t.dtype]} bytes, data has ${bytes.length}`,
        { tensor: t.name },
      );
    }
    encoded.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], bytes });
  }
  // Widest dtype first keeps every tensor aligned to its element size (stable sort).
  encoded.sort((x, y) => DTYPE_BYTES[y.dtype] - DTYPE_BYTES[x.dtype]);

  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new AdapterFormatError("invalid_metadata", `writeSafetensors: metadata "${k}" must be a string`);
      }
    }
    header["__metadata__"] = metadata;
  }
  let offset = 0;
  for (const e of encoded) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.bytes.length] };
    offset += e.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const out = new Uint8Array(8 + headerLen + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLen % 2 ** 32, true);
  view.setUint32(4, Math.floor(headerLen / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const e of encoded) {
    out.set(e.bytes, pos);
    pos += e.bytes.length;
  }
  return out;
}
