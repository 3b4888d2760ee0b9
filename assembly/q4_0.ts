// Q4_0 — ggml block of 32 weights in 18 bytes (4.5 bits per weight):
//   d: f16 (offset 0) | qs: 16 bytes (offset 2), byte j = weight j (low nibble) | weight j+16 (high); w = d·(q − 8)
// Kernels: matmul_q4_0 (rows as stored) and matmul_q4_0x4 (the backend's layout for Q4_0 matrices:
// four rows interleaved, repack_q4_0x4). Twins: matmulRef over dequantizeRow (src/quant/dequantize.ts),
// repackQ4_0x4 / q4_0x4Row (src/backend/wasm/layout.ts).
import { bytes, f16_to_f32, f16x8_lo, hi_nibbles, hsum4_i16, hsum_i32, kv_f16x8_lo } from './lanes';
import { KERNEL_SCRATCH_BYTES, RUNS, T_CHUNK, run_o, run_w, scales4 } from './rows';

// Q4_0 block (18 B): d f16 | qs[16]: byte j holds weight j (low nibble) and j+16 (high), value q−8.

// Σ_j (q_j − 8)·x_j of one Q4_0 block (nibbles lo = weights 0..15, hi = 16..31) as i16x8 partials
// (|lane| ≤ 4·15·127 relaxed, 4·8·128 SIMD128: four of them still fit in i16 for hsum4_i16), less
// what q4_0_offset returns
@inline export function q4_0_isum16(lo: v128, hi: v128, x0: v128, x1: v128): v128 {
  // two i8×i7 pair-dots on the unsigned nibbles (activations are within ±127)
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi));
  const l = i8x16.sub(lo, bytes(8)), h = i8x16.sub(hi, bytes(8));
  const p = i16x8.add(i16x8.extmul_low_i8x16_s(l, x0), i16x8.extmul_high_i8x16_s(l, x0));
  return i16x8.add(p, i16x8.add(i16x8.extmul_low_i8x16_s(h, x1), i16x8.extmul_high_i8x16_s(h, x1)));
}

// what q4_0_isum16 leaves to subtract, splat: 8·Σx of the block in the relaxed build (it dots the
// nibbles unsigned; Σx is the activation's block sum), nothing in the SIMD128 build
@inline export function q4_0_offset(sum: usize): v128 {
  if (!ASC_FEATURE_RELAXED_SIMD) return i32x4.splat(0);
  return i32x4.shl(v128.load32_splat(sum), 3);
}

// Σ (q−8)·x of four rows' blocks (their qs[16] in q0..q3), lane = row: the integer sums of the four
// rows reduced together (hsum4_i16), so that the float work is done once per block for four rows
@inline export function q4_0_isum4(q0: v128, q1: v128, q2: v128, q3: v128, x0: v128, x1: v128, sum: usize): v128 {
  const m4 = bytes(0x0f);
  return i32x4.sub(
    hsum4_i16(
      q4_0_isum16(v128.and(q0, m4), hi_nibbles(q0), x0, x1),
      q4_0_isum16(v128.and(q1, m4), hi_nibbles(q1), x0, x1),
      q4_0_isum16(v128.and(q2, m4), hi_nibbles(q2), x0, x1),
      q4_0_isum16(v128.and(q3, m4), hi_nibbles(q3), x0, x1),
    ),
    q4_0_offset(sum),
  );
}

// Every row is computed in the same float operations whichever path takes it — per block,
// acc += f32(isum) · (d_w · d_x) in block order — so a row's result does not depend on T, on the
// thread split or on whether it falls in a group of four.

// Prefill (T > 1): each group of four rows is loaded once per block and reused for all T tokens.
export function matmul_q4_0_batch(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, sumsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  const nb = cols >> 5;
  const rowBytes = <usize>nb * 18;
  for (let r = r0; r + 4 <= r1; r += 4) {
    let w0 = wPtr + <usize>r * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
    for (let t = 0; t < T; t++) v128.store(outPtr + (<usize>(t * rows + r) << 2), f32x4.splat(0));
    for (let b = 0; b < nb; b++) {
      const dw = f16x8_lo(scales4(w0, w1, w2, w3));
      for (let t = 0; t < T; t++) {
        const tb = <usize>(t * nb + b);
        const xb = qsPtr + (tb << 5);
        const s = q4_0_isum4(v128.load(w0, 2), v128.load(w1, 2), v128.load(w2, 2), v128.load(w3, 2), v128.load(xb), v128.load(xb, 16), sumsPtr + (tb << 2));
        const out = outPtr + (<usize>(t * rows + r) << 2);
        const sc = f32x4.mul(dw, v128.load32_splat(dPtr + (tb << 2)));
        v128.store(out, f32x4.add(v128.load(out), f32x4.mul(f32x4.convert_i32x4_s(s), sc)));
      }
      w0 += 18; w1 += 18; w2 += 18; w3 += 18;
    }
  }
}

