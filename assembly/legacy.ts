// The other legacy types, one driver over three blocks of 32 weights (activations: Q8_0 blocks):
//   Q4_1 — 20 bytes (5 bits per weight):   d: f16 (0) | m: f16 (2) | qs: 16 bytes (4); w = d·q + m
//   Q5_0 — 22 bytes (5.5 bits per weight): d: f16 (0) | qh: 4 bytes, 5th bits (2) | qs: 16 bytes (6); w = d·(q − 16)
//   Q5_1 — 24 bytes (6 bits per weight):   d: f16 (0) | m: f16 (2) | qh: 4 bytes (4) | qs: 16 bytes (8); w = d·q + m
// Twin: matmulRef over dequantizeRow (src/quant/dequantize.ts).
import { GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1 } from './ggml';
import { BITS8, bytes, f16_to_f32, f16x8_lo, hi_nibbles, hsum4, hsum_i32 } from './lanes';
import { RUNS, T_CHUNK, run_o, run_w, scales4 } from './rows';

export const Q4_1_BYTES: i32 = 20;
export const Q5_0_BYTES: i32 = 22;
export const Q5_1_BYTES: i32 = 24;

// ── the other legacy types: Q4_1, Q5_0, Q5_1 (one row at a time) and BF16 ─────────────────────
// Activations are Q8_0 blocks (Q8_1's values are the same; its s = d·Σq is formed here as
// dx·Σq, without ggml's f16 rounding of s). Twin: matmulRef.

// Σ of 32 products of (weights 0..31 as i8 in w0 | w1) with x0 | x1; |q·x| ≤ 32·128, two per i16 lane
@inline export function dot32(w0: v128, w1: v128, x0: v128, x1: v128): v128 {
  const a = i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extmul_low_i8x16_s(w0, x0), i16x8.extmul_high_i8x16_s(w0, x0)));
  return i32x4.add(a, i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extmul_low_i8x16_s(w1, x1), i16x8.extmul_high_i8x16_s(w1, x1))));
}

// Σx of a Q8_0 activation block, in every lane
@inline export function xsum32(x0: v128, x1: v128): i32 {
  return hsum_i32(i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extadd_pairwise_i8x16_s(x0), i16x8.extadd_pairwise_i8x16_s(x1))));
}

// the 5th bits of a Q5 block (qh: its 4 bytes, loaded into every lane; bit j ↔ weight j) as 16 in
// bytes 0..15 (half 0) or 16..31 (half 1): byte j of the half takes byte j/8 of it, masked by bit j%8
@inline export function q5_high(qh: v128, half: i32): v128 {
  const sel = half == 0 ? v128.shuffle<u8>(qh, qh, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1) : v128.shuffle<u8>(qh, qh, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const mask = v128.load(BITS8);
  return v128.and(i8x16.eq(v128.and(sel, mask), mask), bytes(16));
}

// Q4_1 block (20 B): d f16 | m f16 | qs[16]; weight = q·d + m
// Q5_0 block (22 B): d f16 | qh u32 | qs[16]; weight = (q | h<<4) − 16
// Q5_1 block (24 B): d f16 | m f16 | qh u32 | qs[16]; weight = (q | h<<4)·d + m
// `kind` (GGML_TYPE_Q4_1, _Q5_0, _Q5_1: ggml.ts) is a constant at each call site.

// Σ q·x of a block's 32 unsigned weights (as bytes, ≤ 31: lo | hi) as i32x4 partials: relaxed,
// two i8×i7 pair-dots (|lane| ≤ 4·31·127 fits i16); SIMD128, widening multiplies
@inline export function udot32(lo: v128, hi: v128, x0: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi)));
  return dot32(lo, hi, x0, x1);
}

// Σ q·x of a legacy block with q unsigned (Q5_0's −16 is the caller's), i32x4 partials
@inline export function legacy_isum(kind: i32, blk: usize, x0: v128, x1: v128): v128 {
  return udot32(legacy_q(kind, blk, 0), legacy_q(kind, blk, 1), x0, x1);
}
// a legacy block's unsigned values 0..15 (half 0) or 16..31 (half 1) as bytes
@inline export function legacy_q(kind: i32, blk: usize, half: i32): v128 {
  const qs = v128.load(blk + (kind == GGML_TYPE_Q4_1 ? 4 : kind == GGML_TYPE_Q5_0 ? 6 : 8));
  const q = half == 0 ? v128.and(qs, bytes(0x0f)) : hi_nibbles(qs);
  return kind == GGML_TYPE_Q4_1 ? q : v128.or(q, q5_high(v128.load32_splat(blk + (kind == GGML_TYPE_Q5_0 ? 2 : 4)), half));
}

