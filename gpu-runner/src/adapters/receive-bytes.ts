/**
 * Where a received body's bytes go: the chunks the network delivered, copied once into a buffer
 * chosen when their total is known. The runner receives into plain buffers (`plainTarget`);
 * `safetensorsTarget` is the alternative where core's loader works on a blob in place
 * (`allocateSafetensorsBytes`: a WebAssembly Memory from 1 MiB; all-F16 files with room to be widened
 * to F32 where they lie). Bench case 6 measures receive + load both ways: a Memory's pages are always
 * fresh (first-touch faults), a plain buffer's are recycled from freed heap memory, which outweighs
 * what the in-place work saves.
 */
import { allocateSafetensorsBytes } from "#core/safetensors/widen-in-place";

/** Picks the buffer for `n` received bytes, given the chunks that hold them. */
export type ReceiveTarget = (n: number, chunks: Uint8Array[]) => Uint8Array;

/** A plain buffer. */
export const plainTarget: ReceiveTarget = (n) => new Uint8Array(n);

/** The first `n` bytes of `chunks` (fewer when they hold fewer): a view when the first chunk holds them. */
export function leadingBytes(chunks: Uint8Array[], n: number): Uint8Array {
  if (chunks.length === 0 || chunks[0].length >= n) return chunks[0]?.subarray(0, n) ?? new Uint8Array(0);
  const out = new Uint8Array(Math.min(n, chunks.reduce((sum, c) => sum + c.length, 0)));
  let at = 0;
  for (const c of chunks) {
    if (at >= out.length) break;
    out.set(c.subarray(0, out.length - at), at);
    at += c.length;
  }
  return out;
}

/** A safetensors blob: `allocateSafetensorsBytes` given its header (the 8-byte length, then that many bytes). */
export const safetensorsTarget: ReceiveTarget = (n, chunks) => {
  const prefix = leadingBytes(chunks, 8);
  const headerBytes = prefix.length === 8 ? new DataView(prefix.buffer, prefix.byteOffset, 8).getUint32(0, true) : 0;
  return allocateSafetensorsBytes(n, leadingBytes(chunks, Math.min(n, 8 + headerBytes)));
};

/** The `total` bytes of `chunks` in the buffer `target` picks, each chunk copied once at its offset. */
export function joinChunks(chunks: Uint8Array[], total: number, target: ReceiveTarget = plainTarget): Uint8Array {
  const out = target(total, chunks);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