// Decode (and the rows a batch leaves over): four rows per pass — the activation block is loaded
// once for four weight rows and four independent streams keep more cache-line misses in flight
// (the hardware prefetcher alone does not keep up with this loop here).
export function matmul_q4_0(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, sumsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  const nb = cols >> 5;
  const rowBytes = <usize>nb * 18;
  let r = r0;
  if (T > 1) {
    const whole = r0 + ((r1 - r0) & ~3);
    matmul_q4_0_batch(outPtr, wPtr, qsPtr, dPtr, sumsPtr, cols, rows, r0, whole, T);
    r = whole; // the rest (fewer than four rows) takes the path below
  }
  for (; r + 4 <= r1; r += 4) {
    for (let t = 0; t < T; t++) {
      let w0 = wPtr + <usize>r * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
      const tb = <usize>(t * nb);
      let xq = qsPtr + (tb << 5), xd = dPtr + (tb << 2), xs = sumsPtr + (tb << 2);
      const xEnd = xq + <usize>cols;
      let acc = f32x4.splat(0);
      for (; xq < xEnd; xq += 32, xd += 4, xs += 4) {
        const s = q4_0_isum4(v128.load(w0, 2), v128.load(w1, 2), v128.load(w2, 2), v128.load(w3, 2), v128.load(xq), v128.load(xq, 16), xs);
        // lanes [d0 d1 d2 d3]·dx
        const sc = f32x4.mul(f16x8_lo(scales4(w0, w1, w2, w3)), v128.load32_splat(xd));
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), sc));
        w0 += 18; w1 += 18; w2 += 18; w3 += 18;
      }
      v128.store(outPtr + (<usize>(t * rows + r) << 2), acc);
    }
  }
  const m4 = bytes(0x0f);
  for (; r < r1; r++) {
    for (let t = 0; t < T; t++) {
      let w = wPtr + <usize>r * rowBytes;
      const tb = <usize>(t * nb);
      let xq = qsPtr + (tb << 5), xd = dPtr + (tb << 2), xs = sumsPtr + (tb << 2);
      const xEnd = xq + <usize>cols;
      let acc: f32 = 0;
      for (; xq < xEnd; xq += 32, xd += 4, xs += 4) {
        const qs = v128.load(w, 2);
        const p = q4_0_isum16(v128.and(qs, m4), hi_nibbles(qs), v128.load(xq), v128.load(xq, 16));
        const s = hsum_i32(i32x4.extadd_pairwise_i16x8_s(p)) - i32x4.extract_lane(q4_0_offset(xs), 0);
        acc += <f32>s * (f16_to_f32(load<u16>(w)) * load<f32>(xd));
        w += 18;
      }
      store<f32>(outPtr + (<usize>(t * rows + r) << 2), acc);
    }
  }
}

// ── Q4_0 with rows interleaved in fours (the WASM backend's layout for Q4_0 matrices) ─────────
// Rows 4g..4g+3 keep their place (bytes [4g·rowBytes, (4g+4)·rowBytes)) but are stored block-major,
// and within a block the four rows' qs are interleaved four bytes at a time. Block b of the group
// is 72 bytes at 72·b:
//
//   d0 d1 d2 d3 (f16) | v0 | v1 | v2 | v3        v_m = [qs0[4m..4m+3] qs1[4m..4m+3] qs2[…] qs3[…]]
//
// so that v_m's low nibbles are weights 4m..4m+3 of the four rows and its high nibbles weights
// 16+4m..16+4m+3: one i8 dot of v_m's nibbles against activation bytes 4m..4m+3 repeated four times
// gives each row's sum in its own i32 lane (lane = row) — no reduction across lanes per block,
// which is where the float step of four rows starts. One sequential stream per group, the four
// scales in one 8-byte load. (twin: repackQ4_0x4 / q4_0x4Row in src/backend/wasm/layout.ts)

