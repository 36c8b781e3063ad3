import { kernelModuleBytes } from "./kernel-module.js";

/**
 * WebAssembly SIMD kernels for the adapter cold path and for composition (the composed factors' bound
 * check, the transposes of `composeMix`), with JS fallbacks decided by the caller.
 *
 * Where the bytes live decides what runs: a kernel reads only its own Memory, so
 * - bytes received into `allocateKernelBytes(n)` (a Memory of their own, never grown, so views on it
 *   never detach) are scanned in place: `allFiniteInPlace` — no copy;
 * - F16 bytes received with room for their F32 widening (`allocateKernelBytes(n, { leadBytes, widenInPlace })`,
 *   see `safetensors/widen-in-place.ts`) convert inside that Memory: `f16ToF32InMemory` — no copy;
 * - any other F16 → F32 streams 64 KiB chunks through a small scratch Memory (in cache) and copies
 *   each converted chunk out: `f16ToF32Simd`; scans of any buffer stream the same way
 *   (`allFiniteStreamed`, `allWithinStreamed`);
 * - transposes run in a workspace Memory of their own that grows to the largest block asked for
 *   (`transposer`: the caller copies a matrix in and the transposed blocks out).
 * Where WebAssembly cannot compile (a Cloudflare Worker refuses code generation from bytes) or the
 * host is big-endian, every function here answers `null` and the caller runs its JS path.
 */

interface KernelExports {
  scanF32(ptr: number, bytes: number): number;
  exceedsF32(ptr: number, bytes: number, limitBits: number): number;
  transposeF32(src: number, rows: number, cols: number, srcStride: number, dst: number, dstStride: number): void;
  transposeScaleF32(src: number, rows: number, cols: number, srcStride: number, dst: number, dstStride: number, coef: number): void;
  f16ToF32(src: number, dst: number, n: number): number;
  scanHalves(ptr: number, bytes: number, exponentMask: number): number;
}

