import { ByteBuffer } from "flatbuffers";
import { AdapterFormatError } from "../errors.js";
import { ONNX_ADAPTER_DTYPES, onnxAdapterDtypeFromCode, type OnnxAdapterDtype } from "./tensor-data-type.js";

/** ONNX Runtime adapter format version this code reads and writes (kAdapterFormatVersion). */
export const ONNX_ADAPTER_FORMAT_VERSION = 1;
/** FlatBuffers file identifier of .onnx_adapter files. */
export const ONNX_ADAPTER_IDENTIFIER = "TORT";

export interface OnnxAdapterParameter {
  /** Row-major dims (int64 in the file). */
  dims: number[];
  dtype: OnnxAdapterDtype;
  /** raw_data: little-endian elements; a zero-copy view into the file bytes. */
  data: Uint8Array;
}

export interface OnnxAdapterFile {
  formatVersion: number;
  adapterVersion: number;
  modelVersion: number;
  /** In file order. */
  parameters: Map<string, OnnxAdapterParameter>;
}

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new AdapterFormatError("onnx_adapter_invalid", `.onnx_adapter: ${message}`, details);
}

interface TableRef {
  pos: number;
  vtable: number;
  vtableSize: number;
  tableSize: number;
}

/**
 * Bounds-checked FlatBuffers access on top of the flatbuffers runtime's ByteBuffer (which does
 * not verify): every position is checked against the buffer before it is read, so a hostile
 * file gives an `onnx_adapter_invalid` error, never a read past the end, a hang or a huge
 * allocation.
 */
