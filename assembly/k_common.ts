// K-quants, shared: the integer dots of sub-blocks, scale unpacking shared by Q4_K and Q5_K, the
// expanded-block forms (KX_ROW, KX6_ROW) the prefill dots, and Q2_K/Q3_K's 16-product dot.
// The driver (decode, prefill, the five exports) is k_quants.ts; each format's block is its own file.
import { K4_MINS2, K4_SHUF_A, K4_SHUF_H, SM_HIGH, SM_LOW, SM_SEL, f16x8_lo, hi_nibbles, hsum_i32, pick } from './lanes';

// Σ of 32 products q·x of a K-quant sub-block (q unsigned, ≤ 31; x signed, within ±127), as i16x8
// partials: relaxed, two i8×i7 pair-dots (q is a valid 7-bit operand; |lane| ≤ 2·2·31·127);
// SIMD128, widening multiplies (|q·x| ≤ 31·128, four products per lane). Either fits i16, and one
// i32x4.dot_i16x8_s with the sub-block's scale then widens and scales it in one instruction.
@inline export function sub_dot16(qa: v128, xa: v128, qb: v128, xb: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xa, qa), i16x8.relaxed_dot_i8x16_i7x16_s(xb, qb));
  const p = i16x8.add(i16x8.extmul_low_i8x16_s(qa, xa), i16x8.extmul_high_i8x16_s(qa, xa));
  return i16x8.add(p, i16x8.add(i16x8.extmul_low_i8x16_s(qb, xb), i16x8.extmul_high_i8x16_s(qb, xb)));
}

// lane j of an i16x8, in every lane (j is a constant after inlining, so the byte indices are a
// constant vector: one pshufb)
@inline export function splat16(v: v128, j: i32): v128 {
  const idx = i16x8.splat(<i16>((2 * j + 1) << 8 | (2 * j)));
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(v, idx);
  return i8x16.swizzle(v, idx);
}

// the 8 scales (lanes 0..7) and 8 mins (lanes 8..15) of a K-quant super-block, unpacked from its
// scales[12] in one go (get_scale_min_k4 for j = 0..7):
//   j < 4: sc = q[j] & 63,                       m = q[j+4] & 63
//   j ≥ 4: sc = (q[j+4] & 15) | (q[j-4] >> 6) << 4,  m = (q[j+4] >> 4) | (q[j] >> 6) << 4
@inline export function k4_scale_min(sc: usize): v128 {
  const v = v128.load(sc); // 12 bytes used; the next 4 belong to the same block
  const a = pick(v, K4_SHUF_A); // bytes 0 1 2 3 8 9 10 11 4 5 6 7 8 9 10 11
  const h = pick(v, K4_SHUF_H); // bytes 0 0 0 0 0 1 2 3 0 0 0 0 4 5 6 7
  const lo = v128.bitselect(
    hi_nibbles(a),
    v128.and(a, v128.load(SM_LOW)),
    v128.load(SM_SEL),
  );
  const hi = v128.and(i16x8.shr_u(h, 2), v128.load(SM_HIGH)); // (h >> 6) << 4
  return v128.or(lo, hi);
}

// dx·(d·Σ_s sc_s·(Σq·x)_s − dmin·Σ_s m_s·(Σx)_s) of a Q4_K/Q5_K super-block, from isum (the scaled
// sub-block sums, i32x4 partials) and sm (k4_scale_min): the mins meet the activation's bsums (two
// per sub-block) by one i16 dot each, with each min in two lanes.
@inline export function k4_final(blk: usize, sm: v128, isum: v128, bs: usize, dx: f32): f32 {
  const dd = f16x8_lo(v128.load32_zero(blk)); // [d, dmin] as f32, in one conversion
  return dx * (f32x4.extract_lane(dd, 0) * <f32>hsum_i32(isum) - f32x4.extract_lane(dd, 1) * <f32>hsum_i32(k4_msum(sm, bs)));
}

// Σ_s m_s·(Σx)_s as i32x4 partials
@inline export function k4_msum(sm: v128, bs: usize): v128 {
  // [m0 m0 m1 m1 m2 m2 m3 m3] and [m4 m4 … m7 m7] as i16 (the mins are bytes 8..15 of sm)
  const m2 = pick(sm, K4_MINS2); // each min twice
  const mlo = i16x8.extend_low_i8x16_u(m2), mhi = i16x8.extend_high_i8x16_u(m2);
  return i32x4.add(i32x4.dot_i16x8_s(v128.load(bs), mlo), i32x4.dot_i16x8_s(v128.load(bs, 16), mhi));
}

// Q4_K/Q5_K/Q6_K blocks in decode: a loop over four parts of the block (the pairs of sub-blocks;
// Q6_K's quarters) rather than the whole block written out — V8 schedules a long straight block's
// loads first and then spills most of them (607 of the 1453 instructions of a four-row Q5_K step
// were spill moves): in cache Q4_K +7 %, Q5_K +20 %, Q6_K +22 %. A sub-block's sum (i16 partials
// from sub_dot16) is scaled and widened by one i16 dot with its scale, splat from the thread's
// scratch where the block's scales wait as i16.

// A Q6_K block expanded (KX6_ROW bytes at e): its 256 6-bit values in activation order (relaxed:
// 0..63; SIMD128: less 32, as q6_K_block dots them), the 16 scales as i16 splats (at 256 + 16g:
// group g of 16 values has scale g), the scales as two i16x8 for the −32 term (at 512, 528) and d
// as f32 (at 544). kx_rows4 then gives q6_K_block's value exactly.
export const KX6_ROW: usize = 560;

// the 16 scales of an expanded Q6_K-form block (sc0 | sc1, i16): splat at 256 + 16i, as two
// i16x8 at 512, 528
@inline export function kx6_scales(e: usize, sc0: v128, sc1: v128): void {
  v128.store(e, splat16(sc0, 0), 256);
  v128.store(e, splat16(sc0, 1), 272);
  v128.store(e, splat16(sc0, 2), 288);
  v128.store(e, splat16(sc0, 3), 304);
  v128.store(e, splat16(sc0, 4), 320);
  v128.store(e, splat16(sc0, 5), 336);
  v128.store(e, splat16(sc0, 6), 352);
  v128.store(e, splat16(sc0, 7), 368);
  v128.store(e, splat16(sc1, 0), 384);
  v128.store(e, splat16(sc1, 1), 400);
  v128.store(e, splat16(sc1, 2), 416);
  v128.store(e, splat16(sc1, 3), 432);
  v128.store(e, splat16(sc1, 4), 448);
  v128.store(e, splat16(sc1, 5), 464);
  v128.store(e, splat16(sc1, 6), 480);
  v128.store(e, splat16(sc1, 7), 496);
  v128.store(e, sc0, 512);
  v128.store(e, sc1, 528);
}

// Σ of 16 products q·x (q unsigned, ≤ 7) as i16x8 partials: relaxed, one i8×i7 pair-dot
// (|lane| ≤ 2·7·127); SIMD128, widening multiplies (|q·x| ≤ 7·128, two per lane)
@inline export function dot16_i16(q: v128, x: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(x, q);
  return i16x8.add(i16x8.extmul_low_i8x16_s(q, x), i16x8.extmul_high_i8x16_s(q, x));
}
