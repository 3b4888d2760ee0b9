// Q3_K — ggml super-block of 256 weights in 110 bytes (3.4375 bits per weight):
//   hmask: 32 bytes, the high bits (0) | qs: 64 bytes, the low 2 bits (32) | scales: 12 bytes, 16 × 6 bits (96) | d: f16 (108)
// Twin: matmulRef over dequantizeRow (src/quant/dequantize.ts). Driver: k_quants.ts.
import { kx6_scales } from './k_common';
import { Q3_G0, Q3_G1, Q3_G2, Q3_G3, Q3_HI, Q3_LO, bytes, f16_to_f32, hsum_i32 } from './lanes';
import { q2_pair } from './q2_K';

export const Q3_K_BYTES: i32 = 110;
// byte offsets in a block (hmask at 0)
export const Q3_K_QS: usize = 32;
export const Q3_K_SCALES: usize = 96;
export const Q3_K_D: usize = 108;

// the 16 scales of a Q3_K block (6-bit values packed in scales[12] at s, ggml's kmask1/kmask2
// unpacking, − 32) as i8: low 4 bits from byte i (i < 8) or the high nibble of byte i − 8, bits 4-5
// from byte 8 + (i & 3) at 2·(i >> 2)
@inline export function q3_K_scales(s: usize): v128 {
  const v = v128.load32_lane(s + 8, v128.load64_zero(s), 2);
  const a = v128.shuffle<u8>(v, v, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
  const lo = v128.or(v128.and(a, v128.load(Q3_LO)), v128.and(i16x8.shr_u(a, 4), v128.load(Q3_HI)));
  const h = v128.shuffle<u8>(v, v, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11);
  // bits 2·(i >> 2) .. + 1 of h → bits 4-5 (16-bit shifts: the masks keep each byte's own bits)
  const g0 = v128.and(i16x8.shl(h, 4), v128.load(Q3_G0));
  const g1 = v128.and(i16x8.shl(h, 2), v128.load(Q3_G1));
  const g2 = v128.and(h, v128.load(Q3_G2));
  const g3 = v128.and(i16x8.shr_u(h, 2), v128.load(Q3_G3));
  return i8x16.sub(v128.or(lo, v128.or(v128.or(g0, g1), v128.or(g2, g3))), bytes(32));
}

// Q3_K block (110 B): hmask[32] | qs[64] | scales[12] | d f16. Sub-block i = 8g + 2j + h: 2 low bits
// as in Q2_K (at qs + 32g + 16h, shifted by 2j), the high bit is bit 4g + j of hmask[16h + l];
// value = q − (high bit ? 0 : 4). Dotted here as the unsigned q + 4·bit (≤ 7), the −4 taken off
// through the activation's bsums: Σ sc·(q' − 4)·x = Σ sc·q'·x − 4·Σ sc·(Σx).
@inline export function q3_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  const scv = q3_K_scales(blk + Q3_K_SCALES);
  const sc0 = i16x8.extend_low_i8x16_s(scv), sc1 = i16x8.extend_high_i8x16_s(scv);
  v128.store(scratch, sc0);
  v128.store(scratch, sc1, 16);
  const msum = hsum_i32(i32x4.add(i32x4.dot_i16x8_s(sc0, v128.load(bs)), i32x4.dot_i16x8_s(sc1, v128.load(bs, 16))));
  const m3 = bytes(3), f4 = bytes(4);
  let h0 = v128.load(blk), h1 = v128.load(blk + 16);
  let isum = i32x4.splat(0);
  for (let g: usize = 0; g < 2; g++) {
    const qa = v128.load(blk + Q3_K_QS + (g << 5)), qb = v128.load(blk + Q3_K_QS + 16 + (g << 5));
    const xg = x + (g << 7), sg = scratch + (g << 4);
    // high bit j of this half's hmask bits (shifted by 4 per half) → 4
    isum = i32x4.add(isum, q2_pair(v128.or(v128.and(qa, m3), v128.and(i16x8.shl(h0, 2), f4)), v128.or(v128.and(qb, m3), v128.and(i16x8.shl(h1, 2), f4)), xg, sg));
    isum = i32x4.add(isum, q2_pair(v128.or(v128.and(i16x8.shr_u(qa, 2), m3), v128.and(i16x8.shl(h0, 1), f4)), v128.or(v128.and(i16x8.shr_u(qb, 2), m3), v128.and(i16x8.shl(h1, 1), f4)), xg + 32, sg + 4));
    isum = i32x4.add(isum, q2_pair(v128.or(v128.and(i16x8.shr_u(qa, 4), m3), v128.and(h0, f4)), v128.or(v128.and(i16x8.shr_u(qb, 4), m3), v128.and(h1, f4)), xg + 64, sg + 8));
    isum = i32x4.add(isum, q2_pair(v128.or(v128.and(i16x8.shr_u(qa, 6), m3), v128.and(i16x8.shr_u(h0, 1), f4)), v128.or(v128.and(i16x8.shr_u(qb, 6), m3), v128.and(i16x8.shr_u(h1, 1), f4)), xg + 96, sg + 12));
    h0 = i16x8.shr_u(h0, 4);
    h1 = i16x8.shr_u(h1, 4);
  }
  return dx * (f16_to_f32(load<u16>(blk + Q3_K_D)) * <f32>(hsum_i32(isum) - (msum << 2)));
}

