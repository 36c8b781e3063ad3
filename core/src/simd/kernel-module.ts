/**
 * The bytes of a tiny hand-assembled WebAssembly module (SIMD, 128-bit) with six kernels over its
 * imported memory. No toolchain: the module is assembled here from named opcodes, so every byte
 * is explained below; `simd.test.ts` holds every kernel equal to the plain JS references.
 *
 * Module layout (WebAssembly binary format 1.0 + fixed-width SIMD):
 *   magic "\0asm", version 1
 *   §1 type      t0 = (i32, i32) → i32          t1 = (i32, i32, i32) → i32
 *   §2 import    "env" "memory": memory, limits { min 0 }   (the caller's Memory; never grown here)
 *   §1 type (cont.) t2 = (i32 × 6) → ()   t3 = (i32 × 6, f64) → ()
 *   §3 function  f0 : t0, f1 : t1, f2 : t1, f3 : t2, f4 : t3, f5 : t1
 *   §7 export    "scanF32" = f0, "f16ToF32" = f1, "exceedsF32" = f2, "transposeF32" = f3, "transposeScaleF32" = f4,
 *                "scanHalves" = f5
 *   §10 code     the six bodies below
 *
 * f0 scanF32(ptr, bytes) → 1 if some f32 word in [ptr, ptr + bytes) is ±Inf or NaN, else 0.
 *   bytes must be a multiple of 64 (the caller scans the < 64-byte tail itself).
 *   Semantics: a word w is non-finite ⇔ (w & 0x7f800000) = 0x7f800000 (exponent all ones).
 *   Per 64 bytes: 4 × { v = v128.load; acc |= i32x4.eq(v & EXP, EXP) }; at the end any_true(acc).
 *
 * f2 exceedsF32(ptr, bytes, limitBits) → 1 if some f32 word w in [ptr, ptr + bytes) has
 *   (w & 0x7fffffff) > limitBits as integers, else 0. bytes a multiple of 64; 0 ≤ limitBits < 0x7f800000.
 *   Semantics: with limitBits the bits of a finite f32 L ≥ 0, a word exceeds ⇔ !(|v| ≤ L): non-negative
 *   f32 values order as their bit patterns, and ±Inf (0x7f800000) and every NaN (above it) exceed any L.
 *   The signed compare is exact: both sides are below 2^31.
 *   Per 64 bytes: 4 × { v = v128.load; acc |= i32x4.gt_s(v & 0x7fffffff, LIMIT) }; at the end any_true(acc).
 *
 * f5 scanHalves(ptr, bytes, exponentMask) → 1 if some 16-bit value h in [ptr, ptr + bytes) has
 *   (h & exponentMask) = exponentMask, else 0. bytes a multiple of 64. With exponentMask 0x7c00 that is
 *   an F16 ±Inf or NaN (exponent 31); with 0x7f80 a BF16 one (exponent 255).
 *   Per 64 bytes: 4 × { v = v128.load; acc |= i16x8.eq(v & M, M) }; at the end any_true(acc).
 *
 * f3 transposeF32(src, rows, cols, srcStride, dst, dstStride) and f4 transposeScaleF32(…, coef):
 *   src and dst f32 matrices with rows srcStride and dstStride floats apart (byte addresses src, dst);
 *   writes dst[j·dstStride + k] = src[k·srcStride + j] (f3: the bits as they are) or
 *   f32(f64(src[k·srcStride + j]) · coef) (f4: the product in f64, rounded once to f32 — JS's
 *   `f32Array[i] = coef * x` bit for bit), for k < rows, j < cols. rows and cols multiples of 4.
 *   Per 4×4 block: four v128.load (rows k…k+3, columns j…j+3), the transpose by 32- then 64-bit lane
 *   shuffles (t0 = [a00 a10 a01 a11], t1 = [a02 a12 a03 a13], t2/t3 the same for rows 2 and 3;
 *   column c = the matching 64-bit halves of t0|t1 and t2|t3), four v128.store; f4 scales each column
 *   vector as two f64x2 (promote_low, mul, demote_zero) joined by one shuffle.
 *
 * f1 f16ToF32(src, dst, n) → 1 if some of the n halves at src is ±Inf or NaN, else 0; writes the n
 *   f32 bit patterns at dst (exact; NaN payloads kept). n must be a multiple of 16.
 *   Per 16 halves: h0, h1 = two v128.load (both before any store); for each h — i16x8 of f16 bits
 *   s|eeeee|mmmmmmmmmm:
 *     hm   = h & 0x7fff                         (exponent and mantissa)
 *     inf  = hm > 0x7bff  (i16x8.gt_s)          (exponent 31: ±Inf / NaN)
 *     flag |= inf
 *     top  = (h & 0x8000) | (inf & 0x7f80)     (sign; the f32 exponent 255 for exponent 31)
 *     then per four halves, in 32-bit lanes (interleave = i8x16.shuffle of a zero vector and the
 *     i16x8: each 16-bit lane into the high half of a 32-bit lane, i.e. · 2^16):
 *     out  = f32(interleave(hm) >>> 3) · 2^112 | interleave(top)
 *   Why exact: interleave(hm) >>> 3 = hm << 13 puts e and m into the f32 exponent and mantissa
 *   fields, i.e. the f32 2^(e−127)·(1 + m/1024) for e ≥ 1 and m·2^−136 for e = 0 (an f32
 *   subnormal); · 2^112 (a power of two, no rounding: every nonzero product is a normal f32) gives
 *   2^(e−15)·(1 + m/1024) and m·2^−24, the f16 values. For e = 31 the product has f32 exponent 143;
 *   OR-ing 0x7f800000 (from `top`) makes it 255 with the mantissa m << 13 kept: ±Inf / NaN as
 *   `f16BitsToF32Bits` writes them. The sign is OR-ed last (the product is non-negative).
 *   About 18 vector instructions per 8 halves (the first kernel here needed ≈ 34: it rebiased
 *   normals and subnormals separately and selected between them).
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
const i32Mul = [0x6c];
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
const i16x8Splat = simd(0x10);
const splat16 = (k: number) => [...i32Const(k), ...i16x8Splat];
const i16x8GtS = simd(0x31);
const i16x8Eq = simd(0x2d);
const i32x4Eq = simd(0x37);
const i32x4GtS = simd(0x3b);
const F64 = 0x7c;
const f64x2Splat = simd(0x14);
const f32x4DemoteF64x2Zero = simd(0x5e);
const f64x2PromoteLowF32x4 = simd(0x5f);
const f64x2Mul = simd(0xf2);
const v128And = simd(0x4e);
const v128Or = simd(0x50);
const v128AnyTrue = simd(0x53);
const i32x4ShrU = simd(0xad);
const f32x4Mul = simd(0xe6);
/** i8x16.shuffle with 16 lane indices (< 16: the first operand's bytes, ≥ 16: the second's). */
const shuffle = (lanes: number[]) => [...simd(0x0d), ...lanes];
/**
 * With a zero first operand: the low (high) four 16-bit lanes of the second operand into the high
 * halves of four 32-bit lanes (the punpcklwd / punpckhwd pattern: V8 matches such shuffles to one x64
 * instruction where it recognises them; either way the result is the same).
 */
