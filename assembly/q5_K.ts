// Q5_K — ggml super-block of 256 weights in 176 bytes (5.5 bits per weight):
//   d: f16 (0) | dmin: f16 (2) | scales: 12 bytes as Q4_K's (4) | qh: 32 bytes, the 5th bits (16) | qs: 128 bytes (48)
// Twin: matmulRef over dequantizeRow (src/quant/dequantize.ts). Driver: k_quants.ts.
import { k4_final, k4_scale_min, sub_dot16 } from './k_common';
import { bytes, hi_nibbles } from './lanes';
import { in_order } from './rows';
import { Q4_K_SCALES } from './q4_K';

export const Q5_K_BYTES: i32 = 176;
// byte offsets in a block (d at 0, dmin at 2, the scales at 4 as Q4_K's)
export const Q5_K_QH: usize = 16;
export const Q5_K_QS: usize = 48;

// Q5_K block (176 B): d | dmin | scales[12] | qh[32] | qs[128]; the 5th bit of weight 64g + l is
// bit 2g of qh[l] (low nibble) and of weight 64g + 32 + l bit 2g+1.
@inline export function q5_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  const sm = k4_scale_min(blk + Q4_K_SCALES);
  return k4_final(blk, sm, q5_K_isum(blk, x, sm, scratch), bs, dx);
}
@inline export function q5_K_isum(blk: usize, x: usize, sm: v128, scratch: usize): v128 {
  v128.store(scratch, i16x8.extend_low_i8x16_u(sm));
  const m4 = bytes(0x0f), b4 = bytes(16);
  let qha = v128.load(blk + Q5_K_QH), qhb = v128.load(blk + Q5_K_QH + 16);
  let isum = i32x4.splat(0);
  for (let g: usize = 0; g < 4; g++) {
    const q = blk + Q5_K_QS + (g << 5), xg = x + (g << 6);
    const qa = v128.load(q), qb = v128.load(q, 16);
    // bit 2g of qh → bit 4 for the low nibbles, bit 2g+1 for the high ones (qh is shifted by 2 per pair)
    const lo = sub_dot16(v128.or(v128.and(qa, m4), v128.and(i16x8.shl(qha, 4), b4)), v128.load(xg), v128.or(v128.and(qb, m4), v128.and(i16x8.shl(qhb, 4), b4)), v128.load(xg, 16));
    in_order(scratch + 32, lo); // (rows.ts)
    const hi = sub_dot16(v128.or(hi_nibbles(qa), v128.and(i16x8.shl(qha, 3), b4)), v128.load(xg, 32), v128.or(hi_nibbles(qb), v128.and(i16x8.shl(qhb, 3), b4)), v128.load(xg, 48));
    isum = i32x4.add(isum, i32x4.add(i32x4.dot_i16x8_s(lo, v128.load16_splat(scratch + (g << 2))), i32x4.dot_i16x8_s(hi, v128.load16_splat(scratch + (g << 2) + 2))));
    qha = i16x8.shr_u(qha, 2);
    qhb = i16x8.shr_u(qhb, 2);
  }
  return isum;
}

// low / high nibble of qs plus 16 where bit k of qh is set (k is a constant after inlining: the
// bit is moved to bit 4 of its byte by one 16-bit shift — a byte's bit never crosses into the
// other byte's bit 4 — and masked)
@inline export function q5k_bit(qh: v128, k: i32): v128 {
  return v128.and(k <= 4 ? i16x8.shl(qh, 4 - k) : i16x8.shr_u(qh, k - 4), bytes(16));
}
@inline export function q5k_lo(qs: v128, qh: v128, k: i32): v128 {
  return v128.or(v128.and(qs, bytes(0x0f)), q5k_bit(qh, k));
}
@inline export function q5k_hi(qs: v128, qh: v128, k: i32): v128 {
  return v128.or(hi_nibbles(qs), q5k_bit(qh, k));
}
