// The K-quant matmuls (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): one driver for decode (four rows per pass,
// eight runs in flight) and prefill (each block of four rows expanded once, then dotted with every
// token of a chunk), over each format's block functions (q2_K.ts … q6_K.ts). Activations are Q8_K.
// Twin: matmulRef (src/backend/ref/ops.ts).
import { GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K } from './ggml';
import { KX6_ROW, k4_msum, k4_scale_min, splat16, sub_dot16 } from './k_common';
import { K4_MINS2, bytes, f16x8_lo, hi_nibbles, hsum4, pick } from './lanes';
import { Q2_K_BYTES, q2_K_block, q2_expand } from './q2_K';
import { Q3_K_BYTES, q3_K_block, q3_expand } from './q3_K';
import { Q4_K_BYTES, Q4_K_QS, Q4_K_SCALES, q4_K_block, q4_K_isum } from './q4_K';
import { Q5_K_BYTES, Q5_K_QH, Q5_K_QS, q5_K_block, q5k_hi, q5k_lo } from './q5_K';
import { Q6_K_BYTES, Q6_K_D, q6_K_block, q6_K_total, q6_expand } from './q6_K';
import { RUNS, TOUCH_AHEAD, T_CHUNK, in_order, scales4 } from './rows';

// ── K-quant prefill: each block of four rows is expanded once, then dotted with every token ────
// A row's expanded block (KX_ROW bytes at e, in the calling thread's scratch): the 256 weights as
// bytes in sub-block order (sub-block j at 32j), the eight scales as i16 splats (at 256 + 16j), the
// mins as i16 pairs for the bsums (at 384 and 400) and [d, dmin] as f32 (at 416) — everything
// k4_final derives from the weights alone. The dot then gives q4_K_block's value exactly.
export const KX_ROW: usize = 432;

@inline export function k4_expand_pair(e: usize, qa: v128, qb: v128, ha: v128, hb: v128): void {
  v128.store(e, qa);
  v128.store(e, qb, 16);
  v128.store(e, ha, 32);
  v128.store(e, hb, 48);
}

@inline export function k4_expand(kind: i32, blk: usize, e: usize): void {
  const m4 = bytes(0x0f);
  if (kind == GGML_TYPE_Q4_K) {
    const q = blk + Q4_K_QS;
    for (let g: usize = 0; g < 4; g++) {
      const qa = v128.load(q + 32 * g), qb = v128.load(q + 32 * g, 16);
      k4_expand_pair(e + 64 * g, v128.and(qa, m4), v128.and(qb, m4), hi_nibbles(qa), hi_nibbles(qb));
    }
  } else {
    const qha = v128.load(blk + Q5_K_QH), qhb = v128.load(blk + Q5_K_QH + 16), q = blk + Q5_K_QS;
    let qa = v128.load(q), qb = v128.load(q, 16);
    k4_expand_pair(e, q5k_lo(qa, qha, 0), q5k_lo(qb, qhb, 0), q5k_hi(qa, qha, 1), q5k_hi(qb, qhb, 1));
    qa = v128.load(q, 32), qb = v128.load(q, 48);
    k4_expand_pair(e + 64, q5k_lo(qa, qha, 2), q5k_lo(qb, qhb, 2), q5k_hi(qa, qha, 3), q5k_hi(qb, qhb, 3));
    qa = v128.load(q, 64), qb = v128.load(q, 80);
    k4_expand_pair(e + 128, q5k_lo(qa, qha, 4), q5k_lo(qb, qhb, 4), q5k_hi(qa, qha, 5), q5k_hi(qb, qhb, 5));
    qa = v128.load(q, 96), qb = v128.load(q, 112);
    k4_expand_pair(e + 192, q5k_lo(qa, qha, 6), q5k_lo(qb, qhb, 6), q5k_hi(qa, qha, 7), q5k_hi(qb, qhb, 7));
  }
  const sm = k4_scale_min(blk + Q4_K_SCALES);
  const scl = i16x8.extend_low_i8x16_u(sm);
  v128.store(e, splat16(scl, 0), 256);
  v128.store(e, splat16(scl, 1), 272);
  v128.store(e, splat16(scl, 2), 288);
  v128.store(e, splat16(scl, 3), 304);
  v128.store(e, splat16(scl, 4), 320);
  v128.store(e, splat16(scl, 5), 336);
  v128.store(e, splat16(scl, 6), 352);
  v128.store(e, splat16(scl, 7), 368);
  const m2 = pick(sm, K4_MINS2); // each min twice, as i16
  v128.store(e, i16x8.extend_low_i8x16_u(m2), 384);
  v128.store(e, i16x8.extend_high_i8x16_u(m2), 400);
  v128.store(e, f16x8_lo(v128.load32_zero(blk)), 416);
}