const interleaveLow16 = shuffle([0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23]);
const interleaveHigh16 = shuffle([8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31]);

/**
 * A word scan: 64 bytes per iteration from ptr to ptr + bytes (params 0, 1), `acc |= flagged(v)` for
 * each 16-byte vector v, any_true(acc) at the end. `consts` are v128 locals set once before the loop
 * (by their bytes) from index `firstLocal`, after acc; `flagged` leaves an i32x4 mask of v (on the stack).
 */
function wordScanBody(firstLocal: number, consts: number[][], flagged: (constLocal: (i: number) => number) => number[]): number[] {
  const [ptr, endAt, acc] = [0, 1, firstLocal];
  const local = (i: number) => firstLocal + 1 + i;
  const b = [
    ...[1, 1 + consts.length, V128], // local declarations: acc and the constants, all v128
    ...get(ptr), ...get(endAt), ...i32Add, ...set(endAt), // end = ptr + bytes
    ...consts.flatMap((value, i) => [...value, ...set(local(i))]),
    ...block, ...loop,
    ...get(ptr), ...get(endAt), ...i32GeU, ...brIf(1), // while ptr < end
  ];
  for (let k = 0; k < 4; k++) b.push(...get(acc), ...get(ptr), ...v128Load(16 * k), ...flagged(local), ...v128Or, ...set(acc));
  b.push(...get(ptr), ...i32Const(64), ...i32Add, ...set(ptr), ...br(0), ...end, ...end);
  b.push(...get(acc), ...v128AnyTrue, ...end);
  return b;
}

/** f0 scanF32: params 0 ptr, 1 bytes (→ end); locals 2 acc, 3 EXP (v128): flagged ⇔ (v & EXP) = EXP. */
function scanF32Body(): number[] {
  return wordScanBody(2, [splat(0x7f800000)], (c) => [...get(c(0)), ...v128And, ...get(c(0)), ...i32x4Eq]);
}