// rows in ggml's layout at srcPtr → Q4_0X4 at dstPtr (another place). rows % 4 == 0.
// Returns how many block scales are subnormal halves (see matmul_q4_0x4's subnormalScales).
export function repack_q4_0x4(dstPtr: usize, srcPtr: usize, rows: i32, cols: i32): i32 {
  const nb = cols >> 5;
  const rowBytes = <usize>nb * 18;
  let subnormal = 0;
  for (let r = 0; r + 4 <= rows; r += 4) {
    const g = dstPtr + <usize>r * rowBytes, s = srcPtr + <usize>r * rowBytes;
    for (let b = 0; b < nb; b++) {
      const dst = g + <usize>b * 72, src = s + <usize>b * 18;
      for (let i = 0; i < 4; i++) {
        const d = load<u16>(src + <usize>i * rowBytes);
        if (((d & 0x7c00) == 0 && (d & 0x3ff) != 0) || (d & 0x7c00) == 0x7c00) subnormal++; // subnormal, or Inf/NaN: the exact path
        store<u16>(dst + (<usize>i << 1), d);
      }
      // the four rows' qs (16 bytes each) as a 4×4 matrix of u32, transposed
      const q0 = v128.load(src, 2), q1 = v128.load(src + rowBytes, 2), q2 = v128.load(src + 2 * rowBytes, 2), q3 = v128.load(src + 3 * rowBytes, 2);
      const t0 = v128.shuffle<i32>(q0, q1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(q0, q1, 2, 6, 3, 7);
      const t2 = v128.shuffle<i32>(q2, q3, 0, 4, 1, 5), t3 = v128.shuffle<i32>(q2, q3, 2, 6, 3, 7);
      v128.store(dst, v128.shuffle<i32>(t0, t2, 0, 1, 4, 5), 8);
      v128.store(dst, v128.shuffle<i32>(t0, t2, 2, 3, 6, 7), 24);
      v128.store(dst, v128.shuffle<i32>(t1, t3, 0, 1, 4, 5), 40);
      v128.store(dst, v128.shuffle<i32>(t1, t3, 2, 3, 6, 7), 56);
    }
  }
  return subnormal;
}

// The activations as the dots want them: every 4 bytes of the Q8_0 row repeated four times (block b
// of a token: 128 bytes at 128·b, the splats of its bytes 0..3, 4..7, …, 28..31). Each thread writes
// them into its own scratch once per op (a few µs; cheaper than sharing), then reads them as memory operands (shuffling in registers costs a
// shuffle per dot: Q4_0 prefill 44 → 35 G MAC/s).
@inline export function splat_x4(dst: usize, src: usize, n: i32): void {
  for (let i: usize = 0; i < <usize>n; i += 16) {
    const v = v128.load(src + i), o = dst + (i << 2);
    v128.store(o, v128.shuffle<i32>(v, v, 0, 0, 0, 0));
    v128.store(o, v128.shuffle<i32>(v, v, 1, 1, 1, 1), 16);
    v128.store(o, v128.shuffle<i32>(v, v, 2, 2, 2, 2), 32);
    v128.store(o, v128.shuffle<i32>(v, v, 3, 3, 3, 3), 48);
  }
}

// Σ_j q_j·x_j (q the unsigned nibbles 0..15) of the four rows of a block, lane = row, less off
// (= 8·Σx, splat: so the sum is Σ (q − 8)·x). l_m / h_m: the low / high nibbles of v_m; xp: the
// token's splat block (splat_x4). Three ways, all exact:
// - dotAdd (relaxed build, engines that lower i32x4.relaxed_dot_i8x16_i7x16_add_s to one
//   instruction — AVX-VNNI's vpdpbusd, V8 ≥ 13 — four short chains for its latency);
// - relaxed pair-dots into i16 (|lane| ≤ 8·2·15·127 = 30480 fits), widened once;
// - SIMD128: widening multiplies, rows 0-1 and 2-3 in two i16 accumulators (|lane| ≤ 8·15·127).
@inline export function q4_0x4_dot(dotAdd: bool, l0: v128, l1: v128, l2: v128, l3: v128, h0: v128, h1: v128, h2: v128, h3: v128, xp: usize, off: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (dotAdd) {
      let a = i32x4.sub(i32x4.splat(0), off), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
      a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp), l0, a);
      b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp, 16), l1, b);
      c = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp, 64), h0, c);
      d = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp, 80), h1, d);
      a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp, 32), l2, a);
      b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp, 48), l3, b);
      c = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp, 96), h2, c);
      d = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp, 112), h3, d);
      return i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
    }
    let s = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp), l0);
    s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp, 16), l1));
    s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp, 32), l2));
    s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp, 48), l3));
    s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp, 64), h0));
    s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp, 80), h1));
    s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp, 96), h2));
    s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp, 112), h3));
    return i32x4.sub(i32x4.extadd_pairwise_i16x8_s(s), off);
  }
  // lanes of lo: [r0 k0..3 | r1 k0..3] products, hi: [r2 | r3]
  let lo = i16x8.add(i16x8.extmul_low_i8x16_s(l0, v128.load(xp)), i16x8.extmul_low_i8x16_s(l1, v128.load(xp, 16)));
  let hi = i16x8.add(i16x8.extmul_high_i8x16_s(l0, v128.load(xp)), i16x8.extmul_high_i8x16_s(l1, v128.load(xp, 16)));
  lo = i16x8.add(lo, i16x8.add(i16x8.extmul_low_i8x16_s(l2, v128.load(xp, 32)), i16x8.extmul_low_i8x16_s(l3, v128.load(xp, 48))));
  hi = i16x8.add(hi, i16x8.add(i16x8.extmul_high_i8x16_s(l2, v128.load(xp, 32)), i16x8.extmul_high_i8x16_s(l3, v128.load(xp, 48))));
  lo = i16x8.add(lo, i16x8.add(i16x8.extmul_low_i8x16_s(h0, v128.load(xp, 64)), i16x8.extmul_low_i8x16_s(h1, v128.load(xp, 80))));
  hi = i16x8.add(hi, i16x8.add(i16x8.extmul_high_i8x16_s(h0, v128.load(xp, 64)), i16x8.extmul_high_i8x16_s(h1, v128.load(xp, 80))));
  lo = i16x8.add(lo, i16x8.add(i16x8.extmul_low_i8x16_s(h2, v128.load(xp, 96)), i16x8.extmul_low_i8x16_s(h3, v128.load(xp, 112))));
  hi = i16x8.add(hi, i16x8.add(i16x8.extmul_high_i8x16_s(h2, v128.load(xp, 96)), i16x8.extmul_high_i8x16_s(h3, v128.load(xp, 112))));
  const a = i32x4.extadd_pairwise_i16x8_s(lo), b = i32x4.extadd_pairwise_i16x8_s(hi); // [r0 r0 r1 r1], [r2 r2 r3 r3]
  return i32x4.sub(i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7)), off);
}

