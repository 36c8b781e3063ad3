/**
 * Where a computed Float32 array's memory comes from, chosen by the caller: core allocates with
 * `new Float32Array(n)` by default (zeroed, fresh or recycled by the host as it likes), while the
 * runner passes allocators that skip what it knows is wasted (zeroing memory every element of which
 * is about to be overwritten, fresh pages where a pool has recycled ones). Used by `composeMix`
 * (`options.alloc`) and the adapter loader (`loadPeftAdapter` `options.alloc`).
 *
 * Contract: `alloc(length)` returns an array of exactly `length` floats that nothing else reads or
 * writes; its contents may be anything (the callers overwrite every element).
 */
export type Float32Alloc = (length: number) => Float32Array;

/** `new Float32Array(length)`: the default allocator. */
export const freshFloat32: Float32Alloc = (length) => new Float32Array(length);

/** `alloc(length)`, checked: a wrong length would leave values unwritten or be written out of bounds. */
export function allocatedFloat32(alloc: Float32Alloc, length: number, what: string): Float32Array {
  const array = alloc(length);
  if (!(array instanceof Float32Array) || array.length !== length) throw new Error(`${what} alloc(${length}) returned ${array?.length} floats`);
  return array;
}
