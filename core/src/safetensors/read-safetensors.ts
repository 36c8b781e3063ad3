import { AdapterFormatError } from "../errors.js";
import { DTYPE_BYTES, KNOWN_SAFETENSORS_DTYPES, SUPPORTED_DTYPES, isSupportedDtype, type SafetensorsDtype } from "./dtypes.js";
import { findDuplicateJsonKey } from "./duplicate-keys.js";

/**
 * One tensor of a safetensors file. `data` is a zero-copy view into the bytes passed to
 * `readSafetensors` (little-endian, row-major, `shape` product × dtype size bytes).
 */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsFile {
  /** In file order of their data offsets. */
  tensors: Map<string, SafetensorsTensor>;
  /** `__metadata__` (string → string), or null when absent. */
  metadata: Record<string, string> | null;
}

export interface ReadSafetensorsOptions {
  /** Largest JSON header accepted, in bytes (default 100 MB, as the reference implementation). */
  maxHeaderBytes?: number;
}

export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses a safetensors file: `u64 LE header length N` · `N bytes of JSON header` · `data`.
 * The header maps tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative
 * to the data section) plus an optional `__metadata__` string map.
 *
 * Validation (each failure is an `AdapterFormatError` with its own code): file shorter than 8
 * bytes or than the header; header above the cap; header not UTF-8 / not JSON / not an object;
 * a key repeated in any JSON object; malformed tensor entries or metadata; unknown or unsupported
 * dtype; shape × dtype size ≠ byte length; offsets out of range, overlapping, or leaving a gap
 * (tensors must tile the data section exactly, as the reference implementation requires).
 * Never reads past `bytes`; O(header + tensors·log tensors), tensor data is not touched.
 */