/** f5 scanHalves: params 0 ptr, 1 bytes (→ end), 2 exponentMask; locals 3 acc, 4 M (v128, i16x8): flagged ⇔ (v & M) = M. */
function scanHalvesBody(): number[] {
  return wordScanBody(3, [[...get(2), ...i16x8Splat]], (c) => [...get(c(0)), ...v128And, ...get(c(0)), ...i16x8Eq]);
}

/** i8x16.shuffle picking four 32-bit lanes (0–3 the first operand's, 4–7 the second's). */
const lanes32 = (...l: number[]) => shuffle(l.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]));
/** i8x16.shuffle picking two 64-bit lanes (0–1 the first operand's, 2–3 the second's). */
const lanes64 = (x: number, y: number) => shuffle([x, y].flatMap((z) => Array.from({ length: 8 }, (_, i) => 8 * z + i)));

/**
 * f3 transposeF32 / f4 transposeScaleF32: params 0 src, 1 rows, 2 cols, 3 srcStride, 4 dst, 5 dstStride, (f4: 6 coef f64);
 * i32 locals k, p0 (row k's block), rowBytes, S (dst row bytes), q (dst block), a (an address), j;
 * v128 locals v0–v3, t0–t3, coef (f64x2), tmp.
 */
function transposeBody(scaled: boolean): number[] {
  const P = scaled ? 7 : 6;
  const [src, rows, cols, srcStride, dst, dstStride, coef] = [0, 1, 2, 3, 4, 5, 6];
  const [k, p0, rowBytes, S, q, a, j] = [P, P + 1, P + 2, P + 3, P + 4, P + 5, P + 6];
  const [v0, v1, v2, v3, t0, t1, t2, t3, coefV, tmp] = Array.from({ length: 10 }, (_, i) => P + 7 + i);
  const scale = scaled
    ? [
        ...set(tmp),
        ...get(tmp), ...f64x2PromoteLowF32x4, ...get(coefV), ...f64x2Mul, ...f32x4DemoteF64x2Zero, // [y0 y1 0 0]
        ...get(tmp), ...get(tmp), ...lanes64(1, 1), ...f64x2PromoteLowF32x4, ...get(coefV), ...f64x2Mul, ...f32x4DemoteF64x2Zero, // [y2 y3 0 0]
        ...lanes64(0, 2), // [y0 y1 y2 y3]
      ]
    : [];
  const b = [
    ...[2, 7, I32, 10, V128], // local declarations: 7 × i32, 10 × v128
    ...get(srcStride), ...i32Const(2), ...i32Shl, ...set(rowBytes),
    ...get(dstStride), ...i32Const(2), ...i32Shl, ...set(S),
    ...(scaled ? [...get(coef), ...f64x2Splat, ...set(coefV)] : []),
    ...block, ...loop,
    ...get(k), ...get(rows), ...i32GeU, ...brIf(1), // while k < rows
    ...get(src), ...get(k), ...get(rowBytes), ...i32Mul, ...i32Add, ...set(p0),
    ...get(dst), ...get(k), ...i32Const(2), ...i32Shl, ...i32Add, ...set(q),
    ...i32Const(0), ...set(j),
    ...block, ...loop,
    ...get(j), ...get(cols), ...i32GeU, ...brIf(1), // while j < cols
    ...get(p0), ...v128Load(0), ...set(v0),
    ...get(p0), ...get(rowBytes), ...i32Add, ...set(a),
    ...get(a), ...v128Load(0), ...set(v1),
    ...get(a), ...get(rowBytes), ...i32Add, ...set(a),
    ...get(a), ...v128Load(0), ...set(v2),
    ...get(a), ...get(rowBytes), ...i32Add, ...set(a),
    ...get(a), ...v128Load(0), ...set(v3),
    ...get(v0), ...get(v1), ...lanes32(0, 4, 1, 5), ...set(t0),
    ...get(v0), ...get(v1), ...lanes32(2, 6, 3, 7), ...set(t1),
    ...get(v2), ...get(v3), ...lanes32(0, 4, 1, 5), ...set(t2),
    ...get(v2), ...get(v3), ...lanes32(2, 6, 3, 7), ...set(t3),
    ...get(q), ...set(a),
  ];
  for (const [x, y, half] of [[t0, t2, 0], [t0, t2, 1], [t1, t3, 0], [t1, t3, 1]] as const) {
    b.push(...get(a), ...get(x), ...get(y), ...lanes64(half, 2 + half), ...scale, ...v128Store(0), ...get(a), ...get(S), ...i32Add, ...set(a));
  }
  b.push(
    ...get(p0), ...i32Const(16), ...i32Add, ...set(p0),
    ...get(q), ...get(S), ...i32Const(2), ...i32Shl, ...i32Add, ...set(q),
    ...get(j), ...i32Const(4), ...i32Add, ...set(j),
    ...br(0), ...end, ...end,
    ...get(k), ...i32Const(4), ...i32Add, ...set(k),
    ...br(0), ...end, ...end,
    ...end,
  );
  return b;
}