@inline export function kx_expand(kind: i32, blk: usize, e: usize): void {
  if (kind == GGML_TYPE_Q6_K) q6_expand(blk, e);
  else if (kind == GGML_TYPE_Q3_K) q3_expand(blk, e);
  else if (kind == GGML_TYPE_Q2_K) q2_expand(blk, e);
  else k4_expand(kind, blk, e);
}

// four expanded rows (at e, e + KXR, …) dotted with one token's block, lane = row: the x loads are
// shared by the rows, the sums reduced together, the float step done once — the same operations per
// lane as the decode path, so each row's value is the same bit for bit
@inline export function kx_rows4(kind: i32, e: usize, x: usize, bs: usize, dx: f32): v128 {
  const R: usize = kind <= GGML_TYPE_Q3_K || kind == GGML_TYPE_Q6_K ? KX6_ROW : KX_ROW;
  let i0 = i32x4.splat(0), i1 = i32x4.splat(0), i2 = i32x4.splat(0), i3 = i32x4.splat(0);
  if (kind <= GGML_TYPE_Q3_K || kind == GGML_TYPE_Q6_K) {
    for (let g: usize = 0; g < 16; g++) {
      const xv = v128.load(x + 16 * g);
      i0 = i32x4.add(i0, q6x_dot(e, xv, g));
      i1 = i32x4.add(i1, q6x_dot(e + R, xv, g));
      i2 = i32x4.add(i2, q6x_dot(e + 2 * R, xv, g));
      i3 = i32x4.add(i3, q6x_dot(e + 3 * R, xv, g));
    }
    if (kind == GGML_TYPE_Q2_K) {
      // Q2_K: dx·(d·Σ sc·q·x − dmin·Σ m·(Σx)), the mins as i16 at 512, 528, [d, dmin] at 544
      const b0 = v128.load(bs), b1 = v128.load(bs, 16);
      const msum = hsum4(q6x_msum(e, b0, b1), q6x_msum(e + R, b0, b1), q6x_msum(e + 2 * R, b0, b1), q6x_msum(e + 3 * R, b0, b1));
      return kx_dmin_final(e, R, 544, hsum4(i0, i1, i2, i3), msum, dx);
    }
    let total = hsum4(i0, i1, i2, i3);
    if (kind == GGML_TYPE_Q3_K || ASC_FEATURE_RELAXED_SIMD) {
      // Q6_K's −32 (relaxed) or Q3_K's −4 (both builds) through the bsums
      const b0 = v128.load(bs), b1 = v128.load(bs, 16);
      const m = hsum4(q6x_msum(e, b0, b1), q6x_msum(e + R, b0, b1), q6x_msum(e + 2 * R, b0, b1), q6x_msum(e + 3 * R, b0, b1));
      total = i32x4.sub(total, i32x4.shl(m, kind == GGML_TYPE_Q3_K ? 2 : 5));
    }
    const d = f32x4(load<f32>(e, 544), load<f32>(e + R, 544), load<f32>(e + 2 * R, 544), load<f32>(e + 3 * R, 544));
    return f32x4.mul(f32x4.splat(dx), f32x4.mul(d, f32x4.convert_i32x4_s(total)));
  }
  for (let j: usize = 0; j < 8; j++) {
    const xa = v128.load(x + 32 * j), xb = v128.load(x + 32 * j, 16);
    i0 = i32x4.add(i0, kx_sub_x(e, xa, xb, j));
    i1 = i32x4.add(i1, kx_sub_x(e + R, xa, xb, j));
    i2 = i32x4.add(i2, kx_sub_x(e + 2 * R, xa, xb, j));
    i3 = i32x4.add(i3, kx_sub_x(e + 3 * R, xa, xb, j));
  }
  const b0 = v128.load(bs), b1 = v128.load(bs, 16);
  const msum = hsum4(kx_msum(e, b0, b1), kx_msum(e + R, b0, b1), kx_msum(e + 2 * R, b0, b1), kx_msum(e + 3 * R, b0, b1));
  return kx_dmin_final(e, R, 416, hsum4(i0, i1, i2, i3), msum, dx);
}
// dx·(d·isum − dmin·msum) for four expanded rows (R bytes apart), lane = row, from each row's
// [d dmin] (f32) at `at` and the integer sums
@inline export function kx_dmin_final(e: usize, R: usize, at: usize, isum: v128, msum: v128, dx: f32): v128 {
  const a = v128.shuffle<i32>(v128.load64_zero(e + at), v128.load64_zero(e + R + at), 0, 4, 1, 5);
  const c = v128.shuffle<i32>(v128.load64_zero(e + 2 * R + at), v128.load64_zero(e + 3 * R + at), 0, 4, 1, 5);
  const d = v128.shuffle<i32>(a, c, 0, 1, 4, 5), dmin = v128.shuffle<i32>(a, c, 2, 3, 6, 7);
  return f32x4.mul(f32x4.splat(dx), f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(isum)), f32x4.mul(dmin, f32x4.convert_i32x4_s(msum))));
}
// sub-block j of an expanded block against the activation's (xa | xb), scaled (i32x4 partials)
@inline export function kx_sub_x(e: usize, xa: v128, xb: v128, j: usize): v128 {
  return i32x4.dot_i16x8_s(sub_dot16(v128.load(e + 32 * j), xa, v128.load(e + 32 * j, 16), xb), v128.load(e + 16 * j, 256));
}
@inline export function kx_msum(e: usize, b0: v128, b1: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(b0, v128.load(e, 384)), i32x4.dot_i16x8_s(b1, v128.load(e, 400)));
}
// group g (16 values) of an expanded Q6_K block against the activation's, scaled (i32x4 partials)
@inline export function q6x_dot(e: usize, xv: v128, g: usize): v128 {
  const q = v128.load(e + 16 * g);
  let p: v128;
  if (ASC_FEATURE_RELAXED_SIMD) p = i16x8.relaxed_dot_i8x16_i7x16_s(xv, q);
  else p = i16x8.add(i16x8.extmul_low_i8x16_s(q, xv), i16x8.extmul_high_i8x16_s(q, xv));
  return i32x4.dot_i16x8_s(p, v128.load(e + 16 * g, 256));
}
@inline export function q6x_msum(e: usize, b0: v128, b1: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 512), b0), i32x4.dot_i16x8_s(v128.load(e, 528), b1));
}


