/**
 * The bytes of a tiny hand-assembled WebAssembly module (SIMD, 128-bit) with two kernels over its
 * imported memory. No toolchain: the module is assembled here from named opcodes, so every byte
 * is explained below; `simd.test.ts` holds both kernels equal to the plain JS references.
 *
 * Module layout (WebAssembly binary format 1.0 + fixed-width SIMD):
 *   magic "\0asm", version 1
 *   §1 type      t0 = (i32, i32) → i32          t1 = (i32, i32, i32) → i32
 *   §2 import    "env" "memory": memory, limits { min 0 }   (the caller's Memory; never grown here)
 *   §3 function  f0 : t0, f1 : t1
 *   §7 export    "scanF32" = f0, "f16ToF32" = f1
 *   §10 code     the two bodies below
 *
 * f0 scanF32(ptr, bytes) → 1 if some f32 word in [ptr, ptr + bytes) is ±Inf or NaN, else 0.
 *   bytes must be a multiple of 64 (the caller scans the < 64-byte tail itself).
 *   Semantics: a word w is non-finite ⇔ (w & 0x7f800000) = 0x7f800000 (exponent all ones).
 *   Per 64 bytes: 4 × { v = v128.load; acc |= i32x4.eq(v & EXP, EXP) }; at the end any_true(acc).
 *
 * f1 f16ToF32(src, dst, n) → 1 if some of the n halves at src is ±Inf or NaN, else 0; writes the n
 *   f32 bit patterns at dst (exact; NaN payloads kept). n must be a multiple of 8.
 *   Per 8 halves: h = v128.load(src); for x in (extend_low_u(h), extend_high_u(h)) — i32x4 of
 *   f16 bits s|eeeee|mmmmmmmmmm:
 *     em     = x & 0x7fff                    (exponent and mantissa)
 *     e13    = em << 13                      (f16 fields moved to the f32 positions)
 *     inf    = em > 0x7bff  (i32x4.gt_s)     (exponent 31: ±Inf / NaN)
 *     normal = e13 + 0x38000000 + (inf & 0x38000000)   (rebias 15 → 127; exponent 31 → 255)
 *     sub    = f32(e13 + 0x38800000) − f32(0x38800000)  (em < 0x400: 2^−14·(1 + m/1024) − 2^−14
 *                                                        = m·2^−24, exact by Sterbenz; 0 → +0)
 *     out    = bitselect(sub, normal, em < 0x400) | ((x & 0x8000) << 16)
 *     flag  |= inf
 *   (the same bits as `f16BitsToF32Bits` for all 65 536 inputs: the test checks every one).
 */

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32.const immediates). */
function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

const I32 = 0x7f;
const V128 = 0x7b;
/** 0xFD prefix + LEB128 SIMD opcode (numbers from the WebAssembly SIMD binary encoding). */
const simd = (op: number) => [0xfd, ...uleb(op)];

// Core instructions.
const get = (i: number) => [0x20, i]; // local.get
const set = (i: number) => [0x21, i]; // local.set
const i32Const = (k: number) => [0x41, ...sleb(k)];
const i32Add = [0x6a];
const i32Shl = [0x74];
const i32GeU = [0x4f];
const block = [0x02, 0x40]; // block (no result)
const loop = [0x03, 0x40]; // loop (no result)
const brIf = (depth: number) => [0x0d, depth];
const br = (depth: number) => [0x0c, depth];
const end = [0x0b];

// SIMD instructions (memarg: align 2^4 = 16 bytes as a hint, offset).
const v128Load = (offset: number) => [...simd(0x00), 4, ...uleb(offset)];
const v128Store = (offset: number) => [...simd(0x0b), 4, ...uleb(offset)];
const i32x4Splat = simd(0x11);
const splat = (k: number) => [...i32Const(k), ...i32x4Splat];
const i32x4Eq = simd(0x37);
const i32x4LtS = simd(0x39);
const i32x4GtS = simd(0x3b);
const v128And = simd(0x4e);
const v128Or = simd(0x50);
const v128Bitselect = simd(0x52);
const v128AnyTrue = simd(0x53);
const i32x4ExtendLowI16x8U = simd(0xa9);
const i32x4ExtendHighI16x8U = simd(0xaa);
const i32x4Shl = simd(0xab);
const i32x4Add = simd(0xae);
const f32x4Sub = simd(0xe5);