class CheckedBuffer {
  readonly bb: ByteBuffer;
  readonly size: number;
  constructor(bytes: Uint8Array) {
    this.bb = new ByteBuffer(bytes);
    this.size = bytes.length;
  }
  need(pos: number, len: number, what: string): void {
    if (!Number.isSafeInteger(pos) || pos < 0 || len < 0 || pos + len > this.size) {
      invalid(`${what} at byte ${pos} (${len} bytes) lies outside the ${this.size}-byte buffer`, { pos, len });
    }
  }
  u32(pos: number, what: string): number {
    this.need(pos, 4, what);
    return this.bb.readUint32(pos);
  }
  table(pos: number, what: string): TableRef {
    this.need(pos, 4, what);
    const vtable = pos - this.bb.readInt32(pos);
    this.need(vtable, 4, `${what} vtable`);
    const vtableSize = this.bb.readUint16(vtable);
    const tableSize = this.bb.readUint16(vtable + 2);
    if (vtableSize < 4 || vtableSize % 2 !== 0) invalid(`${what} has a malformed vtable (size ${vtableSize})`);
    this.need(vtable, vtableSize, `${what} vtable`);
    this.need(pos, tableSize, what);
    return { pos, vtable, vtableSize, tableSize };
  }
  /** Absolute position of field `index` (0-based), or 0 when absent; checks it fits the table. */
  field(t: TableRef, index: number, size: number, what: string): number {
    const vo = 4 + 2 * index;
    if (vo + 2 > t.vtableSize) return 0;
    const off = this.bb.readUint16(t.vtable + vo);
    if (off === 0) return 0;
    if (off + size > t.tableSize) invalid(`${what} lies outside its table`);
    return t.pos + off;
  }
  int32Field(t: TableRef, index: number, what: string, dflt = 0): number {
    const p = this.field(t, index, 4, what);
    return p === 0 ? dflt : this.bb.readInt32(p);
  }
  /** Follows a uoffset field to its target (vector/string/table), or 0 when absent. */
  refField(t: TableRef, index: number, what: string): number {
    const p = this.field(t, index, 4, what);
    if (p === 0) return 0;
    const target = p + this.u32(p, what);
    this.need(target, 4, what);
    return target;
  }
  /** A vector at `pos`: element count and start, checked to fit the buffer. */
  vector(pos: number, elemSize: number, what: string): { start: number; length: number } {
    const length = this.u32(pos, `${what} length`);
    this.need(pos + 4, length * elemSize, what);
    return { start: pos + 4, length };
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses an ONNX Runtime LoRA adapter file (FlatBuffers, schema onnxruntime/lora/adapter_format/
 * adapter_schema.fbs, identifier "TORT"):
 *   table Adapter   { format_version:int; adapter_version:int; model_version:int; parameters:[Parameter]; }
 *   table Parameter { name:string; dims:[int64]; data_type:TensorDataType; raw_data:[uint8] (force_align: 8); }
 * Checks: identifier, every offset in bounds, format version 1, names present, unique and UTF-8,
 * dims non-negative, a known non-string data type, raw_data length = Π dims × element size.
 */
export function readOnnxAdapter(bytes: Uint8Array): OnnxAdapterFile {
  if (bytes.length < 8) invalid(`file is ${bytes.length} bytes, too short for a FlatBuffer with an identifier`);
  const ident = String.fromCharCode(bytes[4], bytes[5], bytes[6], bytes[7]);
  if (ident !== ONNX_ADAPTER_IDENTIFIER) {
    invalid(`file identifier is ${JSON.stringify(ident)}, expected "${ONNX_ADAPTER_IDENTIFIER}" (not an ONNX Runtime adapter file)`);
  }
  const buf = new CheckedBuffer(bytes);
  const root = buf.table(buf.u32(0, "root offset"), "Adapter table");
  const formatVersion = buf.int32Field(root, 0, "format_version");
  if (formatVersion !== ONNX_ADAPTER_FORMAT_VERSION) {
    throw new AdapterFormatError(
      "onnx_adapter_version",
      `.onnx_adapter: format_version ${formatVersion} is not supported (supported: ${ONNX_ADAPTER_FORMAT_VERSION})`,
      { formatVersion },
    );
  }
  const adapterVersion = buf.int32Field(root, 1, "adapter_version");
  const modelVersion = buf.int32Field(root, 2, "model_version");
  const parameters = new Map<string, OnnxAdapterParameter>();
  const paramsPos = buf.refField(root, 3, "parameters");
  if (paramsPos !== 0) {
    const vec = buf.vector(paramsPos, 4, "parameters vector");
    for (let i = 0; i < vec.length; i++) {
      const slot = vec.start + 4 * i;
      const what = `parameter ${i}`;
      const t = buf.table(slot + buf.u32(slot, what), what);
      const namePos = buf.refField(t, 0, `${what} name`);
      if (namePos === 0) invalid(`${what} has no name`);
      const nameVec = buf.vector(namePos, 1, `${what} name`);
      let name: string;
      try {
        name = utf8.decode(bytes.subarray(nameVec.start, nameVec.start + nameVec.length));
      } catch {
        invalid(`${what} name is not valid UTF-8`);
      }
      if (name.length === 0) invalid(`${what} has an empty name`);
      if (parameters.has(name)) invalid(`parameter "${name}" appears more than once`, { name });

      const dimsPos = buf.refField(t, 1, `"${name}" dims`);
      const dims: number[] = [];
      if (dimsPos !== 0) {
        const dv = buf.vector(dimsPos, 8, `"${name}" dims`);
        for (let k = 0; k < dv.length; k++) {
          const d = buf.bb.readInt64(dv.start + 8 * k);
          if (d < 0n || d > BigInt(Number.MAX_SAFE_INTEGER)) invalid(`parameter "${name}" has invalid dimension ${d}`, { name });
          dims.push(Number(d));
        }
      }
      const code = buf.int32Field(t, 2, `"${name}" data_type`);
      const dtype = onnxAdapterDtypeFromCode(code);
      if (dtype === null) invalid(`parameter "${name}" has data_type ${code}, which is undefined, a string, or unknown`, { name, code });

      const rawPos = buf.refField(t, 3, `"${name}" raw_data`);
      const raw = rawPos === 0 ? { start: 0, length: 0 } : buf.vector(rawPos, 1, `"${name}" raw_data`);
      const numel = dims.reduce((p, d) => p * d, 1);
      const expected = numel * ONNX_ADAPTER_DTYPES[dtype].bytes;
      if (expected !== raw.length) {
        invalid(`parameter "${name}" ${dtype}[${dims.join(", ")}] needs ${expected} bytes of raw_data, has ${raw.length}`, { name, expectedBytes: expected, actualBytes: raw.length });
      }
      parameters.set(name, { dims, dtype, data: bytes.subarray(raw.start, raw.start + raw.length) });
    }
  }
  return { formatVersion, adapterVersion, modelVersion, parameters };
}
