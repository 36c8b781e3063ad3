import { bf16ToF32 } from "../dtype/bf16.js";
import { f16ToF32, f16ToF32AllFinite } from "../dtype/f16.js";
import { allocatedFloat32, type Float32Alloc, freshFloat32 } from "../dtype/float32-alloc.js";
import { allFiniteInPlace, allFiniteStreamed } from "../simd/kernels.js";
import type { SafetensorsDtype } from "./dtypes.js";

export const IS_LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Byte-swaps 2- or 4-byte elements (only used on a big-endian host). */
function swapToHost(src: Uint8Array, width: 2 | 4): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i += width) {
    for (let k = 0; k < width; k++) out[i + k] = src[i + width - 1 - k];
  }
  return out;
}

/** A Uint16Array over `data` (little-endian on disk), copying only when unaligned or big-endian host. */
export function u16View(data: Uint8Array): Uint16Array {
  if (!IS_LITTLE_ENDIAN_HOST) return new Uint16Array(swapToHost(data, 2).buffer);
  if (data.byteOffset % 2 === 0) return new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
  return new Uint16Array(data.slice().buffer);
}

/**
 * A tensor's elements as Float32.
 * Semantics: out[i] = value of element i (F16/BF16 widened exactly).
 * F32 on a little-endian host with a 4-byte-aligned view is returned zero-copy (it aliases the
 * file bytes); unaligned F32 is copied with one memcpy; F16 goes through a 64 Ki lookup table.
 */
export function tensorToFloat32(t: { dtype: SafetensorsDtype; data: Uint8Array }): Float32Array {
  const { data } = t;
  switch (t.dtype) {
    case "F32": {
      if (!IS_LITTLE_ENDIAN_HOST) return new Float32Array(swapToHost(data, 4).buffer);
      if (data.byteOffset % 4 === 0) return new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
      return new Float32Array(data.slice().buffer);
    }
    case "F16":
      return f16ToF32(u16View(data));
    case "BF16":
      return bf16ToF32(u16View(data));
  }
}

/**
 * `tensorToFloat32(t)` and whether every value is finite when that came for free with it:
 * F16 converts and checks in one pass; F32 views are scanned by the SIMD kernel, in place when the
 * bytes were received into `allocateKernelBytes`, else streamed through its scratch Memory.
 * `allFinite` is null when nothing was checked (the caller scans).
 * F16 and BF16 values are written into `alloc(n)` (every element overwritten, so it may hand out
 * uninitialized or recycled memory: bench case 6's baseline of the converting load does).
 */
export function tensorToFloat32Checked(t: { dtype: SafetensorsDtype; data: Uint8Array }, alloc: Float32Alloc = freshFloat32): { values: Float32Array; allFinite: boolean | null } {
  if (t.dtype === "F16") {
    const src = u16View(t.data);
    const values = allocatedFloat32(alloc, src.length, "tensor");
    return { values, allFinite: f16ToF32AllFinite(src, values) };
  }
  if (t.dtype === "BF16") {
    const src = u16View(t.data);
    return { values: bf16ToF32(src, allocatedFloat32(alloc, src.length, "tensor")), allFinite: null };
  }
  const values = tensorToFloat32(t);
  if (values.buffer !== t.data.buffer) return { values, allFinite: null };
  return { values, allFinite: allFiniteInPlace(values) ?? allFiniteStreamed(values) };
}

/** Raw little-endian bytes of host-order 2/4-byte elements (a view on little-endian hosts). */
export function hostToLittleEndianBytes(arr: Float32Array | Uint16Array): Uint8Array {
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  return IS_LITTLE_ENDIAN_HOST ? bytes : swapToHost(bytes, arr.BYTES_PER_ELEMENT as 2 | 4);
}