/** f2 exceedsF32: params 0 ptr, 1 bytes (→ end), 2 limitBits; locals 3 acc, 4 ABS, 5 LIMIT (v128): flagged ⇔ (v & ABS) > LIMIT. */
function exceedsF32Body(): number[] {
  return wordScanBody(3, [splat(0x7fffffff), [...get(2), ...i32x4Splat]], (c) => [...get(c(0)), ...v128And, ...get(c(1)), ...i32x4GtS]);
}

/**
 * f1 f16ToF32: params 0 src, 1 dst, 2 n (→ end); locals 3 flag, 4 h0, 5 h1, 6 hm, 7 top, 8 inf,
 * 9 zero (never set), and the constants splatted once before the loop: 10 0x7fff, 11 0x7bff,
 * 12 0x8000, 13 0x7f80 (i16x8), 14 2^112 (f32x4) (all v128).
 */
function f16ToF32Body(): number[] {
  const [src, dst, endAt, flag, h0, h1, hm, top, inf, zero] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [emMask, maxFinite, signBit, infExponent, scale] = [10, 11, 12, 13, 14];
  const b = [
    ...[1, 12, V128], // local declarations: 12 × v128
    ...get(src), ...get(endAt), ...i32Const(1), ...i32Shl, ...i32Add, ...set(endAt), // end = src + 2n
    ...splat16(0x7fff), ...set(emMask),
    ...splat16(0x7bff), ...set(maxFinite),
    ...splat16(0x8000), ...set(signBit),
    ...splat16(0x7f80), ...set(infExponent),
    ...splat(0x77800000), ...set(scale), // f32 2^112
    ...block, ...loop,
    ...get(src), ...get(endAt), ...i32GeU, ...brIf(1), // while src < end
    ...get(src), ...v128Load(0), ...set(h0), // both loads before any store (in-place widening relies on it)
    ...get(src), ...v128Load(16), ...set(h1),
  ];
  for (const [h, k] of [[h0, 0], [h1, 1]] as const) {
    b.push(
      ...get(h), ...get(emMask), ...v128And, ...set(hm),
      ...get(hm), ...get(maxFinite), ...i16x8GtS, ...set(inf),
      ...get(flag), ...get(inf), ...v128Or, ...set(flag),
      ...get(h), ...get(signBit), ...v128And, ...get(inf), ...get(infExponent), ...v128And, ...v128Or, ...set(top),
    );
    for (const [interleave, half] of [[interleaveLow16, 0], [interleaveHigh16, 1]] as const) {
      b.push(
        ...get(dst), // store address
        ...get(zero), ...get(hm), ...interleave, ...i32Const(3), ...i32x4ShrU, ...get(scale), ...f32x4Mul,
        ...get(zero), ...get(top), ...interleave, ...v128Or,
        ...v128Store(32 * k + 16 * half),
      );
    }
  }
  b.push(...get(src), ...i32Const(32), ...i32Add, ...set(src), ...get(dst), ...i32Const(64), ...i32Add, ...set(dst), ...br(0), ...end, ...end);
  b.push(...get(flag), ...v128AnyTrue, ...end);
  return b;
}

/** The module's bytes (see the layout above). */
export function kernelModuleBytes(): Uint8Array<ArrayBuffer> {
  const f0 = scanF32Body();
  const f1 = f16ToF32Body();
  const f2 = exceedsF32Body();
  const f3 = transposeBody(false);
  const f4 = transposeBody(true);
  const f5 = scanHalvesBody();
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [4, 0x60, 2, I32, I32, 1, I32, 0x60, 3, I32, I32, I32, 1, I32, 0x60, 6, I32, I32, I32, I32, I32, I32, 0, 0x60, 7, I32, I32, I32, I32, I32, I32, F64, 0]),
    ...section(2, [1, ...name("env"), ...name("memory"), 0x02, 0x00, 0]),
    ...section(3, [6, 0, 1, 1, 2, 3, 1]),
    ...section(7, [6, ...name("scanF32"), 0x00, 0, ...name("f16ToF32"), 0x00, 1, ...name("exceedsF32"), 0x00, 2, ...name("transposeF32"), 0x00, 3, ...name("transposeScaleF32"), 0x00, 4, ...name("scanHalves"), 0x00, 5]),
    ...section(10, [6, ...[f0, f1, f2, f3, f4, f5].flatMap((f) => [...uleb(f.length), ...f])]),
  ]);
}