/**
 * The part of the WebAssembly JS API used here, typed locally: core compiles under several lib
 * settings (WebWorker for core, Node types for the runner and tests) that declare it differently.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array<ArrayBuffer>) => object;
  Instance: new (module: object, imports: { env: { memory: WasmMemory } }) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const PAGE = 65536;

let compiled: object | null | undefined;
/** The compiled module, or null where WebAssembly SIMD is unavailable (compiled once). */
function kernelModule(): object | null {
  if (compiled === undefined) {
    try {
      // Throws where WebAssembly is absent, SIMD unsupported, or code generation disallowed.
      compiled = LITTLE_ENDIAN && wasm ? new wasm.Module(kernelModuleBytes()) : null;
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

function instantiate(memory: WasmMemory): KernelExports | null {
  const module = kernelModule();
  if (!module || !wasm) return null;
  return new wasm.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
}

/** What `allocateKernelBytes` registered for the Memory a view lives in. */
interface KernelMemory {
  kernels: KernelExports;
  /** Where the received bytes start in the Memory (after `leadBytes`) and how many there are. */
  fileOffset: number;
  fileLength: number;
  /** Whether one load may widen the bytes in place (`claimForWidening`), and whether one did. */
  widening: "never" | "allowed" | "claimed";
}
const byBuffer = new WeakMap<ArrayBufferLike, KernelMemory>();

/** Whether the SIMD kernels can run here. */
export function simdKernelsAvailable(): boolean {
  return kernelModule() !== null;
}

/**
 * Below this size a file gets a plain buffer: its JS scan takes microseconds, while every Memory
 * costs at least one 64 KiB page and V8 reserves ≈ 10 GiB of address space for it (a runner caching
 * thousands of small adapters would otherwise run out of address space, not of memory).
 */
export const KERNEL_MIN_BYTES = 1 << 20;

export interface KernelBytesOptions {
  /** Below this size a plain buffer (default `KERNEL_MIN_BYTES`). */
  minBytes?: number;
  /** Zeroed bytes reserved in front of the returned view, in the same Memory (default 0). */
  leadBytes?: number;
  /**
   * The bytes are for one load, which may overwrite them and the lead while widening them
   * (`claimForWidening`). Default false: nothing here ever writes to them.
   */
  widenInPlace?: boolean;
}

/**
 * `n` zeroed bytes to receive a file into (e.g. an adapter blob read from the network), placed in a
 * WebAssembly Memory of their own (after `leadBytes` of room) so the kernels can later work on them
 * in place. Cost: the same fresh pages as `new Uint8Array(n)` (bench case 6 measures both); the lead
 * costs address space only until something writes there. Falls back to a plain Uint8Array for files
 * under `minBytes`, where the kernels are unavailable, or where the Memory cannot be had (over 4 GiB,
 * address space).
 */
export function allocateKernelBytes(n: number, options: KernelBytesOptions = {}): Uint8Array {
  const { minBytes = KERNEL_MIN_BYTES, leadBytes = 0, widenInPlace = false } = options;
  const total = leadBytes + n;
  if (n === 0 || n < minBytes || total > 65535 * PAGE || !kernelModule() || !wasm) return new Uint8Array(n);
  let memory: WasmMemory;
  try {
    const pages = Math.ceil(total / PAGE);
    memory = new wasm.Memory({ initial: pages, maximum: pages });
  } catch {
    return new Uint8Array(n);
  }
  const kernels = instantiate(memory);
  if (!kernels) return new Uint8Array(n);
  byBuffer.set(memory.buffer, { kernels, fileOffset: leadBytes, fileLength: n, widening: widenInPlace ? "allowed" : "never" });
  return new Uint8Array(memory.buffer, leadBytes, n);
}

/**
 * Whether `bytes` are exactly a file that `allocateKernelBytes` placed for one load that widens in
 * place (`widenInPlace`), not yet claimed; claims them (a second call answers false). The claimer may
 * then write anywhere in [0, bytes.byteOffset + bytes.length) of their Memory.
 */
export function claimForWidening(bytes: Uint8Array): boolean {
  const m = fileRecord(bytes);
  if (m?.widening !== "allowed") return false;
  m.widening = "claimed";
  return true;
}

/**
 * Takes away the one widening in place `bytes` were placed for (`widenInPlace`), for good: a load that
 * keeps views of them (`keepHalves`) calls it, so no later load overwrites what those views read.
 */
export function forbidWidening(bytes: Uint8Array): void {
  const m = fileRecord(bytes);
  if (m?.widening === "allowed") m.widening = "never";
}

/** Whether a load already widened `bytes` in place (`claimForWidening`): their contents are gone. */
export function wasWidened(bytes: Uint8Array): boolean {
  return fileRecord(bytes)?.widening === "claimed";
}

/** The record of the Memory `bytes` live in when they are exactly the file placed there. */
function fileRecord(bytes: Uint8Array): KernelMemory | null {
  const m = byBuffer.get(bytes.buffer);
  return m && bytes.byteOffset === m.fileOffset && bytes.length === m.fileLength ? m : null;
}

/**
 * Whether every value of `x` is finite, scanned by the SIMD kernel where `x` lies in a buffer from
 * `allocateKernelBytes`; null when it does not (the caller scans in JS).
 * Semantics: true ⇔ ∀i isFinite(x[i]). Cost: one read of the bytes at SIMD speed (64 bytes per
 * iteration), the < 16-value tail in JS.
 */
export function allFiniteInPlace(x: Float32Array): boolean | null {
  const kernels = byBuffer.get(x.buffer)?.kernels;
  if (!kernels) return null;
  const vectorBytes = x.byteLength & ~63;
  if (kernels.scanF32(x.byteOffset, vectorBytes) !== 0) return false;
  for (let i = vectorBytes / 4; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}

/**
 * The vector part of a streamed scan: the whole 64-byte blocks of `view` copied through the scratch
 * Memory in 64 KiB chunks, `scan(ptr, n)` (a kernel: nonzero when something is flagged) run on each.
 * Returns the byte length scanned (the caller checks the rest in JS), or −1 as soon as a chunk is
 * flagged. Shared by `allFiniteStreamed`, `allWithinStreamed` and `halvesAllFiniteStreamed`.
 */
function scanChunks(s: NonNullable<ReturnType<typeof scratchKernels>>, view: ArrayBufferView, scan: (ptr: number, n: number) => number): number {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const vectorBytes = view.byteLength & ~63;
  for (let at = 0; at < vectorBytes; at += s.in.length) {
    const n = Math.min(s.in.length, vectorBytes - at);
    s.in.set(bytes.subarray(at, at + n));
    if (scan(SCRATCH_IN, n) !== 0) return -1;
  }
  return vectorBytes;
}

/**
 * Whether every value of `x` is finite, by the SIMD kernel over 64 KiB chunks copied through the
 * scratch Memory: for values in any buffer (a plain one included); null where the kernels are
 * unavailable (the caller scans in JS).
 * Semantics: true ⇔ ∀i isFinite(x[i]). Cost: per chunk a copy into the scratch Memory (in cache)
 * and the scan; the < 16-value tail in JS. Faster than any JS pass over the values (bench case 6).
 */
export function allFiniteStreamed(x: Float32Array): boolean | null {
  const s = scratchKernels();
  if (!s) return null;
  const vectorBytes = scanChunks(s, x, (ptr, n) => s.kernels.scanF32(ptr, n));
  if (vectorBytes < 0) return false;
  for (let i = vectorBytes / 4; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}

/**
 * Whether no 16-bit value of `bits` has all of `exponentMask`'s bits set — i.e. every value is finite, for
 * the format's exponent mask (F16 0x7c00, BF16 0x7f80) — by the SIMD kernel over 64 KiB chunks copied
 * through the scratch Memory (any buffer); null where the kernels are unavailable (the caller scans in JS).
 * Semantics: true ⇔ ∀i (bits[i] & exponentMask) ≠ exponentMask. Cost: as `allFiniteStreamed`, per byte.
 */
export function halvesAllFiniteStreamed(bits: Uint16Array, exponentMask: number): boolean | null {
  const s = scratchKernels();
  if (!s) return null;
  const vectorBytes = scanChunks(s, bits, (ptr, n) => s.kernels.scanHalves(ptr, n, exponentMask));
  if (vectorBytes < 0) return false;
  for (let i = vectorBytes / 2; i < bits.length; i++) if ((bits[i]! & exponentMask) === exponentMask) return false;
  return true;
}

/**
 * The bit pattern of the largest float32 ≤ `limit` (a finite limit ≥ 0 below float32's range):
 * for every float32 v, |v| ≤ limit ⇔ (bits(v) & 0x7fffffff) ≤ this, as integers (NaN: never).
 */
export function float32LimitBits(limit: number): number {
  if (!(limit >= 0) || Math.fround(limit) === Infinity) throw new RangeError(`limit must be finite, ≥ 0 and within float32's range, got ${limit}`);
  const bits = new Uint32Array(new Float32Array([limit + 0]).buffer)[0]!; // + 0: −0 → +0 (its sign bit would read as 2^31)
  return Math.fround(limit) > limit ? bits - 1 : bits; // rounded up to the next float32: one step down
}

/**
 * Whether every value of `x` has |v| ≤ `limit` (false for NaN and ±Inf), by the SIMD kernel over
 * 64 KiB chunks copied through the scratch Memory (any buffer); null where the kernels are unavailable
 * (the caller scans in JS).
 * Semantics: true ⇔ ∀i |x[i]| ≤ limit, for a finite limit ≥ 0. Cost: as `allFiniteStreamed`: per chunk a
 * copy into the scratch Memory (in cache) and the scan (one integer compare per value); the < 16-value tail in JS.
 */
export function allWithinStreamed(x: Float32Array, limit: number): boolean | null {
  const s = scratchKernels();
  if (!s) return null;
  const limitBits = float32LimitBits(limit);
  const vectorBytes = scanChunks(s, x, (ptr, n) => s.kernels.exceedsF32(ptr, n, limitBits));
  if (vectorBytes < 0) return false;
  for (let i = vectorBytes / 4; i < x.length; i++) if (!(Math.abs(x[i]!) <= limit)) return false;
  return true;
}

/**
 * A workspace for transposing blocks with the SIMD kernels: `src` and `dst` are Float32Array views
 * on a Memory of its own (valid until the next `transposer` call, which may grow it).
 */
export interface Transposer {
  /** [srcFloats] the matrix to transpose, written by the caller (rows `cols` floats apart). */
  readonly src: Float32Array;
  /** [dstFloats] where the transposed blocks land. */
  readonly dst: Float32Array;
  /**
   * Semantics: dst[dstOffset + j·dstStride + k] = f(src[k·cols + j]) for k < rows, j < cols, with
   * f(x) = x when `coef` is undefined, else f32(coef · x) (the product in f64, rounded once: what
   * `f32Array[i] = coef * x` stores) — bit for bit the JS loops for every value but a signalling NaN,
   * whose bits the plain kernel keeps where a JS copy quiets it. The kernel takes the rows and columns
   * up to multiples of 4; the rest (< 4 rows, < 4 columns) is done in JS here. Throws a RangeError when
   * the block does not fit the workspace (nothing written).
   */
  transpose(rows: number, cols: number, dstOffset: number, dstStride: number, coef?: number): void;
  /** Whether dst[0, floats) all satisfy |v| ≤ limit (NaN, ±Inf never): the bound scan in place, no copy. */
  dstWithin(floats: number, limit: number): boolean;
  /**
   * Writes F16 `bits` widened to F32 into src[0, bits.length) (at most `srcFloats`): the halves copied
   * into a staging area of the workspace and converted there by the kernel (as `f16ToF32Simd`, exact,
   * NaN payloads kept), the < 16-half tail by `tail`. One copy of 2 bytes per value, nothing copied out.
   */
  widenF16(bits: Uint16Array, tail: (h: number) => number): void;
}

let transposeMemory: { kernels: KernelExports; memory: WasmMemory } | null | undefined;
/**
 * The workspace with room for `srcFloats` and `dstFloats`, or null where the kernels are unavailable
 * or the Memory cannot grow to that (the caller runs its JS loops). The Memory is kept and only grows:
 * it holds the largest module composed so far (under 1 MB for loraedge-small; Aᵗ and Bᵗ of a 4096-wide
 * target at R = 128, 4 MiB). Views from an earlier call are detached once a call grows it.
 */
export function transposer(srcFloats: number, dstFloats: number): Transposer | null {
  if (transposeMemory === undefined) {
    const memory = kernelModule() && wasm ? new wasm.Memory({ initial: 1 }) : null;
    const kernels = memory ? instantiate(memory) : null;
    transposeMemory = kernels && memory ? { kernels, memory } : null;
  }
  if (!transposeMemory) return null;
  const { kernels, memory } = transposeMemory;
  const dstAt = (srcFloats * 4 + 15) & ~15;
  const stageAt = (dstAt + dstFloats * 4 + 15) & ~15; // [srcFloats] halves for widenF16
  const need = stageAt + srcFloats * 2;
  if (need > memory.buffer.byteLength) {
    try {
      memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
    } catch {
      return null; // past 4 GiB or out of memory
    }
  }
  const src = new Float32Array(memory.buffer, 0, srcFloats);
  const dst = new Float32Array(memory.buffer, dstAt, dstFloats);
  const stage = new Uint16Array(memory.buffer, stageAt, srcFloats);
  return {
    src,
    dst,
    transpose(rows, cols, dstOffset, dstStride, coef) {
      if (rows * cols > srcFloats || (rows > 0 && cols > 0 && (dstStride < rows || dstOffset < 0 || dstOffset + (cols - 1) * dstStride + rows > dstFloats))) {
        throw new RangeError(`transpose of ${rows}×${cols} into stride ${dstStride} at ${dstOffset} does not fit the workspace (${srcFloats} source, ${dstFloats} destination floats)`);
      }
      const r4 = rows & ~3;
      const c4 = cols & ~3;
      if (r4 > 0 && c4 > 0) {
        if (coef === undefined) kernels.transposeF32(0, r4, c4, cols, dstAt + 4 * dstOffset, dstStride);
        else kernels.transposeScaleF32(0, r4, c4, cols, dstAt + 4 * dstOffset, dstStride, coef);
      }
      const c = coef ?? 1;
      const move = coef === undefined;
      for (let k = 0; k < rows; k++) {
        for (let j = k < r4 ? c4 : 0; j < cols; j++) dst[dstOffset + j * dstStride + k] = move ? src[k * cols + j]! : c * src[k * cols + j]!;
      }
    },
    dstWithin(floats, limit) {
      if (floats > dstFloats) throw new RangeError(`dstWithin: ${floats} floats, the workspace holds ${dstFloats}`);
      const vectorFloats = floats & ~15;
      if (vectorFloats > 0 && kernels.exceedsF32(dstAt, vectorFloats * 4, float32LimitBits(limit)) !== 0) return false;
      for (let i = vectorFloats; i < floats; i++) if (!(Math.abs(dst[i]!) <= limit)) return false;
      return true;
    },
    widenF16(bits, tail) {
      const n = bits.length;
      if (n > srcFloats) throw new RangeError(`widenF16: ${n} halves, the workspace holds ${srcFloats} floats`);
      const vector = n & ~15;
      stage.set(vector === n ? bits : bits.subarray(0, vector));
      if (vector > 0) kernels.f16ToF32(stageAt, 0, vector);
      const srcBits = new Int32Array(memory.buffer, 0, n);
      for (let i = vector; i < n; i++) srcBits[i] = tail(bits[i]!);
    },
  };
}

/** Scratch for streaming conversions: 64 KiB of halves in, 128 KiB of f32 out (stays in L2). */
const CHUNK_HALVES = 32768;
const SCRATCH_IN = 0;
const SCRATCH_OUT = CHUNK_HALVES * 2;
let scratch: { kernels: KernelExports; in: Uint8Array; out: Int32Array } | null | undefined;
function scratchKernels() {
  if (scratch !== undefined) return scratch;
  const memory = kernelModule() && wasm ? new wasm.Memory({ initial: Math.ceil((SCRATCH_OUT + CHUNK_HALVES * 4) / PAGE) }) : null;
  const kernels = memory ? instantiate(memory) : null;
  scratch = kernels && memory ? { kernels, in: new Uint8Array(memory.buffer, SCRATCH_IN, CHUNK_HALVES * 2), out: new Int32Array(memory.buffer, SCRATCH_OUT, CHUNK_HALVES) } : null;
  return scratch;
}

/**
 * F16 bits → F32 bit patterns into `out` by the SIMD kernel, the NaN/Inf check in the same pass.
 * Returns whether every value is finite, or null where the kernels are unavailable (nothing written).
 * Semantics: as `f16ToF32Reference` (exact, NaN payloads kept); true ⇔ no input has exponent 31.
 * Cost: per 64 KiB chunk a copy into the scratch Memory, the kernel, a copy of 128 KiB out — all
 * in cache; the output's own pages are the rest (bench case 6: the fresh-output floor beside it).
 * `tail` converts the < 16 halves the kernel leaves (the table path's per-value step).
 */
export function f16ToF32Simd(src: Uint16Array, out: Float32Array, tail: (h: number) => number): boolean | null {
  const s = scratchKernels();
  if (!s) return null;
  const srcBytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  const outBits = new Int32Array(out.buffer, out.byteOffset, out.length);
  const vectorHalves = src.length & ~15;
  let nonFinite = 0;
  for (let at = 0; at < vectorHalves; at += CHUNK_HALVES) {
    const n = Math.min(CHUNK_HALVES, vectorHalves - at);
    s.in.set(srcBytes.subarray(at * 2, (at + n) * 2));
    nonFinite |= s.kernels.f16ToF32(SCRATCH_IN, SCRATCH_OUT, n);
    outBits.set(n === CHUNK_HALVES ? s.out : s.out.subarray(0, n), at);
  }
  for (let i = vectorHalves; i < src.length; i++) {
    outBits[i] = tail(src[i]);
    if ((src[i] & 0x7c00) === 0x7c00) nonFinite = 1;
  }
  return nonFinite === 0;
}

/**
 * F16 → F32 inside the Memory of bytes from `allocateKernelBytes`: the `n` halves at byte `src` of
 * `buffer` → `n` f32 bit patterns at byte `dst` (4-aligned), by the kernel reading and writing that
 * Memory directly. Returns whether every value is finite, or null when `buffer` is not such a Memory
 * (nothing written). The ranges may overlap when the output ends no later than the input does
 * (dst + 4n ≤ src + 2n): the kernel loads each 16 halves before storing their 64 bytes, so no store
 * reaches a half not yet read; the < 16-half tail is read before it is written.
 * Semantics: as `f16ToF32Reference` (exact, NaN payloads kept); true ⇔ no input has exponent 31.
 * Cost: one read of the halves and one write of the f32 values (fresh pages where never touched), no copy.
 */
export function f16ToF32InMemory(buffer: ArrayBufferLike, src: number, dst: number, n: number, tail: (h: number) => number): boolean | null {
  const kernels = byBuffer.get(buffer)?.kernels;
  if (!kernels) return null;
  if (dst % 4 !== 0 || src % 2 !== 0 || Math.max(src + 2 * n, dst + 4 * n) > buffer.byteLength) throw new RangeError(`f16ToF32InMemory: src ${src}, dst ${dst}, n ${n} outside the Memory or misaligned`);
  if (dst < src + 2 * n && src < dst + 4 * n && dst + 2 * n > src) throw new RangeError(`f16ToF32InMemory: output [${dst}, ${dst + 4 * n}) would overwrite halves of [${src}, ${src + 2 * n}) before they are read`);
  const vector = n & ~15;
  const tailHalves = Array.from(new Uint16Array(buffer, src + 2 * vector, n - vector));
  let nonFinite = vector > 0 ? kernels.f16ToF32(src, dst, vector) : 0;
  const out = new Int32Array(buffer, dst + 4 * vector, n - vector);
  tailHalves.forEach((h, i) => {
    out[i] = tail(h);
    if ((h & 0x7c00) === 0x7c00) nonFinite = 1;
  });
  return nonFinite === 0;
}
