// Q8_0 — ggml block of 32 weights in 34 bytes (8.5 bits per weight):
//   d: f16 (offset 0) | qs: 32 × i8 (offset 2); w = d·q
// Twin: matmulRef over dequantizeRow (src/quant/dequantize.ts).
import { bytes, f16_to_f32, f16x8_lo, hsum4, hsum_i32 } from './lanes';
import { RUNS, T_CHUNK, in_order, run_o, run_w, scales4 } from './rows';

// Q8_0 block (34 B): d f16 | qs[32] i8

// Σ w·x of 32 weights (w0 | w1) with the activations given as |x| (ax0 | ax1) and sign masks
// (sx0 | sx1: all ones where x < 0), as i32x4 partials. Relaxed: the sign moves onto the weight
// (w·sign(x) = (w ^ s) − s) so that |x| ≤ 127 is the unsigned 7-bit operand of the pair-dot — ggml's
// _mm256_sign_epi8 trick. A weight of −128 would overflow that: ggml never writes one (it quantizes
// to ±127), and a file that has one has it read as −127. SIMD128: widening multiplies.
@inline export function q8_0_isum(w0: v128, w1: v128, ax0: v128, sx0: v128, ax1: v128, sx1: v128): v128 {
  const m127 = bytes(-127);
  const a = i8x16.max_s(w0, m127), b = i8x16.max_s(w1, m127);
  if (ASC_FEATURE_RELAXED_SIMD) {
    // |pair sums| ≤ 2·127·127: one dot per i16 lane set, widened before adding
    return i32x4.add(
      i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.sub(v128.xor(a, sx0), sx0), ax0)),
      i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.sub(v128.xor(b, sx1), sx1), ax1)),
    );
  }
  // x = (|x| ^ s) − s again; |q·x| ≤ 127·128: one product per i16 lane, widen before adding
  const x0 = i8x16.sub(v128.xor(ax0, sx0), sx0), x1 = i8x16.sub(v128.xor(ax1, sx1), sx1);
  const s = i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_low_i8x16_s(a, x0)), i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_high_i8x16_s(a, x0)));
  return i32x4.add(s, i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_low_i8x16_s(b, x1)), i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_high_i8x16_s(b, x1))));
}

// a Q8_0 row's 32 (clamped) weights as four i16x8 at e
@inline export function q8_0_expand(e: usize, a: v128, b: v128): void {
  v128.store(e, i16x8.extend_low_i8x16_s(a));
  v128.store(e, i16x8.extend_high_i8x16_s(a), 16);
  v128.store(e, i16x8.extend_low_i8x16_s(b), 32);
  v128.store(e, i16x8.extend_high_i8x16_s(b), 48);
}
// Σ w·x of an expanded row and a token's activations widened to i16, as i32x4 partials
@inline export function q8_0x_row(e: usize, xa: v128, xb: v128, xc: v128, xd: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load(e), xa), i32x4.dot_i16x8_s(v128.load(e, 16), xb)),
    i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 32), xc), i32x4.dot_i16x8_s(v128.load(e, 48), xd)),
  );
}

// acc (at o) += the block at w of four rows (rowBytes apart) dotted with one token's block
@inline export function q8_0_acc4(o: usize, w: usize, rowBytes: usize, ax0: v128, sx0: v128, ax1: v128, sx1: v128, dx: v128, ord: usize): void {
  const w1 = w + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
  // each row's sum stored as it is made, at ord (the thread's scratch; never read): see in_order
  const s0 = q8_0_isum(v128.load(w, 2), v128.load(w, 18), ax0, sx0, ax1, sx1);
  in_order(ord, s0);
  const s1 = q8_0_isum(v128.load(w1, 2), v128.load(w1, 18), ax0, sx0, ax1, sx1);
  in_order(ord + 16, s1);
  const s2 = q8_0_isum(v128.load(w2, 2), v128.load(w2, 18), ax0, sx0, ax1, sx1);
  in_order(ord + 32, s2);
  const s = hsum4(s0, s1, s2, q8_0_isum(v128.load(w3, 2), v128.load(w3, 18), ax0, sx0, ax1, sx1));
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(f16x8_lo(scales4(w, w1, w2, w3)), dx))));
}

