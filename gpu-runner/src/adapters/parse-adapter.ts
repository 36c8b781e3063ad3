/**
 * How the runner turns an adapter's two received files into a `LoraAdapter`: core's loader
 * (`loadPeftAdapter`: every check, F32 tensors as zero-copy views of the received bytes), with the
 * tensors it converts (F16, BF16) written into memory the caller hands out: the adapter cache's
 * buffers of evicted adapters (`adapter-cache.ts`), else uninitialized memory — never zeroed memory.
 *
 * Why: `new Float32Array(n)` is a calloc — on memory the heap recycled (the runner's allocator keeps
 * freed memory, scripts/lib/stack.ts RUNNER_ALLOCATOR_ENV) that is a whole extra write pass before
 * the conversion writes every element again, and on fresh memory a page fault per 4 KiB. Bench case
 * 6 measures this path (its F16 goal). Safe because the conversion overwrites every element (core's
 * tests load through a poisoned allocator and compare bit for bit).
 */
import { loadPeftAdapter } from "#core/peft/index";
import type { Float32Alloc } from "#core/dtype/float32-alloc";
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

/** The runner's adapter parser (`AdapterCache`'s `parse`): `loadPeftAdapter` with converted tensors written into `alloc(n)`. */
export function parseAdapter(configJson: string, safetensors: Uint8Array, alloc: Float32Alloc = uninitializedFloat32): LoraAdapter {
  return loadPeftAdapter(configJson, safetensors, { alloc });
}
