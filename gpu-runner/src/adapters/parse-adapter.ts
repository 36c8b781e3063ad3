/**
 * How the runner turns an adapter's two received files into a `LoraAdapter`: core's loader
 * (`loadPeftAdapter`: every check, F32 tensors as zero-copy views of the received bytes), with the
 * tensors it converts (F16, BF16) written into uninitialized memory instead of zeroed memory.
 *
 * Why: `new Float32Array(n)` is a calloc — on memory the heap recycled (the runner's allocator keeps
 * freed memory, scripts/lib/stack.ts RUNNER_ALLOCATOR_ENV) that is a whole extra write pass before
 * the conversion writes every element again. Bench case 6 measures this path (its F16 goal).
 * Safe because the conversion overwrites every element (core's tests load through a poisoned
 * allocator and compare bit for bit); a load that fails drops its arrays unread.
 */
import { loadPeftAdapter } from "#core/peft/index";
import type { LoraAdapter } from "#core/lora/types";

/**
 * `length` floats in memory nobody else holds, not zeroed (their contents are whatever the heap
 * had): `Buffer.allocUnsafeSlow` (malloc, never Node's shared pool) viewed as a Float32Array.
 * Only for arrays the caller overwrites entirely before anyone reads them.
 */
export function uninitializedFloat32(length: number): Float32Array {
  const bytes = Buffer.allocUnsafeSlow(length * 4);
  // malloc'd backing stores start 16-aligned at offset 0; checked rather than assumed.
  if (bytes.byteOffset % 4 !== 0) return new Float32Array(length);
  return new Float32Array(bytes.buffer, bytes.byteOffset, length);
}

/** The runner's adapter parser (`AdapterCache`'s `parse`): `loadPeftAdapter` with `uninitializedFloat32` outputs. */
export function parseAdapter(configJson: string, safetensors: Uint8Array): LoraAdapter {
  return loadPeftAdapter(configJson, safetensors, { alloc: uninitializedFloat32 });
}