// Four rows per pass, reduced together (hsum4, lane = row) with one float step per block, as
// Q4_0; a single row does the same float operations in scalar. Decode reads eight runs of groups
// of four rows side by side, as Q4_0x4 does (one thread from DRAM, two processes: touches ahead
// 8.3 G MAC/s, four runs 9.5, eight 10.1).
export function matmul_q8_0(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_q8_0_impl(true, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
  else matmul_q8_0_impl(false, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
}

// x4: the matrix is stored BLOCKS4 (rows interleaved in fours, block by block), as the K-quants
@inline export function matmul_q8_0_impl(x4: bool, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize): void {
  const nb = cols >> 5;
  const rowBytes = <usize>nb * 34;
  // where block b of row k of a group of four is: g + k·rowStep + b·blockStep
  const rowStep: usize = x4 ? 34 : rowBytes, blockStep: usize = x4 ? 136 : 34;
  const zero = i8x16.splat(0);
  let r = r0;
  if (T > 1) {
    // prefill: each block of four rows expanded once into scratch — the weights clamped as above
    // and widened to i16 (16 vectors), their scales as f32 (at 256) — then dotted with every token
    // by i16 dots, the same integer sums; out accumulates the decode path's float steps in order
    for (; r + 4 <= r1; r += 4) {
      const g = wPtr + <usize>r * rowBytes;
      for (let t = 0; t < T; t++) v128.store(outPtr + (<usize>(t * rows + r) << 2), f32x4.splat(0));
      const m127 = bytes(-127);
      for (let t0 = 0; t0 < T; t0 += T_CHUNK)
      for (let b = 0, t1 = min(T, t0 + T_CHUNK); b < nb; b++) {
        const w0 = g + <usize>b * blockStep, w1 = w0 + rowStep, w2 = w1 + rowStep, w3 = w2 + rowStep;
        q8_0_expand(scratch, i8x16.max_s(v128.load(w0, 2), m127), i8x16.max_s(v128.load(w0, 18), m127));
        q8_0_expand(scratch + 64, i8x16.max_s(v128.load(w1, 2), m127), i8x16.max_s(v128.load(w1, 18), m127));
        q8_0_expand(scratch + 128, i8x16.max_s(v128.load(w2, 2), m127), i8x16.max_s(v128.load(w2, 18), m127));
        q8_0_expand(scratch + 192, i8x16.max_s(v128.load(w3, 2), m127), i8x16.max_s(v128.load(w3, 18), m127));
        v128.store(scratch, f16x8_lo(scales4(w0, w1, w2, w3)), 256);
        for (let t = t0; t < t1; t++) {
          const tb = <usize>(t * nb + b);
          const xb = qsPtr + (tb << 5);
          const x0 = v128.load(xb), x1 = v128.load(xb, 16);
          const xa = i16x8.extend_low_i8x16_s(x0), xb_ = i16x8.extend_high_i8x16_s(x0), xc = i16x8.extend_low_i8x16_s(x1), xd = i16x8.extend_high_i8x16_s(x1);
          // each row's sum stored as it is made (in_order)
          const s0 = q8_0x_row(scratch, xa, xb_, xc, xd);
          in_order(scratch + 272, s0);
          const s1 = q8_0x_row(scratch + 64, xa, xb_, xc, xd);
          in_order(scratch + 288, s1);
          const s2 = q8_0x_row(scratch + 128, xa, xb_, xc, xd);
          in_order(scratch + 304, s2);
          const s3 = q8_0x_row(scratch + 192, xa, xb_, xc, xd);
          const s = hsum4(s0, s1, s2, s3);
          const out = outPtr + (<usize>(t * rows + r) << 2);
          v128.store(out, f32x4.add(v128.load(out), f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(v128.load(scratch, 256), v128.load32_splat(dPtr + (tb << 2))))));
        }
      }
    }
  }
  if (T == 1) {
    const nG = (r1 - r0) >> 2, q = (nG + RUNS - 1) / RUNS;
    const sink = memory.data(16 * RUNS, 16), stride = <usize>q * 4 * rowBytes;
    for (let i = 0; i < q; i++) {
      const g = wPtr + <usize>(r0 + 4 * i) * rowBytes, o = outPtr + (<usize>(r0 + 4 * i) << 2);
      let w0 = g; const o0 = o;
      let w1 = run_w(1, q, i, nG, g, stride); const o1 = run_o(1, q, i, nG, o, sink);
      let w2 = run_w(2, q, i, nG, g, stride); const o2 = run_o(2, q, i, nG, o, sink);
      let w3 = run_w(3, q, i, nG, g, stride); const o3 = run_o(3, q, i, nG, o, sink);
      let w4 = run_w(4, q, i, nG, g, stride); const o4 = run_o(4, q, i, nG, o, sink);
      let w5 = run_w(5, q, i, nG, g, stride); const o5 = run_o(5, q, i, nG, o, sink);
      let w6 = run_w(6, q, i, nG, g, stride); const o6 = run_o(6, q, i, nG, o, sink);
      let w7 = run_w(7, q, i, nG, g, stride); const o7 = run_o(7, q, i, nG, o, sink);
      for (let k = 0; k < RUNS; k++) v128.store(run_o(k, q, i, nG, o, sink), f32x4.splat(0));
      const xEnd = qsPtr + <usize>cols;
      for (let xq = qsPtr, xd = dPtr; xq < xEnd; xq += 32, xd += 4) {
        const x0 = v128.load(xq), x1 = v128.load(xq, 16), dx = v128.load32_splat(xd);
        const ax0 = i8x16.abs(x0), sx0 = i8x16.lt_s(x0, zero), ax1 = i8x16.abs(x1), sx1 = i8x16.lt_s(x1, zero);
        q8_0_acc4(o0, w0, rowStep, ax0, sx0, ax1, sx1, dx, scratch); w0 += blockStep;
        q8_0_acc4(o1, w1, rowStep, ax0, sx0, ax1, sx1, dx, scratch); w1 += blockStep;
        q8_0_acc4(o2, w2, rowStep, ax0, sx0, ax1, sx1, dx, scratch); w2 += blockStep;
        q8_0_acc4(o3, w3, rowStep, ax0, sx0, ax1, sx1, dx, scratch); w3 += blockStep;
        q8_0_acc4(o4, w4, rowStep, ax0, sx0, ax1, sx1, dx, scratch); w4 += blockStep;
        q8_0_acc4(o5, w5, rowStep, ax0, sx0, ax1, sx1, dx, scratch); w5 += blockStep;
        q8_0_acc4(o6, w6, rowStep, ax0, sx0, ax1, sx1, dx, scratch); w6 += blockStep;
        q8_0_acc4(o7, w7, rowStep, ax0, sx0, ax1, sx1, dx, scratch); w7 += blockStep;
      }
    }
    r = r0 + ((r1 - r0) & ~3);
  }
  for (; r < r1; r++) {
    for (let t = 0; t < T; t++) {
      let w = wPtr + <usize>r * rowBytes;
      const tb = <usize>(t * nb);
      let xq = qsPtr + (tb << 5), xd = dPtr + (tb << 2);
      const xEnd = xq + <usize>cols;
      let acc: f32 = 0;
      for (; xq < xEnd; xq += 32, xd += 4) {
        const x0 = v128.load(xq), x1 = v128.load(xq, 16);
        const s = hsum_i32(q8_0_isum(v128.load(w, 2), v128.load(w, 18), i8x16.abs(x0), i8x16.lt_s(x0, zero), i8x16.abs(x1), i8x16.lt_s(x1, zero)));
        acc += <f32>s * (f16_to_f32(load<u16>(w)) * load<f32>(xd));
        w += 34;
      }
      store<f32>(outPtr + (<usize>(t * rows + r) << 2), acc);
    }
  }
}
