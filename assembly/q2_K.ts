// Q2_K — ggml super-block of 256 weights in 84 bytes (2.625 bits per weight):
//   scales: 16 bytes, 4-bit scale | 4-bit min (0) | qs: 64 bytes, 2-bit values (16) | d: f16 (80) | dmin: f16 (82)
// Twin: matmulRef over dequantizeRow (src/quant/dequantize.ts). Driver: k_quants.ts.
import { dot16_i16, kx6_scales } from './k_common';
import { bytes, f16_to_f32, f16x8_lo, hi_nibbles, hsum_i32 } from './lanes';

export const Q2_K_BYTES: i32 = 84;
// byte offsets in a block (the scales at 0)
export const Q2_K_QS: usize = 16;
export const Q2_K_D: usize = 80;
export const Q2_K_DMIN: usize = 82;

// Q2_K block (84 B): scales[16] (low nibble scale, high nibble min) | qs[64] | d f16 | dmin f16.
// Sub-block i = 8g + 2j + h (16 weights): 2-bit values at qs + 32g + 16h, shifted by 2j. A loop over
// the two halves g; each sub-block's i16 partials are scaled and widened by one i16 dot with its
// scale (splat from the thread's scratch); the mins meet the activation's bsums the same way.
@inline export function q2_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  const sv = v128.load(blk), m3 = bytes(3);
  const sc = v128.and(sv, bytes(15)), mn = hi_nibbles(sv);
  v128.store(scratch, i16x8.extend_low_i8x16_u(sc));
  v128.store(scratch, i16x8.extend_high_i8x16_u(sc), 16);
  const msum = hsum_i32(i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(mn), v128.load(bs)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(mn), v128.load(bs, 16))));
  let isum = i32x4.splat(0);
  for (let g: usize = 0; g < 2; g++) {
    const qa = v128.load(blk + Q2_K_QS + (g << 5)), qb = v128.load(blk + Q2_K_QS + 16 + (g << 5));
    const xg = x + (g << 7), sg = scratch + (g << 4);
    isum = i32x4.add(isum, q2_pair(v128.and(qa, m3), v128.and(qb, m3), xg, sg));
    isum = i32x4.add(isum, q2_pair(v128.and(i16x8.shr_u(qa, 2), m3), v128.and(i16x8.shr_u(qb, 2), m3), xg + 32, sg + 4));
    isum = i32x4.add(isum, q2_pair(v128.and(i16x8.shr_u(qa, 4), m3), v128.and(i16x8.shr_u(qb, 4), m3), xg + 64, sg + 8));
    isum = i32x4.add(isum, q2_pair(v128.and(i16x8.shr_u(qa, 6), m3), v128.and(i16x8.shr_u(qb, 6), m3), xg + 96, sg + 12));
  }
  return dx * (f16_to_f32(load<u16>(blk + Q2_K_D)) * <f32>hsum_i32(isum) - f16_to_f32(load<u16>(blk + Q2_K_DMIN)) * <f32>msum);
}
// sub-blocks 2j and 2j+1 of a half (values a, b; activations at x, x + 16; scales at s, s + 2)
@inline export function q2_pair(a: v128, b: v128, x: usize, s: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(dot16_i16(a, v128.load(x)), v128.load16_splat(s)), i32x4.dot_i16x8_s(dot16_i16(b, v128.load(x, 16)), v128.load16_splat(s, 2)));
}

// A Q2_K block expanded in Q6_K's form (KX6_ROW bytes at e): the 256 values in activation order, the
// 16 scales as i16 splats (at 256 + 16i), the 16 mins as two i16x8 (at 512, 528) and [d, dmin] as
// f32 (at 544); kx_rows4 then gives q2_K_block's value exactly.
@inline export function q2_expand(blk: usize, e: usize): void {
  const m3 = bytes(3);
  for (let g: usize = 0; g < 2; g++) {
    const qa = v128.load(blk + Q2_K_QS + (g << 5)), qb = v128.load(blk + Q2_K_QS + 16 + (g << 5)), o = e + (g << 7);
    v128.store(o, v128.and(qa, m3));
    v128.store(o, v128.and(qb, m3), 16);
    v128.store(o, v128.and(i16x8.shr_u(qa, 2), m3), 32);
    v128.store(o, v128.and(i16x8.shr_u(qb, 2), m3), 48);
    v128.store(o, v128.and(i16x8.shr_u(qa, 4), m3), 64);
    v128.store(o, v128.and(i16x8.shr_u(qb, 4), m3), 80);
    v128.store(o, v128.and(i16x8.shr_u(qa, 6), m3), 96);
    v128.store(o, v128.and(i16x8.shr_u(qb, 6), m3), 112);
  }
  const sv = v128.load(blk), sc = v128.and(sv, bytes(15)), mn = hi_nibbles(sv);
  kx6_scales(e, i16x8.extend_low_i8x16_u(sc), i16x8.extend_high_i8x16_u(sc));
  v128.store(e, i16x8.extend_low_i8x16_u(mn), 512);
  v128.store(e, i16x8.extend_high_i8x16_u(mn), 528);
  v128.store(e, f16x8_lo(v128.load32_zero(blk + Q2_K_D)), 544);
}