export function readSafetensors(bytes: Uint8Array, opts: ReadSafetensorsOptions = {}): SafetensorsFile {
  const maxHeader = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (bytes.length < 8) {
    throw new AdapterFormatError(
      "file_truncated",
      `safetensors: file is ${bytes.length} bytes, shorter than the 8-byte header length prefix`,
      { fileBytes: bytes.length },
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerLen = hi * 2 ** 32 + lo; // exact below 2^53; anything with hi > 0 is over the cap anyway
  if (hi > 0 || headerLen > maxHeader) {
    throw new AdapterFormatError(
      "header_too_large",
      `safetensors: header length ${hi > 0x1fffff ? `≥ 2^53` : headerLen} bytes exceeds the ${maxHeader}-byte cap`,
      { headerBytes: hi > 0x1fffff ? null : headerLen, maxHeaderBytes: maxHeader },
    );
  }
  if (headerLen > bytes.length - 8) {
    throw new AdapterFormatError(
      "file_truncated",
      `safetensors: header length ${headerLen} bytes exceeds the ${bytes.length - 8} bytes that follow the length prefix (file truncated?)`,
      { headerBytes: headerLen, fileBytes: bytes.length },
    );
  }

  let text: string;
  try {
    text = utf8.decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    throw new AdapterFormatError("header_not_utf8", "safetensors: header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new AdapterFormatError(
      "header_not_json",
      `safetensors: header is not valid JSON (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  if (!isPlainObject(header)) {
    throw new AdapterFormatError(
      "header_not_object",
      `safetensors: header must be a JSON object, got ${header === null ? "null" : Array.isArray(header) ? "an array" : typeof header}`,
    );
  }
  const dup = findDuplicateJsonKey(text);
  if (dup) {
    throw new AdapterFormatError(
      "duplicate_key",
      dup.path === ""
        ? `safetensors: tensor name "${dup.key}" appears more than once in the header`
        : `safetensors: key "${dup.key}" appears more than once in header entry "${dup.path}"`,
      { key: dup.key, path: dup.path },
    );
  }

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  let metadata: Record<string, string> | null = null;
  const entries: Array<{ name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }> = [];

  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isPlainObject(info)) {
        throw new AdapterFormatError("invalid_metadata", `safetensors: "__metadata__" must be an object of strings`);
      }
      const md: Array<[string, string]> = [];
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== "string") {
          throw new AdapterFormatError(
            "invalid_metadata",
            `safetensors: "__metadata__"."${k}" must be a string, got ${v === null ? "null" : typeof v}`,
            { key: k },
          );
        }
        md.push([k, v]);
      }
      metadata = Object.fromEntries(md);
      continue;
    }
    if (name.length === 0) {
      throw new AdapterFormatError("invalid_tensor_info", "safetensors: a tensor has an empty name");
    }
    if (!isPlainObject(info)) {
      throw new AdapterFormatError("invalid_tensor_info", `safetensors: entry "${name}" must be an object with dtype, shape, data_offsets`, { tensor: name });
    }
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== "string") {
      throw new AdapterFormatError("invalid_tensor_info", `safetensors: tensor "${name}" has no string "dtype"`, { tensor: name });
    }
    if (!isSupportedDtype(dtype)) {
      if (KNOWN_SAFETENSORS_DTYPES.has(dtype)) {
        throw new AdapterFormatError(
          "unsupported_dtype",
          `safetensors: tensor "${name}" has dtype ${dtype}; supported dtypes are ${SUPPORTED_DTYPES.join(", ")}`,
          { tensor: name, dtype },
        );
      }
      throw new AdapterFormatError(
        "unknown_dtype",
        `safetensors: tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`,
        { tensor: name, dtype },
      );
    }
    if (!Array.isArray(shape) || !shape.every(isIndex)) {
      throw new AdapterFormatError(
        "invalid_shape",
        `safetensors: tensor "${name}" shape must be an array of non-negative integers, got ${JSON.stringify(shape)?.slice(0, 100)}`,
        { tensor: name },
      );
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isIndex(offsets[0]) || !isIndex(offsets[1])) {
      throw new AdapterFormatError(
        "invalid_tensor_info",
        `safetensors: tensor "${name}" data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)?.slice(0, 100)}`,
        { tensor: name },
      );
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) {
      throw new AdapterFormatError(
        "offsets_out_of_range",
        `safetensors: tensor "${name}" data_offsets [${begin}, ${end}] end before they begin`,
        { tensor: name, begin, end },
      );
    }
    if (end > dataLen) {
      throw new AdapterFormatError(
        "offsets_out_of_range",
        `safetensors: tensor "${name}" data_offsets [${begin}, ${end}] extend past the ${dataLen}-byte data section`,
        { tensor: name, begin, end, dataBytes: dataLen },
      );
    }
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const expected = numel * DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      throw new AdapterFormatError(
        "shape_size_mismatch",
        `safetensors: tensor "${name}" ${dtype}[${(shape as number[]).join(", ")}] needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
        { tensor: name, expectedBytes: expected, actualBytes: end - begin },
      );
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // Tensors must tile [0, dataLen) exactly: no overlap, no gap, no trailing bytes.
  entries.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = 0;
  let prev = "";
  for (const e of entries) {
    if (e.begin < cursor) {
      throw new AdapterFormatError(
        "offsets_overlap",
        `safetensors: tensor "${e.name}" [${e.begin}, ${e.end}] overlaps tensor "${prev}" which ends at ${cursor}`,
        { tensor: e.name, other: prev, begin: e.begin, otherEnd: cursor },
      );
    }
    if (e.begin > cursor) {
      throw new AdapterFormatError(
        "offsets_gap",
        `safetensors: bytes [${cursor}, ${e.begin}) of the data section belong to no tensor (before "${e.name}")`,
        { tensor: e.name, gapBegin: cursor, gapEnd: e.begin },
      );
    }
    cursor = e.end;
    prev = e.name;
  }
  if (cursor !== dataLen) {
    throw new AdapterFormatError(
      "offsets_gap",
      `safetensors: the data section has ${dataLen - cursor} trailing bytes after the last tensor (tensors cover ${cursor} of ${dataLen})`,
      { covered: cursor, dataBytes: dataLen },
    );
  }

  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: bytes.subarray(dataStart + e.begin, dataStart + e.end) });
  }
  return { tensors, metadata };
}
