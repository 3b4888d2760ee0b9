// Q4_K — ggml super-block of 256 weights in 144 bytes (4.5 bits per weight):
//   d: f16 (0) | dmin: f16 (2) | scales: 12 bytes, 8 × (6-bit scale, 6-bit min) (4) | qs: 128 bytes (16)
//   w = d·sc_s·q − dmin·m_s, q a nibble, 8 sub-blocks of 32
// Twin: matmulRef over dequantizeRow (src/quant/dequantize.ts). Driver: k_quants.ts.
import { k4_final, k4_scale_min, sub_dot16 } from './k_common';
import { bytes, hi_nibbles } from './lanes';

export const Q4_K_BYTES: i32 = 144;
// byte offsets in a block (d at 0, dmin at 2)
export const Q4_K_SCALES: usize = 4;
export const Q4_K_QS: usize = 16;

// Q4_K block (144 B): d | dmin | scales[12] | qs[128]; qs[32g + l]: low nibble → sub-block 2g
// (x[64g + l]), high nibble → 2g+1 (x[64g + 32 + l])
@inline export function q4_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  const sm = k4_scale_min(blk + Q4_K_SCALES);
  return k4_final(blk, sm, q4_K_isum(blk, x, sm, scratch), bs, dx);
}
// Σ_s sc_s·(Σq·x)_s of a Q4_K block as i32x4 partials (sm: k4_scale_min)
@inline export function q4_K_isum(blk: usize, x: usize, sm: v128, scratch: usize): v128 {
  v128.store(scratch, i16x8.extend_low_i8x16_u(sm));
  const m4 = bytes(0x0f);
  let isum = i32x4.splat(0);
  for (let g: usize = 0; g < 4; g++) {
    const q = blk + Q4_K_QS + (g << 5), xg = x + (g << 6);
    const qa = v128.load(q), qb = v128.load(q, 16);
    const lo = sub_dot16(v128.and(qa, m4), v128.load(xg), v128.and(qb, m4), v128.load(xg, 16));
    const hi = sub_dot16(hi_nibbles(qa), v128.load(xg, 32), hi_nibbles(qb), v128.load(xg, 48));
    isum = i32x4.add(isum, i32x4.add(i32x4.dot_i16x8_s(lo, v128.load16_splat(scratch + (g << 2))), i32x4.dot_i16x8_s(hi, v128.load16_splat(scratch + (g << 2) + 2))));
  }
  return isum;
}