// A Q3_K block expanded in Q6_K's form (KX6_ROW bytes at e): the 256 unsigned values q + 4·bit in
// activation order, the 16 scales as i16 splats (at 256 + 16i), as two i16x8 for the −4 term (at
// 512, 528) and d as f32 (at 544); kx_rows4 then gives q3_K_block's value exactly.
@inline export function q3_expand(blk: usize, e: usize): void {
  const m3 = bytes(3), f4 = bytes(4);
  let h0 = v128.load(blk), h1 = v128.load(blk + 16);
  for (let g: usize = 0; g < 2; g++) {
    const qa = v128.load(blk + Q3_K_QS + (g << 5)), qb = v128.load(blk + Q3_K_QS + 16 + (g << 5)), o = e + (g << 7);
    v128.store(o, v128.or(v128.and(qa, m3), v128.and(i16x8.shl(h0, 2), f4)));
    v128.store(o, v128.or(v128.and(qb, m3), v128.and(i16x8.shl(h1, 2), f4)), 16);
    v128.store(o, v128.or(v128.and(i16x8.shr_u(qa, 2), m3), v128.and(i16x8.shl(h0, 1), f4)), 32);
    v128.store(o, v128.or(v128.and(i16x8.shr_u(qb, 2), m3), v128.and(i16x8.shl(h1, 1), f4)), 48);
    v128.store(o, v128.or(v128.and(i16x8.shr_u(qa, 4), m3), v128.and(h0, f4)), 64);
    v128.store(o, v128.or(v128.and(i16x8.shr_u(qb, 4), m3), v128.and(h1, f4)), 80);
    v128.store(o, v128.or(v128.and(i16x8.shr_u(qa, 6), m3), v128.and(i16x8.shr_u(h0, 1), f4)), 96);
    v128.store(o, v128.or(v128.and(i16x8.shr_u(qb, 6), m3), v128.and(i16x8.shr_u(h1, 1), f4)), 112);
    h0 = i16x8.shr_u(h0, 4);
    h1 = i16x8.shr_u(h1, 4);
  }
  const scv = q3_K_scales(blk + Q3_K_SCALES);
  const sc0 = i16x8.extend_low_i8x16_s(scv), sc1 = i16x8.extend_high_i8x16_s(scv);
  kx6_scales(e, sc0, sc1);
  store<f32>(e, f16_to_f32(load<u16>(blk + Q3_K_D)), 544);
}
