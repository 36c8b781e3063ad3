import { kernelModuleBytes } from "./kernel-module.js";

/**
 * WebAssembly SIMD kernels for the adapter cold path, with JS fallbacks decided by the caller.
 *
 * Where the bytes live decides what runs: a kernel reads only its own Memory, so
 * - bytes received into `allocateKernelBytes(n)` (a Memory of their own, never grown, so views on it
 *   never detach) are scanned in place: `scanF32InPlace` — no copy;
 * - F16 → F32 streams 64 KiB chunks through a small scratch Memory (in cache) and copies each
 *   converted chunk out: `f16ToF32Simd`.
 * Where WebAssembly cannot compile (a Cloudflare Worker refuses code generation from bytes) or the
 * host is big-endian, every function here answers `null` and the caller runs its JS path.
 */

interface KernelExports {
  scanF32(ptr: number, bytes: number): number;
  f16ToF32(src: number, dst: number, n: number): number;
}

/**
 * The part of the WebAssembly JS API used here, typed locally: core compiles under several lib
 * settings (WebWorker for core, Node types for the runner and tests) that declare it differently.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array<ArrayBuffer>) => object;
  Instance: new (module: object, imports: { env: { memory: WasmMemory } }) => { exports: unknown };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
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

/** Kernels bound to the Memory whose buffer a view lives in (registered by `allocateKernelBytes`). */
const byBuffer = new WeakMap<ArrayBufferLike, KernelExports>();

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

/**
 * `n` zeroed bytes to receive a file into (e.g. an adapter blob read from the network), placed in a
 * WebAssembly Memory of their own so the kernels can later scan them in place. Cost: the same fresh
 * pages as `new Uint8Array(n)` (bench case 6 measures both). Falls back to a plain Uint8Array for
 * files under `minBytes`, where the kernels are unavailable, or where the Memory cannot be had
 * (over 4 GiB, address space).
 */
export function allocateKernelBytes(n: number, minBytes = KERNEL_MIN_BYTES): Uint8Array {
  if (n === 0 || n < minBytes || n > 65535 * PAGE || !kernelModule() || !wasm) return new Uint8Array(n);
  let memory: WasmMemory;
  try {
    memory = new wasm.Memory({ initial: Math.ceil(n / PAGE) });
  } catch {
    return new Uint8Array(n);
  }
  const kernels = instantiate(memory);
  if (!kernels) return new Uint8Array(n);
  byBuffer.set(memory.buffer, kernels);
  return new Uint8Array(memory.buffer, 0, n);
}

/**
 * Whether every value of `x` is finite, scanned by the SIMD kernel where `x` lies in a buffer from
 * `allocateKernelBytes`; null when it does not (the caller scans in JS).
 * Semantics: true ⇔ ∀i isFinite(x[i]). Cost: one read of the bytes at SIMD speed (64 bytes per
 * iteration), the < 16-value tail in JS.
 */
export function allFiniteInPlace(x: Float32Array): boolean | null {
  const kernels = byBuffer.get(x.buffer);
  if (!kernels) return null;
  const vectorBytes = x.byteLength & ~63;
  if (kernels.scanF32(x.byteOffset, vectorBytes) !== 0) return false;
  for (let i = vectorBytes / 4; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
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
 * `tail` converts the < 8 halves the kernel leaves (the table path's per-value step).
 */
export function f16ToF32Simd(src: Uint16Array, out: Float32Array, tail: (h: number) => number): boolean | null {
  const s = scratchKernels();
  if (!s) return null;
  const srcBytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  const outBits = new Int32Array(out.buffer, out.byteOffset, out.length);
  const vectorHalves = src.length & ~7;
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