// 8·Σx of a token's block (the nibbles are dotted unsigned), splat
@inline export function q4_0x4_off(sums: usize): v128 {
  return i32x4.shl(v128.load32_splat(sums), 3);
}

// subnormalScales: repack_q4_0x4's count for this matrix. Where it is 0 (the usual case) the scales
// are converted by kv_f16x4's 8 operations instead of 13 — exact either way, but a subnormal half
// is a subnormal float operand there, and slow. scratch: the thread's (KERNEL_SCRATCH_BYTES), for
// the activations' splats. dotAdd: 1 to dot by i32x4.relaxed_dot_i8x16_i7x16_add_s (the runtime
// picks whichever is faster on the engine: kernels.ts; the results are the same bits).
export function matmul_q4_0x4(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, sumsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, subnormalScales: i32, scratch: usize, dotAdd: i32): void {
  if (T == 1) {
    if (subnormalScales != 0) q4_0x4_decode(false, false, outPtr, wPtr, qsPtr, dPtr, sumsPtr, cols, r0, r1, scratch);
    else if (dotAdd != 0) q4_0x4_decode(true, true, outPtr, wPtr, qsPtr, dPtr, sumsPtr, cols, r0, r1, scratch);
    else q4_0x4_decode(true, false, outPtr, wPtr, qsPtr, dPtr, sumsPtr, cols, r0, r1, scratch);
  } else if (subnormalScales != 0) q4_0x4_prefill(false, false, outPtr, wPtr, qsPtr, dPtr, sumsPtr, cols, rows, r0, r1, T, scratch);
  else if (dotAdd != 0) q4_0x4_prefill(true, true, outPtr, wPtr, qsPtr, dPtr, sumsPtr, cols, rows, r0, r1, T, scratch);
  else q4_0x4_prefill(true, false, outPtr, wPtr, qsPtr, dPtr, sumsPtr, cols, rows, r0, r1, T, scratch);
}