/** f0 scanF32: params 0 ptr, 1 bytes (→ end); locals 2 acc, 3 EXP (v128). */
function scanF32Body(): number[] {
  const [ptr, endAt, acc, exp] = [0, 1, 2, 3];
  const b = [
    ...[1, 2, V128], // local declarations: 2 × v128
    ...get(ptr), ...get(endAt), ...i32Add, ...set(endAt), // end = ptr + bytes
    ...splat(0x7f800000), ...set(exp),
    ...block, ...loop,
    ...get(ptr), ...get(endAt), ...i32GeU, ...brIf(1), // while ptr < end
  ];
  for (let k = 0; k < 4; k++) {
    b.push(...get(acc), ...get(ptr), ...v128Load(16 * k), ...get(exp), ...v128And, ...get(exp), ...i32x4Eq, ...v128Or, ...set(acc));
  }
  b.push(...get(ptr), ...i32Const(64), ...i32Add, ...set(ptr), ...br(0), ...end, ...end);
  b.push(...get(acc), ...v128AnyTrue, ...end);
  return b;
}

/**
 * f1 f16ToF32: params 0 src, 1 dst, 2 n (→ end); locals 3 flag, 4 h, 5 x, 6 e13, 7 em, 8 inf, and the
 * constants splatted once before the loop: 9 0x7fff, 10 0x7bff, 11 0x38800000, 12 0x38000000,
 * 13 0x0400, 14 0x8000 (all v128).
 */
function f16ToF32Body(): number[] {
  const [src, dst, endAt, flag, h, x, e13, em, inf] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [emMask, maxFinite, subBias, rebias, minNormal, signBit] = [9, 10, 11, 12, 13, 14];
  const b = [
    ...[1, 12, V128], // local declarations: 12 × v128
    ...get(src), ...get(endAt), ...i32Const(1), ...i32Shl, ...i32Add, ...set(endAt), // end = src + 2n
    ...splat(0x7fff), ...set(emMask),
    ...splat(0x7bff), ...set(maxFinite),
    ...splat(0x38800000), ...set(subBias),
    ...splat(0x38000000), ...set(rebias),
    ...splat(0x0400), ...set(minNormal),
    ...splat(0x8000), ...set(signBit),
    ...block, ...loop,
    ...get(src), ...get(endAt), ...i32GeU, ...brIf(1), // while src < end
    ...get(src), ...v128Load(0), ...set(h),
  ];
  for (const [extend, offset] of [[i32x4ExtendLowI16x8U, 0], [i32x4ExtendHighI16x8U, 16]] as const) {
    b.push(
      ...get(h), ...extend, ...set(x),
      ...get(x), ...get(emMask), ...v128And, ...set(em),
      ...get(em), ...i32Const(13), ...i32x4Shl, ...set(e13),
      ...get(em), ...get(maxFinite), ...i32x4GtS, ...set(inf),
      ...get(flag), ...get(inf), ...v128Or, ...set(flag),
      ...get(dst), // store address
      ...get(e13), ...get(subBias), ...i32x4Add, ...get(subBias), ...f32x4Sub, // sub
      ...get(e13), ...get(rebias), ...i32x4Add, ...get(inf), ...get(rebias), ...v128And, ...i32x4Add, // normal
      ...get(em), ...get(minNormal), ...i32x4LtS, // em < 0x400
      ...v128Bitselect,
      ...get(x), ...get(signBit), ...v128And, ...i32Const(16), ...i32x4Shl, ...v128Or, // | sign
      ...v128Store(offset),
    );
  }
  b.push(...get(src), ...i32Const(16), ...i32Add, ...set(src), ...get(dst), ...i32Const(32), ...i32Add, ...set(dst), ...br(0), ...end, ...end);
  b.push(...get(flag), ...v128AnyTrue, ...end);
  return b;
}

/** The module's bytes (see the layout above). */
export function kernelModuleBytes(): Uint8Array<ArrayBuffer> {
  const f0 = scanF32Body();
  const f1 = f16ToF32Body();
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [2, 0x60, 2, I32, I32, 1, I32, 0x60, 3, I32, I32, I32, 1, I32]),
    ...section(2, [1, ...name("env"), ...name("memory"), 0x02, 0x00, 0]),
    ...section(3, [2, 0, 1]),
    ...section(7, [2, ...name("scanF32"), 0x00, 0, ...name("f16ToF32"), 0x00, 1]),
    ...section(10, [2, ...uleb(f0.length), ...f0, ...uleb(f1.length), ...f1]),
  ]);
}
