import { f16BitsToF32Bits } from "../dtype/f16.js";
import { allocateKernelBytes, claimForWidening, f16ToF32InMemory, KERNEL_MIN_BYTES, type KernelBytesOptions } from "../simd/kernels.js";
import { DEFAULT_MAX_HEADER_BYTES, type SafetensorsFile, type SafetensorsTensor } from "./read-safetensors.js";

/**
 * An all-F16 safetensors file received so that its load widens it to F32 where it lies: no output
 * allocation, no copy, and the F32 values reuse the pages the received halves already touched.
 *
 * Layout in one WebAssembly Memory (`allocateKernelBytes` with `leadBytes`, `widenInPlace`):
 *
 *   [lead P][u64 H][header: H bytes][data: D bytes of F16]          ← as received
 *   [  ...  F32 values: 2D bytes, from Q = P + 8 + H − D to the end ]   ← after the load
 *
 * Tensor t with data offsets [b, e) has its halves at src = Q + D + b and gets its F32 values at
 * dst = Q + 2b. Converted in file order, no store reaches a half not yet read: within t that needs
 * dst + (e − b) ≤ src ⇔ e ≤ D (`f16ToF32InMemory` checks it per call), and t's output ends at
 * Q + 2e ≤ Q + D + e, where the next tensor's halves begin. Q is 16-aligned and ≥ 0:
 * Q = roundUp16(max(0, 8 + H − D)), P = Q + D − 8 − H (≈ D for real adapters; untouched, so costing
 * address space only, until the load writes there).
 * Files with any other dtype (F32, BF16, mixed) get no lead and load as before (F32: zero-copy views).
 */

/** The header length and whether every tensor of the header in `head` is F16; null when `head` does not hold the whole header or it is not a JSON object of tensors. */
function f16HeaderOf(head: Uint8Array, fileBytes: number): { headerBytes: number } | null {
  if (head.length < 8) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const headerBytes = view.getUint32(0, true);
  if (view.getUint32(4, true) !== 0 || headerBytes > DEFAULT_MAX_HEADER_BYTES || 8 + headerBytes > head.length || 8 + headerBytes > fileBytes) return null;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(head.subarray(8, 8 + headerBytes)));
  } catch {
    return null; // the load reports it
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return null;
  const tensors = Object.entries(header).filter(([name]) => name !== "__metadata__");
  const allF16 = tensors.length > 0 && tensors.every(([, info]) => typeof info === "object" && info !== null && (info as { dtype?: unknown }).dtype === "F16");
  return allF16 ? { headerBytes } : null;
}

/** Where the F32 values start (Q above) for a file of `fileBytes` with an `headerBytes` header placed after `leadBytes`. */
function widenedStart(leadBytes: number, headerBytes: number, fileBytes: number): number {
  return leadBytes + 8 + headerBytes - (fileBytes - 8 - headerBytes);
}

/**
 * Bytes to receive a safetensors file of `fileBytes` into, given its first bytes `head` (at least the
 * 8-byte length and the header when the caller has them): an all-F16 file gets a WebAssembly Memory
 * with room to be widened in place by its one load (`readPeftAdapter` does it); any other file the
 * bytes `allocateKernelBytes` gives (a Memory of its own from 1 MiB, scanned in place when F32).
 * The caller writes the file into the returned view.
 */
export function allocateSafetensorsBytes(fileBytes: number, head: Uint8Array, options: Pick<KernelBytesOptions, "minBytes"> = {}): Uint8Array {
  if (fileBytes < (options.minBytes ?? KERNEL_MIN_BYTES)) return new Uint8Array(fileBytes); // a plain buffer either way: no header to read
  const f16 = f16HeaderOf(head, fileBytes);
  if (!f16) return allocateKernelBytes(fileBytes, options);
  const overhang = 8 + f16.headerBytes - (fileBytes - 8 - f16.headerBytes); // 8 + H − D
  const start = Math.ceil(Math.max(0, overhang) / 16) * 16; // Q
  return allocateKernelBytes(fileBytes, { ...options, leadBytes: start - overhang, widenInPlace: true });
}

export interface WidenedTensor {
  values: Float32Array;
  /** Whether every value is finite (from the same pass). */
  allFinite: boolean;
}

/**
 * Widens every tensor of `file` (read from `bytes`) to F32 in place, when `bytes` came from
 * `allocateSafetensorsBytes` for an all-F16 file and no load widened them before; null otherwise
 * (nothing written: the caller converts as usual). Afterwards `bytes` no longer hold the file.
 * Semantics: values = f16ToF32Reference(halves) per tensor, bit for bit (NaN payloads kept).
 * Cost: the SIMD kernel over the halves, its stores into pages the file already touched for the upper
 * half of the values and fresh pages (the lead) for the lower half.
 */
export function widenF16InPlace(bytes: Uint8Array, file: SafetensorsFile): Map<SafetensorsTensor, WidenedTensor> | null {
  const tensors = [...file.tensors.values()];
  if (tensors.length === 0 || tensors.some((t) => t.dtype !== "F16")) return null;
  const headerBytes = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(0, true);
  const start = widenedStart(bytes.byteOffset, headerBytes, bytes.length);
  if (start < 0 || start % 16 !== 0 || !claimForWidening(bytes)) return null;
  const dataStart = bytes.byteOffset + 8 + headerBytes;
  const out = new Map<SafetensorsTensor, WidenedTensor>();
  for (const t of tensors) {
    const n = t.data.length / 2;
    const dst = start + 2 * (t.data.byteOffset - dataStart);
    const allFinite = f16ToF32InMemory(bytes.buffer, t.data.byteOffset, dst, n, f16BitsToF32Bits);
    if (allFinite === null) throw new Error("widenF16InPlace: the claimed bytes are not in a kernel Memory"); // claimForWidening registers only those
    out.set(t, { values: new Float32Array(bytes.buffer, dst, n), allFinite });
  }
  return out;
}