// the four f16 scales of a block (8 bytes at w) as f32
@inline export function q4_0x4_scales(w: usize, fast: bool): v128 {
  return fast ? kv_f16x8_lo(v128.load64_zero(w), false) : f16x8_lo(v128.load64_zero(w));
}

// acc (at o) += the block at w of a group dotted with one token's block (splats at xp, dx, off)
@inline export function q4_0x4_acc(fast: bool, dotAdd: bool, o: usize, w: usize, xp: usize, dx: v128, off: v128, m4: v128): void {
  const v0 = v128.load(w, 8), v1 = v128.load(w, 24), v2 = v128.load(w, 40), v3 = v128.load(w, 56);
  const s = q4_0x4_dot(dotAdd, v128.and(v0, m4), v128.and(v1, m4), v128.and(v2, m4), v128.and(v3, m4),
    v128.and(i16x8.shr_u(v0, 4), m4), v128.and(i16x8.shr_u(v1, 4), m4), v128.and(i16x8.shr_u(v2, 4), m4), v128.and(i16x8.shr_u(v3, 4), m4), xp, off);
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(q4_0x4_scales(w, fast), dx))));
}


@inline export function q4_0x4_decode(fast: bool, dotAdd: bool, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, sumsPtr: usize, cols: i32, r0: i32, r1: i32, scratch: usize): void {
  const nb = cols >> 5;
  const groupBytes = <usize>nb * 72;
  splat_x4(scratch, qsPtr, cols);
  const m4 = bytes(0x0f);
  const nG = (r1 - r0) >> 2, q = (nG + RUNS - 1) / RUNS;
  const sink = memory.data(16 * RUNS, 16), stride = <usize>q * groupBytes;
  for (let i = 0; i < q; i++) {
    const g = wPtr + <usize>(r0 + 4 * i) * (groupBytes >> 2), o = outPtr + (<usize>(r0 + 4 * i) << 2);
    let w0 = g, w1 = run_w(1, q, i, nG, g, stride), w2 = run_w(2, q, i, nG, g, stride), w3 = run_w(3, q, i, nG, g, stride);
    let w4 = run_w(4, q, i, nG, g, stride), w5 = run_w(5, q, i, nG, g, stride), w6 = run_w(6, q, i, nG, g, stride), w7 = run_w(7, q, i, nG, g, stride);
    const o0 = o, o1 = run_o(1, q, i, nG, o, sink), o2 = run_o(2, q, i, nG, o, sink), o3 = run_o(3, q, i, nG, o, sink);
    const o4 = run_o(4, q, i, nG, o, sink), o5 = run_o(5, q, i, nG, o, sink), o6 = run_o(6, q, i, nG, o, sink), o7 = run_o(7, q, i, nG, o, sink);
    for (let k = 0; k < RUNS; k++) v128.store(run_o(k, q, i, nG, o, sink), f32x4.splat(0));
    const xEnd = scratch + (<usize>cols << 2);
    for (let xp = scratch, xd = dPtr, xs = sumsPtr; xp < xEnd; xp += 128, xd += 4, xs += 4) {
      const dx = v128.load32_splat(xd), off = q4_0x4_off(xs);
      q4_0x4_acc(fast, dotAdd, o0, w0, xp, dx, off, m4); w0 += 72;
      q4_0x4_acc(fast, dotAdd, o1, w1, xp, dx, off, m4); w1 += 72;
      q4_0x4_acc(fast, dotAdd, o2, w2, xp, dx, off, m4); w2 += 72;
      q4_0x4_acc(fast, dotAdd, o3, w3, xp, dx, off, m4); w3 += 72;
      q4_0x4_acc(fast, dotAdd, o4, w4, xp, dx, off, m4); w4 += 72;
      q4_0x4_acc(fast, dotAdd, o5, w5, xp, dx, off, m4); w5 += 72;
      q4_0x4_acc(fast, dotAdd, o6, w6, xp, dx, off, m4); w6 += 72;
      q4_0x4_acc(fast, dotAdd, o7, w7, xp, dx, off, m4); w7 += 72;
    }
  }
}

// one token's float step: acc + f32(isum) · (d_w · d_x) (the same operations as decode's, so
// a row's result does not depend on T)
@inline export function q4_0x4_fma(acc: v128, s: v128, dw: v128, d: usize): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(dw, v128.load32_splat(d))));
}