// The K-quant matmuls share one driver: four rows per pass (the activation block is shared and four
// independent weight streams are in flight), then single rows. `kind` (a ggml type id: ggml.ts) is a constant at each call
// site, so the block function is chosen at compile time.
// out[0..3] (at o) += four rows' blocks (at w, w + step, …) dotted with one token's block
// Q4_K and Q6_K do the float step for the four rows at once, lane = row: the same operations as
// kq_block's, so each row's value is the same bit for bit (in cache Q4_K +17 %, Q6_K +2 %; Q5_K,
// whose blocks hold more live values, lost 4–20 % from DRAM that way and keeps kq_block's).
@inline export function kq_acc4(kind: i32, o: usize, w: usize, step: usize, x: usize, bs: usize, dx: f32, scratch: usize): void {
  const w1 = w + step, w2 = w1 + step, w3 = w2 + step;
  let v: v128;
  // each row's result is stored as soon as it is made (in_order, at ord: never read), so that V8
  // does one row's arithmetic before the next row's loads
  const ord = scratch + 64;
  if (kind == GGML_TYPE_Q5_K || kind <= GGML_TYPE_Q3_K) {
    const a0 = kq_block(kind, w, x, bs, dx, scratch);
    store<f32>(ord, a0);
    const a1 = kq_block(kind, w1, x, bs, dx, scratch);
    store<f32>(ord, a1, 4);
    const a2 = kq_block(kind, w2, x, bs, dx, scratch);
    store<f32>(ord, a2, 8);
    v = f32x4(a0, a1, a2, kq_block(kind, w3, x, bs, dx, scratch));
  } else if (kind == GGML_TYPE_Q6_K) {
    const t0 = q6_K_total(w, x, bs, scratch);
    store<i32>(ord, t0);
    const t1 = q6_K_total(w1, x, bs, scratch);
    store<i32>(ord, t1, 4);
    const t2 = q6_K_total(w2, x, bs, scratch);
    store<i32>(ord, t2, 8);
    const t = i32x4(t0, t1, t2, q6_K_total(w3, x, bs, scratch));
    v = f32x4.mul(f32x4.splat(dx), f32x4.mul(f16x8_lo(scales4(w + Q6_K_D, w1 + Q6_K_D, w2 + Q6_K_D, w3 + Q6_K_D)), f32x4.convert_i32x4_s(t)));
  } else {
    const s0 = k4_scale_min(w + 4), i0 = q4_K_isum(w, x, s0, scratch), m0 = k4_msum(s0, bs);
    in_order(ord, i0);
    in_order(ord + 16, m0);
    const s1 = k4_scale_min(w1 + 4), i1 = q4_K_isum(w1, x, s1, scratch), m1 = k4_msum(s1, bs);
    in_order(ord + 32, i1);
    in_order(ord + 48, m1);
    const s2 = k4_scale_min(w2 + 4), i2 = q4_K_isum(w2, x, s2, scratch), m2 = k4_msum(s2, bs);
    in_order(ord + 64, i2);
    in_order(ord + 80, m2);
    const s3 = k4_scale_min(w3 + 4);
    const isum = f32x4.convert_i32x4_s(hsum4(i0, i1, i2, q4_K_isum(w3, x, s3, scratch)));
    const msum = f32x4.convert_i32x4_s(hsum4(m0, m1, m2, k4_msum(s3, bs)));
    // [d0 d1 dmin0 dmin1], [d2 d3 dmin2 dmin3] → [d0..d3], [dmin0..dmin3]
    const a = v128.shuffle<i32>(f16x8_lo(v128.load32_zero(w)), f16x8_lo(v128.load32_zero(w1)), 0, 4, 1, 5);
    const b = v128.shuffle<i32>(f16x8_lo(v128.load32_zero(w2)), f16x8_lo(v128.load32_zero(w3)), 0, 4, 1, 5);
    const d = v128.shuffle<i32>(a, b, 0, 1, 4, 5), dmin = v128.shuffle<i32>(a, b, 2, 3, 6, 7);
    v = f32x4.mul(f32x4.splat(dx), f32x4.sub(f32x4.mul(d, isum), f32x4.mul(dmin, msum)));
  }
  v128.store(o, f32x4.add(v128.load(o), v));
}

