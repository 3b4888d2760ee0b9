// Q6_K — ggml super-block of 256 weights in 210 bytes (6.5625 bits per weight):
//   ql: 128 bytes, low 4 bits (0) | qh: 64 bytes, high 2 bits (128) | scales: 16 × i8 (192) | d: f16 (208)
//   w = d·sc·(q − 32), 16 groups of 16
// Twin: matmulRef over dequantizeRow (src/quant/dequantize.ts). Driver: k_quants.ts.
import { kx6_scales } from './k_common';
import { in_order } from './rows';
import { bytes, f16_to_f32, hi_nibbles, hsum_i32 } from './lanes';

export const Q6_K_BYTES: i32 = 210;
// byte offsets in a block
export const Q6_K_QH: usize = 128;
export const Q6_K_SCALES: usize = 192;
export const Q6_K_D: usize = 208;

// Q6_K block (210 B): ql[128] | qh[64] | scales[16] i8 | d f16; weight = d·sc·(q − 32) with
// q = 4 bits of ql | 2 bits of qh. In each half (128 weights, ql+64h, qh+32h, sc+8h), lane l of
// 32 gives weights l (ql[l] lo, qh[l] bits 0-1), l+32 (ql[l+32] lo, bits 2-3), l+64 (ql[l] hi,
// bits 4-5), l+96 (ql[l+32] hi, bits 6-7); scale index = l/16 + 2·k for the k-th of those four.
// The loop takes the four quarters (half h, lanes l..l+15).
@inline export function q6_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  return dx * (f16_to_f32(load<u16>(blk + Q6_K_D)) * <f32>q6_K_total(blk, x, bs, scratch));
}
// the block's integer sum Σ sc·(q − 32)·x
@inline export function q6_K_total(blk: usize, x: usize, bs: usize, scratch: usize): i32 {
  const scv = v128.load(blk + Q6_K_SCALES);
  const sc0 = i16x8.extend_low_i8x16_s(scv), sc1 = i16x8.extend_high_i8x16_s(scv);
  v128.store(scratch, sc0);
  v128.store(scratch, sc1, 16);
  let isum = i32x4.splat(0);
  for (let j: usize = 0; j < 4; j++) {
    const h = j >> 1, l = (j & 1) << 4; // half, first lane
    const ql = blk + (h << 6) + l, qh = blk + Q6_K_QH + (h << 5) + l, xh = x + (h << 7) + l;
    const sc = scratch + (h << 4) + ((l >> 4) << 1); // scale l/16 of this half; + 2k for group k
    const qla = v128.load(ql), qlb = v128.load(ql, 32), qhv = v128.load(qh);
    const q1 = q6_group(qla, qlb, qhv, 0), q2 = q6_group(qla, qlb, qhv, 1), q3 = q6_group(qla, qlb, qhv, 2), q4 = q6_group(qla, qlb, qhv, 3);
    const x1 = v128.load(xh), x2 = v128.load(xh, 32), x3 = v128.load(xh, 64), x4 = v128.load(xh, 96);
    let p1: v128, p2: v128, p3: v128, p4: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      // one i8×i7 pair-dot per 16 values (|lane| ≤ 2·63·127 fits i16); the −32 is folded in below
      p1 = i16x8.relaxed_dot_i8x16_i7x16_s(x1, q1);
      p2 = i16x8.relaxed_dot_i8x16_i7x16_s(x2, q2);
      p3 = i16x8.relaxed_dot_i8x16_i7x16_s(x3, q3);
      p4 = i16x8.relaxed_dot_i8x16_i7x16_s(x4, q4);
    } else {
      // |q·x| ≤ 32·128: two products per i16 lane fit
      p1 = i16x8.add(i16x8.extmul_low_i8x16_s(q1, x1), i16x8.extmul_high_i8x16_s(q1, x1));
      p2 = i16x8.add(i16x8.extmul_low_i8x16_s(q2, x2), i16x8.extmul_high_i8x16_s(q2, x2));
      p3 = i16x8.add(i16x8.extmul_low_i8x16_s(q3, x3), i16x8.extmul_high_i8x16_s(q3, x3));
      p4 = i16x8.add(i16x8.extmul_low_i8x16_s(q4, x4), i16x8.extmul_high_i8x16_s(q4, x4));
    }
    const a = i32x4.add(i32x4.dot_i16x8_s(p1, v128.load16_splat(sc)), i32x4.dot_i16x8_s(p2, v128.load16_splat(sc, 4)));
    in_order(scratch + 32, a); // (rows.ts) in cache 13.5–14.4 → 16.0–16.4 G MAC/s
    isum = i32x4.add(isum, i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(p3, v128.load16_splat(sc, 8)), i32x4.dot_i16x8_s(p4, v128.load16_splat(sc, 12)))));
  }
  let total = hsum_i32(isum);
  if (ASC_FEATURE_RELAXED_SIMD) {
    // − 32·Σ_g sc_g·(Σx)_g: scale g covers the same 16 values as the activation's bsums[g]
    total -= hsum_i32(i32x4.add(i32x4.dot_i16x8_s(sc0, v128.load(bs)), i32x4.dot_i16x8_s(sc1, v128.load(bs, 16)))) << 5;
  }
  return total;
}

// group k (0..3, a constant after inlining) of the values at lanes l..l+15 of a Q6_K half: weights
// l + 32k of the half, 4 bits of ql (qla for k even, qlb odd; low nibbles for k < 2) and bits 2k..2k+1
// of qh — 0..63 (relaxed) or less 32 (SIMD128). Bytes are shifted as 16-bit lanes where the mask,
// or values ≤ 3 shifted left, keep them apart.
@inline export function q6_group(qla: v128, qlb: v128, qhv: v128, k: i32): v128 {
  const m4 = bytes(0x0f), m2 = bytes(3);
  const ql = k & 1 ? qlb : qla;
  const lo = k < 2 ? v128.and(ql, m4) : hi_nibbles(ql);
  const q = v128.or(lo, i16x8.shl(v128.and(k == 0 ? qhv : i16x8.shr_u(qhv, 2 * k), m2), 4));
  return ASC_FEATURE_RELAXED_SIMD ? q : i8x16.sub(q, bytes(32));
}

@inline export function q6_expand_quarter(blk: usize, e: usize, h: i32, l: i32): void {
  const ql = blk + (<usize>h << 6) + <usize>l, qh = blk + Q6_K_QH + (<usize>h << 5) + <usize>l;
  const qla = v128.load(ql), qlb = v128.load(ql, 32), qhv = v128.load(qh);
  const o = e + (<usize>h << 7) + <usize>l;
  v128.store(o, q6_group(qla, qlb, qhv, 0));
  v128.store(o, q6_group(qla, qlb, qhv, 1), 32);
  v128.store(o, q6_group(qla, qlb, qhv, 2), 64);
  v128.store(o, q6_group(qla, qlb, qhv, 3), 96);
}

@inline export function q6_expand(blk: usize, e: usize): void {
  q6_expand_quarter(blk, e, 0, 0);
  q6_expand_quarter(blk, e, 0, 16);
  q6_expand_quarter(blk, e, 1, 0);
  q6_expand_quarter(blk, e, 1, 16);
  const scv = v128.load(blk + Q6_K_SCALES);
  const sc0 = i16x8.extend_low_i8x16_s(scv), sc1 = i16x8.extend_high_i8x16_s(scv);
  kx6_scales(e, sc0, sc1);
  store<f32>(e, f16_to_f32(load<u16>(blk + Q6_K_D)), 544);
}