// Prefill: the tokens in chunks (their splats in scratch); for each group, four tokens at a time
// over all blocks, the four rows × four tokens accumulated in registers and each block's nibbles
// unpacked once for the four.
@inline export function q4_0x4_prefill(fast: bool, dotAdd: bool, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, sumsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize): void {
  const nb = cols >> 5;
  const groupBytes = <usize>nb * 72, tokenBytes = <usize>cols << 2, ob = <usize>rows << 2;
  const chunk = min(T_CHUNK, <i32>(KERNEL_SCRATCH_BYTES / tokenBytes));
  const m4 = bytes(0x0f);
  for (let t0 = 0; t0 < T; t0 += chunk) {
    const t1 = min(T, t0 + chunk);
    splat_x4(scratch, qsPtr + <usize>(t0 * cols), (t1 - t0) * cols);
    for (let r = r0; r + 4 <= r1; r += 4) {
      const g = wPtr + <usize>r * (groupBytes >> 2);
      let t = t0;
      for (; t + 4 <= t1; t += 4) {
        let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
        const x = scratch + <usize>(t - t0) * tokenBytes, tb = <usize>(t * nb);
        for (let b: usize = 0; b < <usize>nb; b++) {
          const w = g + b * 72;
          const v0 = v128.load(w, 8), v1 = v128.load(w, 24), v2 = v128.load(w, 40), v3 = v128.load(w, 56);
          const dw = q4_0x4_scales(w, fast);
          const l0 = v128.and(v0, m4), l1 = v128.and(v1, m4), l2 = v128.and(v2, m4), l3 = v128.and(v3, m4);
          const h0 = v128.and(i16x8.shr_u(v0, 4), m4), h1 = v128.and(i16x8.shr_u(v1, 4), m4);
          const h2 = v128.and(i16x8.shr_u(v2, 4), m4), h3 = v128.and(i16x8.shr_u(v3, 4), m4);
          const i0 = tb + b, i1 = i0 + <usize>nb, i2 = i1 + <usize>nb, i3 = i2 + <usize>nb;
          const xb = x + (b << 7);
          f0 = q4_0x4_fma(f0, q4_0x4_dot(dotAdd, l0, l1, l2, l3, h0, h1, h2, h3, xb, q4_0x4_off(sumsPtr + (i0 << 2))), dw, dPtr + (i0 << 2));
          f1 = q4_0x4_fma(f1, q4_0x4_dot(dotAdd, l0, l1, l2, l3, h0, h1, h2, h3, xb + tokenBytes, q4_0x4_off(sumsPtr + (i1 << 2))), dw, dPtr + (i1 << 2));
          f2 = q4_0x4_fma(f2, q4_0x4_dot(dotAdd, l0, l1, l2, l3, h0, h1, h2, h3, xb + 2 * tokenBytes, q4_0x4_off(sumsPtr + (i2 << 2))), dw, dPtr + (i2 << 2));
          f3 = q4_0x4_fma(f3, q4_0x4_dot(dotAdd, l0, l1, l2, l3, h0, h1, h2, h3, xb + 3 * tokenBytes, q4_0x4_off(sumsPtr + (i3 << 2))), dw, dPtr + (i3 << 2));
        }
        const o = outPtr + (<usize>(t * rows + r) << 2);
        v128.store(o, f0); v128.store(o + ob, f1); v128.store(o + 2 * ob, f2); v128.store(o + 3 * ob, f3);
      }
      for (; t < t1; t++) {
        let f = f32x4.splat(0);
        const x = scratch + <usize>(t - t0) * tokenBytes, tb = <usize>(t * nb);
        for (let b: usize = 0; b < <usize>nb; b++) {
          const w = g + b * 72;
          const v0 = v128.load(w, 8), v1 = v128.load(w, 24), v2 = v128.load(w, 40), v3 = v128.load(w, 56);
          const s = q4_0x4_dot(dotAdd, v128.and(v0, m4), v128.and(v1, m4), v128.and(v2, m4), v128.and(v3, m4),
            v128.and(i16x8.shr_u(v0, 4), m4), v128.and(i16x8.shr_u(v1, 4), m4), v128.and(i16x8.shr_u(v2, 4), m4), v128.and(i16x8.shr_u(v3, 4), m4),
            x + (b << 7), q4_0x4_off(sumsPtr + ((tb + b) << 2)));
          f = q4_0x4_fma(f, s, q4_0x4_scales(w, fast), dPtr + ((tb + b) << 2));
        }
        v128.store(outPtr + (<usize>(t * rows + r) << 2), f);
      }
    }
  }
}
