// Lanes: scalar and vector helpers every kernel shares — f16 → f32 conversions (exact for every
// half; the KV cache's fast one), f32 → f16 rounding, horizontal sums, nibble extraction, and the
// vector constants kept in memory (see KONST). Twins: src/quant/fp16.ts (fp16ToFp32, fp32ToFp16).

// ── scalar helpers ─────────────────────────────────────────────────────────────────────────────

// a half as f32, exact for every half (IEEE: infinities stay infinite, NaNs stay NaN with their
// payload) and without arithmetic on subnormal floats (x86 takes a microcode assist of ~100 cycles
// for each): the exponent is rebiased in integers; a subnormal half m·2^-24 is
// (1 + m/1024)·2^-14 − 2^-14, both normal; exponent 31 (Inf/NaN) gets the f32 exponent 255 by
// or-ing it in. The same steps as f16x8_lo, so scalar and vector paths agree bit for bit.
// (twin: fp16ToFp32)
@inline export function f16_to_f32(h: u32): f32 {
  const m: u32 = (h & 0x7fff) << 13;
  // both, then an integer select (a branch here makes V8 split and spill the kernels' loops)
  const sub = reinterpret<u32>(reinterpret<f32>(m + 0x38800000) - reinterpret<f32>(<u32>0x38800000));
  const f = select<u32>(sub, m + 0x38000000, m < 0x00800000) | select<u32>(0x7f800000, 0, m > 0x0f7fffff);
  return reinterpret<f32>(f | ((h & 0x8000) << 16));
}

// ggml_compute_fp32_to_fp16: f32 → the f16 bits ggml stores (round to nearest even, NaN → 0x7e00)
@inline export function f32_to_f16_bits(f: f32): u16 {
  const scale_to_inf: f32 = reinterpret<f32>(<u32>0x77800000); // 0x1.0p+112f
  const scale_to_zero: f32 = reinterpret<f32>(<u32>0x08800000); // 0x1.0p-110f
  let base: f32 = (Mathf.abs(f) * scale_to_inf) * scale_to_zero;
  const w: u32 = reinterpret<u32>(f);
  const shl1_w: u32 = w + w;
  const sign: u32 = w & 0x80000000;
  let bias: u32 = shl1_w & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits: u32 = reinterpret<u32>(base);
  return <u16>((sign >> 16) | (shl1_w > 0xff000000 ? 0x7e00 : ((bits >> 13) & 0x00007c00) + (bits & 0x00000fff)));
}

// ggml_compute_fp32_to_fp16, then back: the value ggml stores in a block
@inline export function round_f16(f: f32): f32 {
  return f16_to_f32(f32_to_f16_bits(f));
}