// one row's block dotted with a token's block (x0 | x1, Σx = xs, scale dx)
@inline export function legacy_block(kind: i32, blk: usize, x0: v128, x1: v128, xs: i32, dx: f32): f32 {
  const s = hsum_i32(legacy_isum(kind, blk, x0, x1));
  if (kind == GGML_TYPE_Q5_0) return dx * (f16_to_f32(load<u16>(blk)) * <f32>(s - (xs << 4)));
  return dx * (f16_to_f32(load<u16>(blk)) * <f32>s + f16_to_f32(load<u16>(blk + 2)) * <f32>xs);
}

// acc (at o) += four rows' blocks (at w, w + step, …) dotted with one token's block, lane = row:
// the same operations per lane as legacy_block
@inline export function legacy_acc4(kind: i32, o: usize, w: usize, step: usize, x0: v128, x1: v128, xs: i32, dx: v128): void {
  const w1 = w + step, w2 = w1 + step, w3 = w2 + step;
  let s = hsum4(legacy_isum(kind, w, x0, x1), legacy_isum(kind, w1, x0, x1), legacy_isum(kind, w2, x0, x1), legacy_isum(kind, w3, x0, x1));
  if (kind == GGML_TYPE_Q5_0) s = i32x4.sub(s, i32x4.splat(xs << 4));
  let v = f32x4.mul(f16x8_lo(scales4(w, w1, w2, w3)), f32x4.convert_i32x4_s(s));
  if (kind != GGML_TYPE_Q5_0) v = f32x4.add(v, f32x4.mul(f16x8_lo(scales4(w + 2, w1 + 2, w2 + 2, w3 + 2)), f32x4.splat(<f32>xs)));
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(dx, v)));
}

// legacy_acc4 for prefill, from four rows' blocks expanded at e (expand_legacy4) and the token's
// Σx (xs) and scale (dx): the same operations per lane
@inline export function legacy_acc4x(kind: i32, o: usize, e: usize, x0: v128, x1: v128, xs: i32, dx: v128): void {
  let s = hsum4(udot32(v128.load(e), v128.load(e, 16), x0, x1), udot32(v128.load(e, 32), v128.load(e, 48), x0, x1), udot32(v128.load(e, 64), v128.load(e, 80), x0, x1), udot32(v128.load(e, 96), v128.load(e, 112), x0, x1));
  if (kind == GGML_TYPE_Q5_0) s = i32x4.sub(s, i32x4.splat(xs << 4));
  let v = f32x4.mul(v128.load(e, 128), f32x4.convert_i32x4_s(s));
  if (kind != GGML_TYPE_Q5_0) v = f32x4.add(v, f32x4.mul(v128.load(e, 144), f32x4.splat(<f32>xs)));
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(dx, v)));
}
// four rows' blocks (at w, w + step, …) expanded at e: each row's 32 unsigned values (32 bytes), then
// [d0..d3] and [m0..m3] as f32
@inline export function expand_legacy4(kind: i32, e: usize, w: usize, step: usize): void {
  const w1 = w + step, w2 = w1 + step, w3 = w2 + step;
  v128.store(e, legacy_q(kind, w, 0));
  v128.store(e, legacy_q(kind, w, 1), 16);
  v128.store(e, legacy_q(kind, w1, 0), 32);
  v128.store(e, legacy_q(kind, w1, 1), 48);
  v128.store(e, legacy_q(kind, w2, 0), 64);
  v128.store(e, legacy_q(kind, w2, 1), 80);
  v128.store(e, legacy_q(kind, w3, 0), 96);
  v128.store(e, legacy_q(kind, w3, 1), 112);
  v128.store(e, f16x8_lo(scales4(w, w1, w2, w3)), 128);
  v128.store(e, f16x8_lo(scales4(w + 2, w1 + 2, w2 + 2, w3 + 2)), 144);
}