@inline export function kq_block(kind: i32, blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  if (kind == GGML_TYPE_Q2_K) return q2_K_block(blk, x, bs, dx, scratch);
  if (kind == GGML_TYPE_Q3_K) return q3_K_block(blk, x, bs, dx, scratch);
  if (kind == GGML_TYPE_Q4_K) return q4_K_block(blk, x, bs, dx, scratch);
  if (kind == GGML_TYPE_Q5_K) return q5_K_block(blk, x, bs, dx, scratch);
  return q6_K_block(blk, x, bs, dx, scratch);
}

@inline export function matmul_kq(kind: i32, blockBytes: i32, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  const nb = cols >> 8;
  const bb = <usize>blockBytes;
  const rowBytes = <usize>nb * bb;
  // where block b of row k of a group of four is: g + k·rowStep + b·blockStep
  const rowStep = x4 ? bb : rowBytes, blockStep = x4 ? 4 * bb : bb;
  let r = r0;
  const wEnd = wPtr + <usize>r1 * rowBytes;
  let touched = i32x4.splat(0);
  if (T > 1) {
    // prefill: per block, four rows expanded into scratch, then every token
    const KXR = kind <= GGML_TYPE_Q3_K || kind == GGML_TYPE_Q6_K ? KX6_ROW : KX_ROW;
    for (; r + 4 <= r1; r += 4) {
      const w0 = wPtr + <usize>r * rowBytes;
      for (let t = 0; t < T; t++) v128.store(outPtr + (<usize>(t * rows + r) << 2), f32x4.splat(0));
      for (let t0 = 0; t0 < T; t0 += T_CHUNK)
      for (let b = 0, t1 = min(T, t0 + T_CHUNK); b < nb; b++) {
        const o = <usize>b * blockStep;
        kx_expand(kind, w0 + o, scratch);
        kx_expand(kind, w0 + rowStep + o, scratch + KXR);
        kx_expand(kind, w0 + 2 * rowStep + o, scratch + 2 * KXR);
        kx_expand(kind, w0 + 3 * rowStep + o, scratch + 3 * KXR);
        for (let t = t0; t < t1; t++) {
          const x = qsPtr + <usize>t * <usize>cols + (<usize>b << 8);
          const bs = bsPtr + (<usize>(t * (cols >> 4)) << 1) + (<usize>b << 5);
          const dx = load<f32>(dPtr + (<usize>(t * nb + b) << 2));
          const out = outPtr + (<usize>(t * rows + r) << 2);
          // the same additions, in the same order, as the decode path's
          v128.store(out, f32x4.add(v128.load(out), kx_rows4(kind, scratch, x, bs, dx)));
        }
      }
    }
  }
  if (T == 1 && x4) {
    // decode, rows interleaved in fours: eight runs side by side, as Q4_0x4
    const nG = (r1 - r0) >> 2, q = (nG + RUNS - 1) / RUNS;
    const stride = <usize>q * 4 * rowBytes, strideO = <usize>q << 4;
    for (let i = 0; i < q; i++) {
      const n = min(RUNS, (nG - i + q - 1) / q); // runs that have a group i
      const g = wPtr + <usize>(r0 + 4 * i) * rowBytes, o = outPtr + (<usize>(r0 + 4 * i) << 2);
      for (let k = 0; k < n; k++) v128.store(o + <usize>k * strideO, f32x4.splat(0));
      for (let b = 0; b < nb; b++) {
        const ob = <usize>b * blockStep, x = qsPtr + (<usize>b << 8), bs = bsPtr + (<usize>b << 5), dx = load<f32>(dPtr + (<usize>b << 2));
        // first one load per cache line of every run's block, then the dots: the misses of all runs
        // go out together instead of each waiting behind the previous run's arithmetic (1 thread,
        // 512 MB matrices, AMD EPYC Zen 3, noisy: Q4_K 5.7–7.9 → 7.7–10.4 G MAC/s, Q5_K ≈ 4.5 → 5.5–6.9,
        // Q6_K 2.7–3.6 → 4.9–5.9; touching further ahead measured slower)
        for (let k = 0; k < n; k++) {
          const w = g + <usize>k * stride + ob;
          for (let j: usize = 0; j < 4 * bb; j += 64) touched = i32x4.add(touched, v128.load32_zero(w + j));
        }
        for (let k = 0; k < n; k++) kq_acc4(kind, o + <usize>k * strideO, g + <usize>k * stride + ob, bb, x, bs, dx, scratch);
      }
    }
    r = r0 + ((r1 - r0) & ~3);
  }
  for (; r + 4 <= r1; r += 4) {
    const w0 = wPtr + <usize>r * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
    // decode: while block b of the four rows is read, the same share of the rows TOUCH_AHEAD bytes
    // further on is touched, one load per cache line
    const ahead = T == 1 && w0 + 4 * rowBytes + TOUCH_AHEAD <= wEnd ? w0 + TOUCH_AHEAD : 0;
    for (let t = 0; t < T; t++) {
      const xq = qsPtr + <usize>t * <usize>cols;
      const xd = dPtr + (<usize>(t * nb) << 2);
      const xb = bsPtr + (<usize>(t * (cols >> 4)) << 1);
      let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const o = <usize>b * bb;
        if (ahead) for (let k: usize = 0; k < 4 * bb; k += 64) touched = i32x4.add(touched, v128.load32_zero(ahead + 4 * o + k));
        const x = xq + (<usize>b << 8), bs = xb + (<usize>b << 5);
        const dx = load<f32>(xd + (<usize>b << 2));
        a0 += kq_block(kind, w0 + o, x, bs, dx, scratch);
        a1 += kq_block(kind, w1 + o, x, bs, dx, scratch);
        a2 += kq_block(kind, w2 + o, x, bs, dx, scratch);
        a3 += kq_block(kind, w3 + o, x, bs, dx, scratch);
      }
      const out = outPtr + (<usize>(t * rows + r) << 2);
      store<f32>(out, a0);
      store<f32>(out + 4, a1);
      store<f32>(out + 8, a2);
      store<f32>(out + 12, a3);
    }
  }
  if (T < 0) v128.store(outPtr, touched); // the touches must look used; T is never negative
  for (; r < r1; r++) {
    const w = wPtr + <usize>r * rowBytes;
    for (let t = 0; t < T; t++) {
      const xq = qsPtr + <usize>t * <usize>cols;
      const xd = dPtr + (<usize>(t * nb) << 2);
      const xb = bsPtr + (<usize>(t * (cols >> 4)) << 1);
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) acc += kq_block(kind, w + <usize>b * bb, xq + (<usize>b << 8), xb + (<usize>b << 5), load<f32>(xd + (<usize>b << 2)), scratch);
      store<f32>(outPtr + (<usize>(t * rows + r) << 2), acc);
    }
  }
}

export function matmul_q4_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(GGML_TYPE_Q4_K, Q4_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(GGML_TYPE_Q4_K, Q4_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}

export function matmul_q5_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(GGML_TYPE_Q5_K, Q5_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(GGML_TYPE_Q5_K, Q5_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}

export function matmul_q6_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(GGML_TYPE_Q6_K, Q6_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(GGML_TYPE_Q6_K, Q6_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}


export function matmul_q2_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(GGML_TYPE_Q2_K, Q2_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(GGML_TYPE_Q2_K, Q2_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}
export function matmul_q3_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(GGML_TYPE_Q3_K, Q3_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(GGML_TYPE_Q3_K, Q3_K_BYTES, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}