@inline export function hsum_f32(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline export function hsum_i32(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

// 8 halves (16 bytes) → two f32x4, by f16_to_f32's steps: sign-extended and shifted left by 13, a
// half has its exponent and mantissa in bits 13..27 and its sign in bit 31
@inline export function f16x4_to_f32x4(s: v128): v128 {
  const m = v128.and(s, v128.load(F16_CONSTS));
  const sub = f32x4.sub(i32x4.add(m, v128.load(F16_CONSTS, 16)), v128.load(F16_CONSTS, 16));
  const f = v128.bitselect(sub, i32x4.add(m, v128.load(F16_CONSTS, 32)), i32x4.lt_s(m, v128.load(F16_CONSTS, 48)));
  const infNan = v128.and(i32x4.gt_s(m, v128.load(F16_CONSTS, 112)), v128.load(F16_CONSTS, 128)); // exponent 31 → 255
  return v128.or(v128.or(f, infNan), v128.and(s, v128.load(F16_CONSTS, 64)));
}
// the f16 conversions' constants (see KONST)
export const F16_CONSTS = memory.data<u32>([
  0x0fffe000, 0x0fffe000, 0x0fffe000, 0x0fffe000, 0x38800000, 0x38800000, 0x38800000, 0x38800000,
  0x38000000, 0x38000000, 0x38000000, 0x38000000, 0x00800000, 0x00800000, 0x00800000, 0x00800000,
  0x80000000, 0x80000000, 0x80000000, 0x80000000, 0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff,
  0x77800000, 0x77800000, 0x77800000, 0x77800000, 0x0f7fffff, 0x0f7fffff, 0x0f7fffff, 0x0f7fffff,
  0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, 0x477fffff, 0x477fffff, 0x477fffff, 0x477fffff,
  0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff,
], 16);
@inline export function f16x8_lo(h: v128): v128 {
  return f16x4_to_f32x4(i32x4.shl(i32x4.extend_low_i16x8_s(h), 13));
}
@inline export function f16x8_hi(h: v128): v128 {
  return f16x4_to_f32x4(i32x4.shl(i32x4.extend_high_i16x8_s(h), 13));
}

// The same for the KV cache, in 4 operations instead of 13: × 2^112 rebiases the exponent (and
// normalizes subnormal halves) — exact for every finite half, but a subnormal half is a subnormal
// float operand and costs a microcode assist. Weights' scales can be subnormal in bulk (K-quant d of
// small weights); keys and values almost never are, and attention converts every one of them.
// A half of exponent 31 (Inf/NaN) comes out of the multiply as the finite ±(1.m)·2^16; with `exact`
// (4 more operations) it is recognised as above every finite half (65504) and given the exponent 255,
// IEEE Inf/NaN again. Callers pass a constant: the KV cache takes the exact path only for a layer
// whose kv_store met such a half, the Q4_0X4 scales only for a matrix whose repack counted one.
@inline export function kv_f16x4(s: v128, exact: bool): v128 {
  const f = f32x4.mul(v128.and(s, v128.load(F16_CONSTS, 80)), v128.load(F16_CONSTS, 96)); // [0x8fffffff], [2^112]
  if (!exact) return f;
  const big = i32x4.gt_s(v128.and(f, v128.load(F16_CONSTS, 160)), v128.load(F16_CONSTS, 144)); // |f| > 0x1.fffffep15
  return v128.or(f, v128.and(big, v128.load(F16_CONSTS, 128)));
}
@inline export function kv_f16x8_lo(h: v128, exact: bool): v128 {
  return kv_f16x4(i32x4.shl(i32x4.extend_low_i16x8_s(h), 13), exact);
}
@inline export function kv_f16x8_hi(h: v128, exact: bool): v128 {
  return kv_f16x4(i32x4.shl(i32x4.extend_high_i16x8_s(h), 13), exact);
}

// Bytes shifted right: V8 lowers i8x16.shr_u/shl to a 16-bit shift and a mask it rebuilds at every
// use, so the kernels write the 16-bit shift and mask themselves, with the mask kept in a register.
// The high nibble of every byte:
@inline export function hi_nibbles(v: v128): v128 {
  return v128.and(i16x8.shr_u(v, 4), bytes(0x0f));
}

// Vector constants are read from memory: V8 13 (Node 24) rebuilds an immediate vector constant at
// every use in a loop, three or more instructions each (Q8_0 decode in cache 13.8 → 19.6 G MAC/s
// there once its constants were loads); a load is one, and Node 20, which kept them in registers,
// runs the same either way.
export const KONST = memory.data<u8>([
  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
  16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
  32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
  0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, // −127
], 16);
// i8x16.splat(c) for the bytes in KONST (c is a constant at every use, so this folds to one load)
@inline export function bytes(c: i32): v128 {
  if (c == 15) return v128.load(KONST);
  if (c == 16) return v128.load(KONST, 16);
  if (c == 3) return v128.load(KONST, 32);
  if (c == 4) return v128.load(KONST, 48);
  if (c == 8) return v128.load(KONST, 64);
  if (c == 32) return v128.load(KONST, 80);
  if (c == -127) return v128.load(KONST, 96);
  return i8x16.splat(<i8>c);
}
// and the patterns (k4_scale_min, q5_high, q3_K_scales)
export const SM_LOW = memory.data<u8>([63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0], 16);
export const SM_SEL = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 16);
export const SM_HIGH = memory.data<u8>([0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30], 16);
// k4_scale_min's and k4_msum's byte patterns, as swizzle masks (a v128.shuffle's pattern is an
// immediate, rebuilt at every use by general-register moves: four instructions, a load is one)
export const K4_SHUF_A = memory.data<u8>([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11], 16);
export const K4_SHUF_H = memory.data<u8>([0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 4, 5, 6, 7], 16);
export const K4_MINS2 = memory.data<u8>([8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15], 16);
// v's bytes picked by the mask at m (every index < 16): relaxed, one pshufb; SIMD128's swizzle
// also clamps the indices first
@inline export function pick(v: v128, m: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(v, v128.load(m));
  return i8x16.swizzle(v, v128.load(m));
}
export const BITS8 = memory.data<u8>([1, 2, 4, 8, 16, 32, 64, 0x80, 1, 2, 4, 8, 16, 32, 64, 0x80], 16);
export const Q3_LO = memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 0, 0, 0, 0, 0, 0, 0, 0], 16);
export const Q3_HI = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15, 15, 15, 15, 15], 16);
export const Q3_G0 = memory.data<u8>([0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 16);
export const Q3_G1 = memory.data<u8>([0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0, 0, 0, 0], 16);
export const Q3_G2 = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0], 16);
export const Q3_G3 = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30], 16);

// [Σa, Σb, Σc, Σd] of four i16x8 as i32x4, reducing across the four first (i32 lanes as pairs of
// i16: three i16 adds per lane), then widening once: each lane sum of four inputs must fit in i16
@inline export function hsum4_i16(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i16x8.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7)); // [a02 b02 a13 b13]
  const cd = i16x8.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7)));
}

// [Σa, Σb, Σc, Σd] of four i32x4
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7)); // [a02 b02 a13 b13]
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}