// Q4_1, Q5_0, Q5_1 share one driver: four rows per pass; decode reads eight runs side by side, as
// Q8_0 (x4: the matrix is stored BLOCKS4); a single row does the same float operations in scalar
@inline export function matmul_legacy(x4: bool, kind: i32, blockBytes: i32, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize): void {
  const nb = cols >> 5;
  const bb = <usize>blockBytes;
  const rowBytes = <usize>nb * bb;
  const rowStep: usize = x4 ? bb : rowBytes, blockStep: usize = x4 ? 4 * bb : bb;
  let r = r0;
  if (T == 1) {
    const nG = (r1 - r0) >> 2, q = (nG + RUNS - 1) / RUNS;
    const sink = memory.data(16 * RUNS, 16), stride = <usize>q * 4 * rowBytes;
    for (let i = 0; i < q; i++) {
      const g = wPtr + <usize>(r0 + 4 * i) * rowBytes, o = outPtr + (<usize>(r0 + 4 * i) << 2);
      const w0 = g, o0 = o;
      const w1 = run_w(1, q, i, nG, g, stride), o1 = run_o(1, q, i, nG, o, sink);
      const w2 = run_w(2, q, i, nG, g, stride), o2 = run_o(2, q, i, nG, o, sink);
      const w3 = run_w(3, q, i, nG, g, stride), o3 = run_o(3, q, i, nG, o, sink);
      const w4 = run_w(4, q, i, nG, g, stride), o4 = run_o(4, q, i, nG, o, sink);
      const w5 = run_w(5, q, i, nG, g, stride), o5 = run_o(5, q, i, nG, o, sink);
      const w6 = run_w(6, q, i, nG, g, stride), o6 = run_o(6, q, i, nG, o, sink);
      const w7 = run_w(7, q, i, nG, g, stride), o7 = run_o(7, q, i, nG, o, sink);
      for (let k = 0; k < RUNS; k++) v128.store(run_o(k, q, i, nG, o, sink), f32x4.splat(0));
      for (let b = 0; b < nb; b++) {
        const ob = <usize>b * blockStep, xq = qsPtr + (<usize>b << 5);
        const x0 = v128.load(xq), x1 = v128.load(xq, 16), xs = xsum32(x0, x1), dx = v128.load32_splat(dPtr + (<usize>b << 2));
        legacy_acc4(kind, o0, w0 + ob, rowStep, x0, x1, xs, dx);
        legacy_acc4(kind, o1, w1 + ob, rowStep, x0, x1, xs, dx);
        legacy_acc4(kind, o2, w2 + ob, rowStep, x0, x1, xs, dx);
        legacy_acc4(kind, o3, w3 + ob, rowStep, x0, x1, xs, dx);
        legacy_acc4(kind, o4, w4 + ob, rowStep, x0, x1, xs, dx);
        legacy_acc4(kind, o5, w5 + ob, rowStep, x0, x1, xs, dx);
        legacy_acc4(kind, o6, w6 + ob, rowStep, x0, x1, xs, dx);
        legacy_acc4(kind, o7, w7 + ob, rowStep, x0, x1, xs, dx);
      }
    }
  } else {
    for (; r + 4 <= r1; r += 4) {
      const g = wPtr + <usize>r * rowBytes;
      for (let t = 0; t < T; t++) v128.store(outPtr + (<usize>(t * rows + r) << 2), f32x4.splat(0));
      for (let t0 = 0; t0 < T; t0 += T_CHUNK)
      for (let b = 0, t1 = min(T, t0 + T_CHUNK); b < nb; b++) {
        expand_legacy4(kind, scratch, g + <usize>b * blockStep, rowStep);
        for (let t = t0; t < t1; t++) {
          const tb = <usize>(t * nb + b), xq = qsPtr + (tb << 5);
          const x0 = v128.load(xq), x1 = v128.load(xq, 16);
          legacy_acc4x(kind, outPtr + (<usize>(t * rows + r) << 2), scratch, x0, x1, xsum32(x0, x1), v128.load32_splat(dPtr + (tb << 2)));
        }
      }
    }
  }
  r = r0 + ((r1 - r0) & ~3);
  for (; r < r1; r++) {
    const w = wPtr + <usize>r * rowBytes;
    for (let t = 0; t < T; t++) {
      const xq = qsPtr + <usize>t * <usize>cols;
      const xd = dPtr + (<usize>(t * nb) << 2);
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const x0 = v128.load(xq + (<usize>b << 5)), x1 = v128.load(xq + (<usize>b << 5), 16);
        acc += legacy_block(kind, w + <usize>b * bb, x0, x1, xsum32(x0, x1), load<f32>(xd + (<usize>b << 2)));
      }
      store<f32>(outPtr + (<usize>(t * rows + r) << 2), acc);
    }
  }
}

export function matmul_q4_1(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_legacy(true, GGML_TYPE_Q4_1, Q4_1_BYTES, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
  else matmul_legacy(false, GGML_TYPE_Q4_1, Q4_1_BYTES, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
}
export function matmul_q5_0(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_legacy(true, GGML_TYPE_Q5_0, Q5_0_BYTES, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
  else matmul_legacy(false, GGML_TYPE_Q5_0, Q5_0_BYTES, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
}
export function matmul_q5_1(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_legacy(true, GGML_TYPE_Q5_1, Q5_1_BYTES, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
  else matmul_legacy(false, GGML_TYPE_Q5_1, Q5_1_BYTES, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
}
