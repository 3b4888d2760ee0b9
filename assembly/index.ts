// phi3-ts WASM kernels: AssemblyScript, SIMD128, over an imported shared memory.
//
// What this is: the hot loops of the forward pass. Every kernel is pure —
// (outPtr, inPtrs…, sizes) → void — with no allocation and no globals, so any number of worker
// threads can run it on disjoint row ranges of the same memory. Each kernel's TypeScript twin is
// the reference backend's op of the same name (src/backend/ref/ops.ts: matmulRef, rmsnormRef,
// ropeRef, attentionRef, swigluRef) or the activation quantizer (src/quant/activations.ts:
// quantizeQ8_0Act, quantizeQ8KAct); test/kernels.test.ts holds every kernel to its twin.
//
// Two builds come from this one file (asconfig.json): SIMD128, and relaxed SIMD, where
// `ASC_FEATURE_RELAXED_SIMD` switches the integer dots to i8×i7 dot instructions. The runtime
// picks relaxed only where the engine validates it and a start-up self-test agrees with SIMD128.
//
// Quantized matmuls follow ggml-cpu: the activation row is quantized once per op (Q8_0 for the
// legacy types, Q8_K for K-quants; see quantize_q8_0 / quantize_q8_K), then each weight block is
// dotted in integers and scaled once. Activations are kept as split arrays — qs (i8[n]),
// d (f32[n/32 or n/256], f16-rounded like ggml's block field) and, for Q8_K, bsums (i16[n/16]) —
// so loads are aligned and contiguous.
//
// Lane layouts are drawn where they matter; `r0..r1` is the row range of the calling thread.

// ── scalar helpers ─────────────────────────────────────────────────────────────────────────────

// a half as f32, exact for every half (IEEE: infinities stay infinite, NaNs stay NaN with their
// payload) and without arithmetic on subnormal floats (x86 takes a microcode assist of ~100 cycles
// for each): the exponent is rebiased in integers; a subnormal half m·2^-24 is
// (1 + m/1024)·2^-14 − 2^-14, both normal; exponent 31 (Inf/NaN) gets the f32 exponent 255 by
// or-ing it in. The same steps as f16x8_lo, so scalar and vector paths agree bit for bit.
// (twin: fp16ToFp32)
@inline function f16_to_f32(h: u32): f32 {
  const m: u32 = (h & 0x7fff) << 13;
  // both, then an integer select (a branch here makes V8 split and spill the kernels' loops)
  const sub = reinterpret<u32>(reinterpret<f32>(m + 0x38800000) - reinterpret<f32>(<u32>0x38800000));
  const f = select<u32>(sub, m + 0x38000000, m < 0x00800000) | select<u32>(0x7f800000, 0, m > 0x0f7fffff);
  return reinterpret<f32>(f | ((h & 0x8000) << 16));
}

// ggml_compute_fp32_to_fp16 (round to nearest even), then back: the value ggml stores in a block
@inline function round_f16(f: f32): f32 {
  const scale_to_inf: f32 = reinterpret<f32>(<u32>0x77800000); // 0x1.0p+112f
  const scale_to_zero: f32 = reinterpret<f32>(<u32>0x08800000); // 0x1.0p-110f
  let base: f32 = (Mathf.abs(f) * scale_to_inf) * scale_to_zero;
  const w: u32 = reinterpret<u32>(f);
  const shl1_w: u32 = w + w;
  const sign: u32 = w & 0x80000000;
  let bias: u32 = shl1_w & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits: u32 = reinterpret<u32>(base);
  const exp_bits: u32 = (bits >> 13) & 0x00007c00;
  const mantissa_bits: u32 = bits & 0x00000fff;
  const nonsign: u32 = exp_bits + mantissa_bits;
  const h: u32 = (sign >> 16) | (shl1_w > 0xff000000 ? 0x7e00 : nonsign);
  return f16_to_f32(h);
}

@inline function hsum_f32(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline function hsum_i32(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

// 8 halves (16 bytes) → two f32x4, by f16_to_f32's steps: sign-extended and shifted left by 13, a
// half has its exponent and mantissa in bits 13..27 and its sign in bit 31
@inline function f16x4_to_f32x4(s: v128): v128 {
  const m = v128.and(s, v128.load(F16_CONSTS));
  const sub = f32x4.sub(i32x4.add(m, v128.load(F16_CONSTS, 16)), v128.load(F16_CONSTS, 16));
  const f = v128.bitselect(sub, i32x4.add(m, v128.load(F16_CONSTS, 32)), i32x4.lt_s(m, v128.load(F16_CONSTS, 48)));
  const infNan = v128.and(i32x4.gt_s(m, v128.load(F16_CONSTS, 112)), v128.load(F16_CONSTS, 128)); // exponent 31 → 255
  return v128.or(v128.or(f, infNan), v128.and(s, v128.load(F16_CONSTS, 64)));
}
// the f16 conversions' constants (see KONST)
const F16_CONSTS = memory.data<u32>([
  0x0fffe000, 0x0fffe000, 0x0fffe000, 0x0fffe000, 0x38800000, 0x38800000, 0x38800000, 0x38800000,
  0x38000000, 0x38000000, 0x38000000, 0x38000000, 0x00800000, 0x00800000, 0x00800000, 0x00800000,
  0x80000000, 0x80000000, 0x80000000, 0x80000000, 0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff,
  0x77800000, 0x77800000, 0x77800000, 0x77800000, 0x0f7fffff, 0x0f7fffff, 0x0f7fffff, 0x0f7fffff,
  0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, 0x477fffff, 0x477fffff, 0x477fffff, 0x477fffff,
  0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff,
], 16);
@inline function f16x8_lo(h: v128): v128 {
  return f16x4_to_f32x4(i32x4.shl(i32x4.extend_low_i16x8_s(h), 13));
}
@inline function f16x8_hi(h: v128): v128 {
  return f16x4_to_f32x4(i32x4.shl(i32x4.extend_high_i16x8_s(h), 13));
}

// The same for the KV cache, in 4 operations instead of 13: × 2^112 rebiases the exponent (and
// normalizes subnormal halves) — exact for every finite half, but a subnormal half is a subnormal
// float operand and costs a microcode assist. Weights' scales can be subnormal in bulk (K-quant d of
// small weights); keys and values almost never are, and attention converts every one of them.
// A half of exponent 31 (Inf/NaN) comes out of the multiply as the finite ±(1.m)·2^16; with `exact`
// (4 more operations) it is recognised as above every finite half (65504) and given the exponent 255,
// IEEE Inf/NaN again. Callers pass a constant: the KV cache takes the exact path only for a layer
// whose kv_store met such a half, the Q4_0X4 scales only for a matrix whose repack counted one.
@inline function kv_f16x4(s: v128, exact: bool): v128 {
  const f = f32x4.mul(v128.and(s, v128.load(F16_CONSTS, 80)), v128.load(F16_CONSTS, 96)); // [0x8fffffff], [2^112]
  if (!exact) return f;
  const big = i32x4.gt_s(v128.and(f, v128.load(F16_CONSTS, 160)), v128.load(F16_CONSTS, 144)); // |f| > 0x1.fffffep15
  return v128.or(f, v128.and(big, v128.load(F16_CONSTS, 128)));
}
@inline function kv_f16x8_lo(h: v128, exact: bool): v128 {
  return kv_f16x4(i32x4.shl(i32x4.extend_low_i16x8_s(h), 13), exact);
}
@inline function kv_f16x8_hi(h: v128, exact: bool): v128 {
  return kv_f16x4(i32x4.shl(i32x4.extend_high_i16x8_s(h), 13), exact);
}

// Bytes shifted right: V8 lowers i8x16.shr_u/shl to a 16-bit shift and a mask it rebuilds at every
// use, so the kernels write the 16-bit shift and mask themselves, with the mask kept in a register.
// The high nibble of every byte:
@inline function hi_nibbles(v: v128): v128 {
  return v128.and(i16x8.shr_u(v, 4), bytes(0x0f));
}

// Vector constants are read from memory: V8 13 (Node 24) rebuilds an immediate vector constant at
// every use in a loop, three or more instructions each (Q8_0 decode in cache 13.8 → 19.6 G MAC/s
// there once its constants were loads); a load is one, and Node 20, which kept them in registers,
// runs the same either way.
const KONST = memory.data<u8>([
  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
  16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
  32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
  0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, // −127
], 16);
// i8x16.splat(c) for the bytes in KONST (c is a constant at every use, so this folds to one load)
@inline function bytes(c: i32): v128 {
  if (c == 15) return v128.load(KONST);
  if (c == 16) return v128.load(KONST, 16);
  if (c == 3) return v128.load(KONST, 32);
  if (c == 4) return v128.load(KONST, 48);
  if (c == 8) return v128.load(KONST, 64);
  if (c == 32) return v128.load(KONST, 80);
  if (c == -127) return v128.load(KONST, 96);
  return i8x16.splat(<i8>c);
}
// and the patterns (k4_scale_min, q5_high, q3_K_scales)
const SM_LOW = memory.data<u8>([63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0], 16);
const SM_SEL = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 16);
const SM_HIGH = memory.data<u8>([0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30], 16);
const BITS8 = memory.data<u8>([1, 2, 4, 8, 16, 32, 64, 0x80, 1, 2, 4, 8, 16, 32, 64, 0x80], 16);
const Q3_LO = memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 0, 0, 0, 0, 0, 0, 0, 0], 16);
const Q3_HI = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15, 15, 15, 15, 15], 16);
const Q3_G0 = memory.data<u8>([0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 16);
const Q3_G1 = memory.data<u8>([0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0, 0, 0, 0], 16);
const Q3_G2 = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0], 16);
const Q3_G3 = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30], 16);

// ── activation quantizers ──────────────────────────────────────────────────────────────────────

// ggml-cpu x86 quantize_row_q8_0: d = amax/127 stored as f16; q = round_nearest_even(x · 127/amax);
// and sums[b] = Σ q of block b as i32 (Q8_1's s, in integers: the unsigned-weight dots subtract
// offset·sums). (twin: quantizeQ8_0Act). n % 32 == 0.
export function quantize_q8_0(qsPtr: usize, dPtr: usize, sumsPtr: usize, xPtr: usize, n: i32): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const x = xPtr + (<usize>b << 7);
    let m = f32x4.abs(v128.load(x));
    for (let k = 1; k < 8; k++) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>k << 4))));
    const amax = Mathf.max(Mathf.max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), Mathf.max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    store<f32>(dPtr + (<usize>b << 2), round_f16(amax / 127.0));
    const id = f32x4.splat(amax != 0 ? <f32>127.0 / amax : 0);
    const q = qsPtr + (<usize>b << 5);
    for (let k = 0; k < 2; k++) {
      const o = <usize>k << 6;
      const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o), id)));
      const bb = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o + 16), id)));
      const c = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o + 32), id)));
      const d = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o + 48), id)));
      v128.store(q + (<usize>k << 4), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, bb), i16x8.narrow_i32x4_s(c, d)));
    }
    const s = i16x8.add(i16x8.extadd_pairwise_i8x16_s(v128.load(q)), i16x8.extadd_pairwise_i8x16_s(v128.load(q, 16)));
    store<i32>(sumsPtr + (<usize>b << 2), hsum_i32(i32x4.extadd_pairwise_i16x8_s(s)));
  }
}

// ggml quantize_row_q8_K_ref (the x86 path): iscale = -127/max (max = the value of largest |x|),
// q = min(127, nearest_int(iscale·x)), d = 1/iscale, bsums = sums of 16. (twin: quantizeQ8KAct)
export function quantize_q8_K(qsPtr: usize, dPtr: usize, bsumsPtr: usize, xPtr: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = xPtr + (<usize>b << 10);
    let amax: f32 = 0, max: f32 = 0;
    for (let j = 0; j < 256; j++) {
      const v = load<f32>(x + (<usize>j << 2));
      const ax = Mathf.abs(v);
      if (ax > amax) {
        amax = ax;
        max = v;
      }
    }
    const q = qsPtr + (<usize>b << 8);
    const bs = bsumsPtr + (<usize>b << 5);
    if (amax == 0) {
      store<f32>(dPtr + (<usize>b << 2), 0);
      memory.fill(q, 0, 256);
      memory.fill(bs, 0, 32);
      continue;
    }
    const iscale: f32 = <f32>-127.0 / max;
    const magic = f32x4.splat(12582912.0);
    const is = f32x4.splat(iscale);
    for (let j = 0; j < 256; j += 16) {
      // nearest_int via the 1.5·2^23 trick, exactly as ggml: (x·iscale + magic) - magic
      const a = i32x4.trunc_sat_f32x4_s(f32x4.sub(f32x4.add(f32x4.mul(v128.load(x + (<usize>j << 2)), is), magic), magic));
      const b1 = i32x4.trunc_sat_f32x4_s(f32x4.sub(f32x4.add(f32x4.mul(v128.load(x + (<usize>j << 2) + 16), is), magic), magic));
      const c = i32x4.trunc_sat_f32x4_s(f32x4.sub(f32x4.add(f32x4.mul(v128.load(x + (<usize>j << 2) + 32), is), magic), magic));
      const d = i32x4.trunc_sat_f32x4_s(f32x4.sub(f32x4.add(f32x4.mul(v128.load(x + (<usize>j << 2) + 48), is), magic), magic));
      const v = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b1), i16x8.narrow_i32x4_s(c, d)); // saturates 128 → 127 = MIN(127, v)
      v128.store(q + <usize>j, v);
      const s16 = i16x8.extadd_pairwise_i8x16_s(v);
      store<i16>(bs + (<usize>(j >> 4) << 1), <i16>hsum_i32(i32x4.extadd_pairwise_i16x8_s(s16)));
    }
    store<f32>(dPtr + (<usize>b << 2), <f32>1.0 / iscale);
  }
}

// ── matmuls: out[t·rows + r] = Σ_c W[r,c]·x[t,c] for r in [r0, r1), t in [0, T) ────────────────
// W rows are ggml blocks as stored in the GGUF; rowBytes = bytes per row.

// A matrix×vector streams every weight byte once, and a loop that computes on one or two streams
// reads DRAM at about half the rate it computes in cache: the hardware prefetcher does not run far
// enough ahead of it, and stops at 4 KiB pages. The matrices stored interleaved (layout.ts) are read
// as eight runs side by side (see RUNS); the rest — K-quant matrices with rows % 4 ≠ 0 — and the
// attention's keys are touched TOUCH_AHEAD bytes ahead of the block being read (a 4-byte load per
// cache line or so, result unused; bench/kernels.mjs: Q6_K +58 % from DRAM).
const TOUCH_AHEAD: usize = 16384;

// the f16 scales (first 2 bytes) of four blocks, in lanes 0..3
@inline function scales4(b0: usize, b1: usize, b2: usize, b3: usize): v128 {
  let dh = i16x8.splat(0);
  dh = v128.load16_lane(b0, dh, 0);
  dh = v128.load16_lane(b1, dh, 1);
  dh = v128.load16_lane(b2, dh, 2);
  return v128.load16_lane(b3, dh, 3);
}

// Q4_0 block (18 B): d f16 | qs[16]: byte j holds weight j (low nibble) and j+16 (high), value q−8.

// Σ_j (q_j − 8)·x_j of one Q4_0 block (nibbles lo = weights 0..15, hi = 16..31) as i16x8 partials
// (|lane| ≤ 4·15·127 relaxed, 4·8·128 SIMD128: four of them still fit in i16 for hsum4_i16), less
// what q4_0_offset returns
@inline function q4_0_isum16(lo: v128, hi: v128, x0: v128, x1: v128): v128 {
  // two i8×i7 pair-dots on the unsigned nibbles (activations are within ±127)
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi));
  const l = i8x16.sub(lo, bytes(8)), h = i8x16.sub(hi, bytes(8));
  const p = i16x8.add(i16x8.extmul_low_i8x16_s(l, x0), i16x8.extmul_high_i8x16_s(l, x0));
  return i16x8.add(p, i16x8.add(i16x8.extmul_low_i8x16_s(h, x1), i16x8.extmul_high_i8x16_s(h, x1)));
}

// what q4_0_isum16 leaves to subtract, splat: 8·Σx of the block in the relaxed build (it dots the
// nibbles unsigned; Σx is the activation's block sum), nothing in the SIMD128 build
@inline function q4_0_offset(sum: usize): v128 {
  if (!ASC_FEATURE_RELAXED_SIMD) return i32x4.splat(0);
  return i32x4.shl(v128.load32_splat(sum), 3);
}

// Σ (q−8)·x of four rows' blocks (their qs[16] in q0..q3), lane = row: the integer sums of the four
// rows reduced together (hsum4_i16), so that the float work is done once per block for four rows
@inline function q4_0_isum4(q0: v128, q1: v128, q2: v128, q3: v128, x0: v128, x1: v128, sum: usize): v128 {
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
function matmul_q4_0_batch(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, sumsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
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

// rows in ggml's layout at srcPtr → BLOCKS4 at dstPtr (another place): the other types' layout, each
// group's four rows block by block side by side, blocks unchanged (twin: interleaveBlocks4; see
// matmul_kq). rows % 4 == 0.
export function interleave_blocks4(dstPtr: usize, srcPtr: usize, rows: i32, rowBytes: i32, blockBytes: i32): void {
  const rb = <usize>rowBytes, bb = <usize>blockBytes, nb = rb / bb;
  for (let g: usize = 0; g < <usize>rows; g += 4)
    for (let b: usize = 0; b < nb; b++)
      for (let i: usize = 0; i < 4; i++) memory.copy(dstPtr + g * rb + (4 * b + i) * bb, srcPtr + (g + i) * rb + b * bb, bb);
}

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
@inline function splat_x4(dst: usize, src: usize, n: i32): void {
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
@inline function q4_0x4_dot(dotAdd: bool, l0: v128, l1: v128, l2: v128, l3: v128, h0: v128, h1: v128, h2: v128, h3: v128, xp: usize, off: v128): v128 {
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
@inline function q4_0x4_off(sums: usize): v128 {
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
@inline function q4_0x4_scales(w: usize, fast: bool): v128 {
  return fast ? kv_f16x8_lo(v128.load64_zero(w), false) : f16x8_lo(v128.load64_zero(w));
}

// acc (at o) += the block at w of a group dotted with one token's block (splats at xp, dx, off)
@inline function q4_0x4_acc(fast: bool, dotAdd: bool, o: usize, w: usize, xp: usize, dx: v128, off: v128, m4: v128): void {
  const v0 = v128.load(w, 8), v1 = v128.load(w, 24), v2 = v128.load(w, 40), v3 = v128.load(w, 56);
  const s = q4_0x4_dot(dotAdd, v128.and(v0, m4), v128.and(v1, m4), v128.and(v2, m4), v128.and(v3, m4),
    v128.and(i16x8.shr_u(v0, 4), m4), v128.and(i16x8.shr_u(v1, 4), m4), v128.and(i16x8.shr_u(v2, 4), m4), v128.and(i16x8.shr_u(v3, 4), m4), xp, off);
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(q4_0x4_scales(w, fast), dx))));
}


// Decode reads eight streams per thread: the thread's groups are cut into eight runs, and step i
// reads group i of every run, block by block, side by side. The hardware prefetcher follows each
// sequential stream, and eight in flight bring the weights at close to memory bandwidth (one
// thread, 1 GB matrix, two processes: two streams with touches ahead 16.9 G MAC/s, eight 23.7; a
// loop over the runs instead of eight written out: 20.4). A run that has no group i reads run 0's
// again (cached) into a sink.
const RUNS = 8;

// Prefill takes the tokens in chunks: a chunk's activations (T_CHUNK rows of cols bytes and their
// scales) stay in cache while every block of a group of rows meets them; all T tokens at once
// (128 · 3072 B) would not.
const T_CHUNK = 16;

// each thread's scratch (src/backend/wasm/kernels.ts: KERNEL_SCRATCH_BYTES, the same number): four
// expanded blocks for the K-quant and Q8_0 prefills, a chunk's splats (4 · cols bytes a token) for
// Q4_0X4 (whose matrices the backend keeps to cols ≤ KERNEL_SCRATCH_BYTES / 16)
const KERNEL_SCRATCH_BYTES: usize = 262144;
@inline function run_w(k: i32, q: i32, i: i32, nG: i32, w: usize, stride: usize): usize {
  return k * q + i < nG ? w + <usize>k * stride : w;
}
@inline function run_o(k: i32, q: i32, i: i32, nG: i32, o: usize, sink: usize): usize {
  return k * q + i < nG ? o + (<usize>(k * q) << 4) : sink + (<usize>k << 4);
}

@inline function q4_0x4_decode(fast: bool, dotAdd: bool, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, sumsPtr: usize, cols: i32, r0: i32, r1: i32, scratch: usize): void {
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
@inline function q4_0x4_fma(acc: v128, s: v128, dw: v128, d: usize): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(dw, v128.load32_splat(d))));
}

// Prefill: the tokens in chunks (their splats in scratch); for each group, four tokens at a time
// over all blocks, the four rows × four tokens accumulated in registers and each block's nibbles
// unpacked once for the four.
@inline function q4_0x4_prefill(fast: bool, dotAdd: bool, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, sumsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize): void {
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

// Q8_0 block (34 B): d f16 | qs[32] i8

// Σ w·x of 32 weights (w0 | w1) with the activations given as |x| (ax0 | ax1) and sign masks
// (sx0 | sx1: all ones where x < 0), as i32x4 partials. Relaxed: the sign moves onto the weight
// (w·sign(x) = (w ^ s) − s) so that |x| ≤ 127 is the unsigned 7-bit operand of the pair-dot — ggml's
// _mm256_sign_epi8 trick. A weight of −128 would overflow that: ggml never writes one (it quantizes
// to ±127), and a file that has one has it read as −127. SIMD128: widening multiplies.
@inline function q8_0_isum(w0: v128, w1: v128, ax0: v128, sx0: v128, ax1: v128, sx1: v128): v128 {
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
@inline function q8_0_expand(e: usize, a: v128, b: v128): void {
  v128.store(e, i16x8.extend_low_i8x16_s(a));
  v128.store(e, i16x8.extend_high_i8x16_s(a), 16);
  v128.store(e, i16x8.extend_low_i8x16_s(b), 32);
  v128.store(e, i16x8.extend_high_i8x16_s(b), 48);
}
// Σ w·x of an expanded row and a token's activations widened to i16, as i32x4 partials
@inline function q8_0x_row(e: usize, xa: v128, xb: v128, xc: v128, xd: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load(e), xa), i32x4.dot_i16x8_s(v128.load(e, 16), xb)),
    i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 32), xc), i32x4.dot_i16x8_s(v128.load(e, 48), xd)),
  );
}

// acc (at o) += the block at w of four rows (rowBytes apart) dotted with one token's block
@inline function q8_0_acc4(o: usize, w: usize, rowBytes: usize, ax0: v128, sx0: v128, ax1: v128, sx1: v128, dx: v128): void {
  const w1 = w + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
  const s = hsum4(
    q8_0_isum(v128.load(w, 2), v128.load(w, 18), ax0, sx0, ax1, sx1),
    q8_0_isum(v128.load(w1, 2), v128.load(w1, 18), ax0, sx0, ax1, sx1),
    q8_0_isum(v128.load(w2, 2), v128.load(w2, 18), ax0, sx0, ax1, sx1),
    q8_0_isum(v128.load(w3, 2), v128.load(w3, 18), ax0, sx0, ax1, sx1),
  );
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
@inline function matmul_q8_0_impl(x4: bool, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize): void {
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
          const s = hsum4(q8_0x_row(scratch, xa, xb_, xc, xd), q8_0x_row(scratch + 64, xa, xb_, xc, xd), q8_0x_row(scratch + 128, xa, xb_, xc, xd), q8_0x_row(scratch + 192, xa, xb_, xc, xd));
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
        q8_0_acc4(o0, w0, rowStep, ax0, sx0, ax1, sx1, dx); w0 += blockStep;
        q8_0_acc4(o1, w1, rowStep, ax0, sx0, ax1, sx1, dx); w1 += blockStep;
        q8_0_acc4(o2, w2, rowStep, ax0, sx0, ax1, sx1, dx); w2 += blockStep;
        q8_0_acc4(o3, w3, rowStep, ax0, sx0, ax1, sx1, dx); w3 += blockStep;
        q8_0_acc4(o4, w4, rowStep, ax0, sx0, ax1, sx1, dx); w4 += blockStep;
        q8_0_acc4(o5, w5, rowStep, ax0, sx0, ax1, sx1, dx); w5 += blockStep;
        q8_0_acc4(o6, w6, rowStep, ax0, sx0, ax1, sx1, dx); w6 += blockStep;
        q8_0_acc4(o7, w7, rowStep, ax0, sx0, ax1, sx1, dx); w7 += blockStep;
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

// Σ of 32 products q·x of a K-quant sub-block (q unsigned, ≤ 31; x signed, within ±127), as i16x8
// partials: relaxed, two i8×i7 pair-dots (q is a valid 7-bit operand; |lane| ≤ 2·2·31·127);
// SIMD128, widening multiplies (|q·x| ≤ 31·128, four products per lane). Either fits i16, and one
// i32x4.dot_i16x8_s with the sub-block's scale then widens and scales it in one instruction.
@inline function sub_dot16(qa: v128, xa: v128, qb: v128, xb: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xa, qa), i16x8.relaxed_dot_i8x16_i7x16_s(xb, qb));
  const p = i16x8.add(i16x8.extmul_low_i8x16_s(qa, xa), i16x8.extmul_high_i8x16_s(qa, xa));
  return i16x8.add(p, i16x8.add(i16x8.extmul_low_i8x16_s(qb, xb), i16x8.extmul_high_i8x16_s(qb, xb)));
}

// lane j of an i16x8, in every lane (j is a constant after inlining, so the byte indices are a
// constant vector: one pshufb)
@inline function splat16(v: v128, j: i32): v128 {
  const idx = i16x8.splat(<i16>((2 * j + 1) << 8 | (2 * j)));
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(v, idx);
  return i8x16.swizzle(v, idx);
}

// the 8 scales (lanes 0..7) and 8 mins (lanes 8..15) of a K-quant super-block, unpacked from its
// scales[12] in one go (get_scale_min_k4 for j = 0..7):
//   j < 4: sc = q[j] & 63,                       m = q[j+4] & 63
//   j ≥ 4: sc = (q[j+4] & 15) | (q[j-4] >> 6) << 4,  m = (q[j+4] >> 4) | (q[j] >> 6) << 4
@inline function k4_scale_min(sc: usize): v128 {
  const v = v128.load(sc); // 12 bytes used; the next 4 belong to the same block
  const a = v128.shuffle<u8>(v, v, 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11);
  const h = v128.shuffle<u8>(v, v, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 4, 5, 6, 7);
  const lo = v128.bitselect(
    hi_nibbles(a),
    v128.and(a, v128.load(SM_LOW)),
    v128.load(SM_SEL),
  );
  const hi = v128.and(i16x8.shr_u(h, 2), v128.load(SM_HIGH)); // (h >> 6) << 4
  return v128.or(lo, hi);
}

// [Σa, Σb, Σc, Σd] of four i16x8 as i32x4, reducing across the four first (i32 lanes as pairs of
// i16: three i16 adds per lane), then widening once: each lane sum of four inputs must fit in i16
@inline function hsum4_i16(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i16x8.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7)); // [a02 b02 a13 b13]
  const cd = i16x8.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7)));
}

// [Σa, Σb, Σc, Σd] of four i32x4
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7)); // [a02 b02 a13 b13]
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

// dx·(d·Σ_s sc_s·(Σq·x)_s − dmin·Σ_s m_s·(Σx)_s) of a Q4_K/Q5_K super-block, from isum (the scaled
// sub-block sums, i32x4 partials) and sm (k4_scale_min): the mins meet the activation's bsums (two
// per sub-block) by one i16 dot each, with each min in two lanes.
@inline function k4_final(blk: usize, sm: v128, isum: v128, bs: usize, dx: f32): f32 {
  const dd = f16x8_lo(v128.load32_zero(blk)); // [d, dmin] as f32, in one conversion
  return dx * (f32x4.extract_lane(dd, 0) * <f32>hsum_i32(isum) - f32x4.extract_lane(dd, 1) * <f32>hsum_i32(k4_msum(sm, bs)));
}

// Σ_s m_s·(Σx)_s as i32x4 partials
@inline function k4_msum(sm: v128, bs: usize): v128 {
  // [m0 m0 m1 m1 m2 m2 m3 m3] and [m4 m4 … m7 m7] as i16 (the mins are bytes 8..15 of sm)
  const z = i8x16.splat(0);
  const mlo = v128.shuffle<u8>(sm, z, 8, 16, 8, 16, 9, 16, 9, 16, 10, 16, 10, 16, 11, 16, 11, 16);
  const mhi = v128.shuffle<u8>(sm, z, 12, 16, 12, 16, 13, 16, 13, 16, 14, 16, 14, 16, 15, 16, 15, 16);
  return i32x4.add(i32x4.dot_i16x8_s(v128.load(bs), mlo), i32x4.dot_i16x8_s(v128.load(bs, 16), mhi));
}

// Q4_K/Q5_K/Q6_K blocks in decode: a loop over four parts of the block (the pairs of sub-blocks;
// Q6_K's quarters) rather than the whole block written out — V8 schedules a long straight block's
// loads first and then spills most of them (607 of the 1453 instructions of a four-row Q5_K step
// were spill moves): in cache Q4_K +7 %, Q5_K +20 %, Q6_K +22 %. A sub-block's sum (i16 partials
// from sub_dot16) is scaled and widened by one i16 dot with its scale, splat from the thread's
// scratch where the block's scales wait as i16.

// Q4_K block (144 B): d | dmin | scales[12] | qs[128]; qs[32g + l]: low nibble → sub-block 2g
// (x[64g + l]), high nibble → 2g+1 (x[64g + 32 + l])
@inline function q4_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  const sm = k4_scale_min(blk + 4);
  return k4_final(blk, sm, q4_K_isum(blk, x, sm, scratch), bs, dx);
}
// Σ_s sc_s·(Σq·x)_s of a Q4_K block as i32x4 partials (sm: k4_scale_min)
@inline function q4_K_isum(blk: usize, x: usize, sm: v128, scratch: usize): v128 {
  v128.store(scratch, i16x8.extend_low_i8x16_u(sm));
  const m4 = bytes(0x0f);
  let isum = i32x4.splat(0);
  for (let g: usize = 0; g < 4; g++) {
    const q = blk + 16 + (g << 5), xg = x + (g << 6);
    const qa = v128.load(q), qb = v128.load(q, 16);
    const lo = sub_dot16(v128.and(qa, m4), v128.load(xg), v128.and(qb, m4), v128.load(xg, 16));
    const hi = sub_dot16(hi_nibbles(qa), v128.load(xg, 32), hi_nibbles(qb), v128.load(xg, 48));
    isum = i32x4.add(isum, i32x4.add(i32x4.dot_i16x8_s(lo, v128.load16_splat(scratch + (g << 2))), i32x4.dot_i16x8_s(hi, v128.load16_splat(scratch + (g << 2) + 2))));
  }
  return isum;
}

// Q5_K block (176 B): d | dmin | scales[12] | qh[32] | qs[128]; the 5th bit of weight 64g + l is
// bit 2g of qh[l] (low nibble) and of weight 64g + 32 + l bit 2g+1.
@inline function q5_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  const sm = k4_scale_min(blk + 4);
  return k4_final(blk, sm, q5_K_isum(blk, x, sm, scratch), bs, dx);
}
@inline function q5_K_isum(blk: usize, x: usize, sm: v128, scratch: usize): v128 {
  v128.store(scratch, i16x8.extend_low_i8x16_u(sm));
  const m4 = bytes(0x0f), b4 = bytes(16);
  let qha = v128.load(blk + 16), qhb = v128.load(blk + 32);
  let isum = i32x4.splat(0);
  for (let g: usize = 0; g < 4; g++) {
    const q = blk + 48 + (g << 5), xg = x + (g << 6);
    const qa = v128.load(q), qb = v128.load(q, 16);
    // bit 2g of qh → bit 4 for the low nibbles, bit 2g+1 for the high ones (qh is shifted by 2 per pair)
    const lo = sub_dot16(v128.or(v128.and(qa, m4), v128.and(i16x8.shl(qha, 4), b4)), v128.load(xg), v128.or(v128.and(qb, m4), v128.and(i16x8.shl(qhb, 4), b4)), v128.load(xg, 16));
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
@inline function q5k_bit(qh: v128, k: i32): v128 {
  return v128.and(k <= 4 ? i16x8.shl(qh, 4 - k) : i16x8.shr_u(qh, k - 4), bytes(16));
}
@inline function q5k_lo(qs: v128, qh: v128, k: i32): v128 {
  return v128.or(v128.and(qs, bytes(0x0f)), q5k_bit(qh, k));
}
@inline function q5k_hi(qs: v128, qh: v128, k: i32): v128 {
  return v128.or(hi_nibbles(qs), q5k_bit(qh, k));
}


// Q6_K block (210 B): ql[128] | qh[64] | scales[16] i8 | d f16; weight = d·sc·(q − 32) with
// q = 4 bits of ql | 2 bits of qh. In each half (128 weights, ql+64h, qh+32h, sc+8h), lane l of
// 32 gives weights l (ql[l] lo, qh[l] bits 0-1), l+32 (ql[l+32] lo, bits 2-3), l+64 (ql[l] hi,
// bits 4-5), l+96 (ql[l+32] hi, bits 6-7); scale index = l/16 + 2·k for the k-th of those four.
// The loop takes the four quarters (half h, lanes l..l+15).
@inline function q6_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  return dx * (f16_to_f32(load<u16>(blk + 208)) * <f32>q6_K_total(blk, x, bs, scratch));
}
// the block's integer sum Σ sc·(q − 32)·x
@inline function q6_K_total(blk: usize, x: usize, bs: usize, scratch: usize): i32 {
  const scv = v128.load(blk + 192);
  const sc0 = i16x8.extend_low_i8x16_s(scv), sc1 = i16x8.extend_high_i8x16_s(scv);
  v128.store(scratch, sc0);
  v128.store(scratch, sc1, 16);
  let isum = i32x4.splat(0);
  for (let j: usize = 0; j < 4; j++) {
    const h = j >> 1, l = (j & 1) << 4; // half, first lane
    const ql = blk + (h << 6) + l, qh = blk + 128 + (h << 5) + l, xh = x + (h << 7) + l;
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
@inline function q6_group(qla: v128, qlb: v128, qhv: v128, k: i32): v128 {
  const m4 = bytes(0x0f), m2 = bytes(3);
  const ql = k & 1 ? qlb : qla;
  const lo = k < 2 ? v128.and(ql, m4) : hi_nibbles(ql);
  const q = v128.or(lo, i16x8.shl(v128.and(k == 0 ? qhv : i16x8.shr_u(qhv, 2 * k), m2), 4));
  return ASC_FEATURE_RELAXED_SIMD ? q : i8x16.sub(q, bytes(32));
}

// ── K-quant prefill: each block of four rows is expanded once, then dotted with every token ────
// A row's expanded block (KX_ROW bytes at e, in the calling thread's scratch): the 256 weights as
// bytes in sub-block order (sub-block j at 32j), the eight scales as i16 splats (at 256 + 16j), the
// mins as i16 pairs for the bsums (at 384 and 400) and [d, dmin] as f32 (at 416) — everything
// k4_final derives from the weights alone. The dot then gives q4_K_block's value exactly.
const KX_ROW: usize = 432;

@inline function k4_expand_pair(e: usize, qa: v128, qb: v128, ha: v128, hb: v128): void {
  v128.store(e, qa);
  v128.store(e, qb, 16);
  v128.store(e, ha, 32);
  v128.store(e, hb, 48);
}

@inline function k4_expand(kind: i32, blk: usize, e: usize): void {
  const m4 = bytes(0x0f);
  if (kind == 4) {
    const q = blk + 16;
    for (let g: usize = 0; g < 4; g++) {
      const qa = v128.load(q + 32 * g), qb = v128.load(q + 32 * g, 16);
      k4_expand_pair(e + 64 * g, v128.and(qa, m4), v128.and(qb, m4), hi_nibbles(qa), hi_nibbles(qb));
    }
  } else {
    const qha = v128.load(blk + 16), qhb = v128.load(blk + 32), q = blk + 48;
    let qa = v128.load(q), qb = v128.load(q, 16);
    k4_expand_pair(e, q5k_lo(qa, qha, 0), q5k_lo(qb, qhb, 0), q5k_hi(qa, qha, 1), q5k_hi(qb, qhb, 1));
    qa = v128.load(q, 32), qb = v128.load(q, 48);
    k4_expand_pair(e + 64, q5k_lo(qa, qha, 2), q5k_lo(qb, qhb, 2), q5k_hi(qa, qha, 3), q5k_hi(qb, qhb, 3));
    qa = v128.load(q, 64), qb = v128.load(q, 80);
    k4_expand_pair(e + 128, q5k_lo(qa, qha, 4), q5k_lo(qb, qhb, 4), q5k_hi(qa, qha, 5), q5k_hi(qb, qhb, 5));
    qa = v128.load(q, 96), qb = v128.load(q, 112);
    k4_expand_pair(e + 192, q5k_lo(qa, qha, 6), q5k_lo(qb, qhb, 6), q5k_hi(qa, qha, 7), q5k_hi(qb, qhb, 7));
  }
  const sm = k4_scale_min(blk + 4);
  const scl = i16x8.extend_low_i8x16_u(sm);
  v128.store(e, splat16(scl, 0), 256);
  v128.store(e, splat16(scl, 1), 272);
  v128.store(e, splat16(scl, 2), 288);
  v128.store(e, splat16(scl, 3), 304);
  v128.store(e, splat16(scl, 4), 320);
  v128.store(e, splat16(scl, 5), 336);
  v128.store(e, splat16(scl, 6), 352);
  v128.store(e, splat16(scl, 7), 368);
  const z = i8x16.splat(0);
  v128.store(e, v128.shuffle<u8>(sm, z, 8, 16, 8, 16, 9, 16, 9, 16, 10, 16, 10, 16, 11, 16, 11, 16), 384);
  v128.store(e, v128.shuffle<u8>(sm, z, 12, 16, 12, 16, 13, 16, 13, 16, 14, 16, 14, 16, 15, 16, 15, 16), 400);
  v128.store(e, f16x8_lo(v128.load32_zero(blk)), 416);
}

// A Q6_K block expanded (KX6_ROW bytes at e): its 256 6-bit values in activation order (relaxed:
// 0..63; SIMD128: less 32, as q6_K_block dots them), the 16 scales as i16 splats (at 256 + 16g:
// group g of 16 values has scale g), the scales as two i16x8 for the −32 term (at 512, 528) and d
// as f32 (at 544). kx_rows4 then gives q6_K_block's value exactly.
const KX6_ROW: usize = 560;

@inline function q6_expand_quarter(blk: usize, e: usize, h: i32, l: i32): void {
  const ql = blk + (<usize>h << 6) + <usize>l, qh = blk + 128 + (<usize>h << 5) + <usize>l;
  const qla = v128.load(ql), qlb = v128.load(ql, 32), qhv = v128.load(qh);
  const o = e + (<usize>h << 7) + <usize>l;
  v128.store(o, q6_group(qla, qlb, qhv, 0));
  v128.store(o, q6_group(qla, qlb, qhv, 1), 32);
  v128.store(o, q6_group(qla, qlb, qhv, 2), 64);
  v128.store(o, q6_group(qla, qlb, qhv, 3), 96);
}

// the 16 scales of an expanded Q6_K-form block (sc0 | sc1, i16): splat at 256 + 16i, as two
// i16x8 at 512, 528
@inline function kx6_scales(e: usize, sc0: v128, sc1: v128): void {
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

@inline function q6_expand(blk: usize, e: usize): void {
  q6_expand_quarter(blk, e, 0, 0);
  q6_expand_quarter(blk, e, 0, 16);
  q6_expand_quarter(blk, e, 1, 0);
  q6_expand_quarter(blk, e, 1, 16);
  const scv = v128.load(blk + 192);
  const sc0 = i16x8.extend_low_i8x16_s(scv), sc1 = i16x8.extend_high_i8x16_s(scv);
  kx6_scales(e, sc0, sc1);
  store<f32>(e, f16_to_f32(load<u16>(blk + 208)), 544);
}

@inline function kx_expand(kind: i32, blk: usize, e: usize): void {
  if (kind == 6) q6_expand(blk, e);
  else if (kind == 3) q3_expand(blk, e);
  else if (kind == 2) q2_expand(blk, e);
  else k4_expand(kind, blk, e);
}

// four expanded rows (at e, e + KXR, …) dotted with one token's block, lane = row: the x loads are
// shared by the rows, the sums reduced together, the float step done once — the same operations per
// lane as the decode path, so each row's value is the same bit for bit
@inline function kx_rows4(kind: i32, e: usize, x: usize, bs: usize, dx: f32): v128 {
  const R: usize = kind <= 3 || kind == 6 ? KX6_ROW : KX_ROW;
  let i0 = i32x4.splat(0), i1 = i32x4.splat(0), i2 = i32x4.splat(0), i3 = i32x4.splat(0);
  if (kind <= 3 || kind == 6) {
    for (let g: usize = 0; g < 16; g++) {
      const xv = v128.load(x + 16 * g);
      i0 = i32x4.add(i0, q6x_dot(e, xv, g));
      i1 = i32x4.add(i1, q6x_dot(e + R, xv, g));
      i2 = i32x4.add(i2, q6x_dot(e + 2 * R, xv, g));
      i3 = i32x4.add(i3, q6x_dot(e + 3 * R, xv, g));
    }
    if (kind == 2) {
      // Q2_K: dx·(d·Σ sc·q·x − dmin·Σ m·(Σx)), the mins as i16 at 512, 528, [d, dmin] at 544
      const b0 = v128.load(bs), b1 = v128.load(bs, 16);
      const msum = hsum4(q6x_msum(e, b0, b1), q6x_msum(e + R, b0, b1), q6x_msum(e + 2 * R, b0, b1), q6x_msum(e + 3 * R, b0, b1));
      return kx_dmin_final(e, R, 544, hsum4(i0, i1, i2, i3), msum, dx);
    }
    let total = hsum4(i0, i1, i2, i3);
    if (kind == 3 || ASC_FEATURE_RELAXED_SIMD) {
      // Q6_K's −32 (relaxed) or Q3_K's −4 (both builds) through the bsums
      const b0 = v128.load(bs), b1 = v128.load(bs, 16);
      const m = hsum4(q6x_msum(e, b0, b1), q6x_msum(e + R, b0, b1), q6x_msum(e + 2 * R, b0, b1), q6x_msum(e + 3 * R, b0, b1));
      total = i32x4.sub(total, i32x4.shl(m, kind == 3 ? 2 : 5));
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
@inline function kx_dmin_final(e: usize, R: usize, at: usize, isum: v128, msum: v128, dx: f32): v128 {
  const a = v128.shuffle<i32>(v128.load64_zero(e + at), v128.load64_zero(e + R + at), 0, 4, 1, 5);
  const c = v128.shuffle<i32>(v128.load64_zero(e + 2 * R + at), v128.load64_zero(e + 3 * R + at), 0, 4, 1, 5);
  const d = v128.shuffle<i32>(a, c, 0, 1, 4, 5), dmin = v128.shuffle<i32>(a, c, 2, 3, 6, 7);
  return f32x4.mul(f32x4.splat(dx), f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(isum)), f32x4.mul(dmin, f32x4.convert_i32x4_s(msum))));
}
// sub-block j of an expanded block against the activation's (xa | xb), scaled (i32x4 partials)
@inline function kx_sub_x(e: usize, xa: v128, xb: v128, j: usize): v128 {
  return i32x4.dot_i16x8_s(sub_dot16(v128.load(e + 32 * j), xa, v128.load(e + 32 * j, 16), xb), v128.load(e + 16 * j, 256));
}
@inline function kx_msum(e: usize, b0: v128, b1: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(b0, v128.load(e, 384)), i32x4.dot_i16x8_s(b1, v128.load(e, 400)));
}
// group g (16 values) of an expanded Q6_K block against the activation's, scaled (i32x4 partials)
@inline function q6x_dot(e: usize, xv: v128, g: usize): v128 {
  const q = v128.load(e + 16 * g);
  let p: v128;
  if (ASC_FEATURE_RELAXED_SIMD) p = i16x8.relaxed_dot_i8x16_i7x16_s(xv, q);
  else p = i16x8.add(i16x8.extmul_low_i8x16_s(q, xv), i16x8.extmul_high_i8x16_s(q, xv));
  return i32x4.dot_i16x8_s(p, v128.load(e + 16 * g, 256));
}
@inline function q6x_msum(e: usize, b0: v128, b1: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 512), b0), i32x4.dot_i16x8_s(v128.load(e, 528), b1));
}


// The K-quant matmuls share one driver: four rows per pass (the activation block is shared and four
// independent weight streams are in flight), then single rows. `kind` is a constant at each call
// site, so the block function is chosen at compile time.
// out[0..3] (at o) += four rows' blocks (at w, w + step, …) dotted with one token's block
// Q4_K and Q6_K do the float step for the four rows at once, lane = row: the same operations as
// kq_block's, so each row's value is the same bit for bit (in cache Q4_K +17 %, Q6_K +2 %; Q5_K,
// whose blocks hold more live values, lost 4–20 % from DRAM that way and keeps kq_block's).
@inline function kq_acc4(kind: i32, o: usize, w: usize, step: usize, x: usize, bs: usize, dx: f32, scratch: usize): void {
  const w1 = w + step, w2 = w1 + step, w3 = w2 + step;
  let v: v128;
  if (kind == 5 || kind <= 3) {
    v = f32x4(kq_block(kind, w, x, bs, dx, scratch), kq_block(kind, w1, x, bs, dx, scratch), kq_block(kind, w2, x, bs, dx, scratch), kq_block(kind, w3, x, bs, dx, scratch));
  } else if (kind == 6) {
    const t = i32x4(q6_K_total(w, x, bs, scratch), q6_K_total(w1, x, bs, scratch), q6_K_total(w2, x, bs, scratch), q6_K_total(w3, x, bs, scratch));
    v = f32x4.mul(f32x4.splat(dx), f32x4.mul(f16x8_lo(scales4(w + 208, w1 + 208, w2 + 208, w3 + 208)), f32x4.convert_i32x4_s(t)));
  } else {
    const s0 = k4_scale_min(w + 4), s1 = k4_scale_min(w1 + 4), s2 = k4_scale_min(w2 + 4), s3 = k4_scale_min(w3 + 4);
    const isum = f32x4.convert_i32x4_s(hsum4(q4_K_isum(w, x, s0, scratch), q4_K_isum(w1, x, s1, scratch), q4_K_isum(w2, x, s2, scratch), q4_K_isum(w3, x, s3, scratch)));
    const msum = f32x4.convert_i32x4_s(hsum4(k4_msum(s0, bs), k4_msum(s1, bs), k4_msum(s2, bs), k4_msum(s3, bs)));
    // [d0 d1 dmin0 dmin1], [d2 d3 dmin2 dmin3] → [d0..d3], [dmin0..dmin3]
    const a = v128.shuffle<i32>(f16x8_lo(v128.load32_zero(w)), f16x8_lo(v128.load32_zero(w1)), 0, 4, 1, 5);
    const b = v128.shuffle<i32>(f16x8_lo(v128.load32_zero(w2)), f16x8_lo(v128.load32_zero(w3)), 0, 4, 1, 5);
    const d = v128.shuffle<i32>(a, b, 0, 1, 4, 5), dmin = v128.shuffle<i32>(a, b, 2, 3, 6, 7);
    v = f32x4.mul(f32x4.splat(dx), f32x4.sub(f32x4.mul(d, isum), f32x4.mul(dmin, msum)));
  }
  v128.store(o, f32x4.add(v128.load(o), v));
}

@inline function kq_block(kind: i32, blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  if (kind == 2) return q2_K_block(blk, x, bs, dx, scratch);
  if (kind == 3) return q3_K_block(blk, x, bs, dx, scratch);
  if (kind == 4) return q4_K_block(blk, x, bs, dx, scratch);
  if (kind == 5) return q5_K_block(blk, x, bs, dx, scratch);
  return q6_K_block(blk, x, bs, dx, scratch);
}

@inline function matmul_kq(kind: i32, blockBytes: i32, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  const nb = cols >> 8;
  const bb = <usize>blockBytes;
  const rowBytes = <usize>nb * bb;
  // where block b of row k of a group of four is: g + k·rowStep + b·blockStep
  const rowStep = x4 ? bb : rowBytes, blockStep = x4 ? 4 * bb : bb;
  let r = r0;
  if (T > 1) {
    // prefill: per block, four rows expanded into scratch, then every token
    const KXR = kind <= 3 || kind == 6 ? KX6_ROW : KX_ROW;
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
        for (let k = 0; k < n; k++) kq_acc4(kind, o + <usize>k * strideO, g + <usize>k * stride + ob, bb, x, bs, dx, scratch);
      }
    }
    r = r0 + ((r1 - r0) & ~3);
  }
  const wEnd = wPtr + <usize>r1 * rowBytes;
  let touched = i32x4.splat(0);
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
  if (x4) matmul_kq(4, 144, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(4, 144, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}

export function matmul_q5_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(5, 176, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(5, 176, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}

export function matmul_q6_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(6, 210, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(6, 210, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}


// F32 weights × f32 activations
export function matmul_f32(outPtr: usize, wPtr: usize, xPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  const rowBytes = <usize>cols << 2;
  for (let r = r0; r < r1; r++) {
    const w = wPtr + <usize>r * rowBytes;
    for (let t = 0; t < T; t++) {
      const x = xPtr + <usize>t * rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      let c = 0;
      for (; c + 8 <= cols; c += 8) {
        const o = <usize>c << 2;
        a0 = f32x4.add(a0, f32x4.mul(v128.load(w + o), v128.load(x + o)));
        a1 = f32x4.add(a1, f32x4.mul(v128.load(w + o + 16), v128.load(x + o + 16)));
      }
      let s = hsum_f32(f32x4.add(a0, a1));
      for (; c < cols; c++) s += load<f32>(w + (<usize>c << 2)) * load<f32>(x + (<usize>c << 2));
      store<f32>(outPtr + (<usize>(t * rows + r) << 2), s);
    }
  }
}

// F16 weights × activations rounded to f16 (ggml's vec_dot_type for F16); xPtr holds those
// rounded activations as f32 (see round_f16_row). cols % 8 == 0.
export function matmul_f16(outPtr: usize, wPtr: usize, xPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  matmul_half(false, outPtr, wPtr, xPtr, cols, rows, r0, r1, T);
}

// F16 or BF16 (a constant at each call site) weights × f32 activations, one row at a time
@inline function matmul_half(bf16: bool, outPtr: usize, wPtr: usize, xPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  const rowBytes = <usize>cols << 1;
  for (let r = r0; r < r1; r++) {
    const w = wPtr + <usize>r * rowBytes;
    for (let t = 0; t < T; t++) {
      const x = xPtr + (<usize>t * <usize>cols << 2);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      for (let c = 0; c < cols; c += 8) {
        const h = v128.load(w + (<usize>c << 1));
        // bf16 is the top half of an f32
        const lo = bf16 ? i32x4.shl(i32x4.extend_low_i16x8_u(h), 16) : f16x8_lo(h);
        const hi = bf16 ? i32x4.shl(i32x4.extend_high_i16x8_u(h), 16) : f16x8_hi(h);
        a0 = f32x4.add(a0, f32x4.mul(lo, v128.load(x + (<usize>c << 2))));
        a1 = f32x4.add(a1, f32x4.mul(hi, v128.load(x + (<usize>c << 2) + 16)));
      }
      store<f32>(outPtr + (<usize>(t * rows + r) << 2), hsum_f32(f32x4.add(a0, a1)));
    }
  }
}

// x → f16-rounded values (as f32), for F16 matmuls
export function round_f16_row(outPtr: usize, xPtr: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(outPtr + (<usize>i << 2), round_f16(load<f32>(xPtr + (<usize>i << 2))));
}

// n halves → f32 by the kernels' three conversions: path 0 scalar (f16_to_f32), 1 vector (f16x8_lo/hi,
// the weights' scales and F16 weights), 2 the KV cache's exact one (kv_f16x8_lo/hi), 3 its fast one
// (finite halves only); n a multiple of 8 for 1–3.
// For their twin test on every half. (twin: fp16ToFp32)
export function f16_to_f32_row(outPtr: usize, hPtr: usize, n: i32, path: i32): void {
  if (path === 0) {
    for (let i = 0; i < n; i++) store<f32>(outPtr + (<usize>i << 2), f16_to_f32(load<u16>(hPtr + (<usize>i << 1))));
    return;
  }
  for (let i = 0; i < n; i += 8) {
    const h = v128.load(hPtr + (<usize>i << 1));
    const o = outPtr + (<usize>i << 2);
    v128.store(o, path === 1 ? f16x8_lo(h) : path === 2 ? kv_f16x8_lo(h, true) : kv_f16x8_lo(h, false));
    v128.store(o, path === 1 ? f16x8_hi(h) : path === 2 ? kv_f16x8_hi(h, true) : kv_f16x8_hi(h, false), 16);
  }
}

// ── the small ops ──────────────────────────────────────────────────────────────────────────────

// out[t,:] = x[t,:] / sqrt(mean(x²) + eps) · w   (twin: rmsnormRef)
export function rmsnorm(outPtr: usize, xPtr: usize, wPtr: usize, T: i32, n: i32, eps: f32): void {
  for (let t = 0; t < T; t++) {
    const x = xPtr + (<usize>(t * n) << 2), o = outPtr + (<usize>(t * n) << 2);
    let ss: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = <f64>load<f32>(x + (<usize>i << 2));
      ss += v * v;
    }
    const scale = <f32>(1.0 / Math.sqrt(ss / <f64>n + <f64>eps));
    for (let i = 0; i < n; i++) store<f32>(o + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * scale * load<f32>(wPtr + (<usize>i << 2)));
  }
}

// NEOX rope over heads [h0, h1) of each token of qkv [T, qkvDim] (q heads then k heads);
// cos/sin tables [T, ropeDim/2] are computed by the caller (twin: ropeRef)
export function rope(qkvPtr: usize, cosPtr: usize, sinPtr: usize, T: i32, qkvDim: i32, headDim: i32, ropeDim: i32, h0: i32, h1: i32): void {
  const half = ropeDim >> 1;
  for (let t = 0; t < T; t++) {
    const c = cosPtr + (<usize>(t * half) << 2), s = sinPtr + (<usize>(t * half) << 2);
    for (let h = h0; h < h1; h++) {
      const o = qkvPtr + (<usize>(t * qkvDim + h * headDim) << 2);
      for (let i = 0; i < half; i++) {
        const a = o + (<usize>i << 2), b = o + (<usize>(i + half) << 2);
        const x0 = load<f32>(a), x1 = load<f32>(b);
        const cs = load<f32>(c + (<usize>i << 2)), sn = load<f32>(s + (<usize>i << 2));
        store<f32>(a, x0 * cs - x1 * sn);
        store<f32>(b, x0 * sn + x1 * cs);
      }
    }
  }
}

// One layer's K (and V) cache is f16, head-major: [nKvHeads][ctx][headDim], so that attention reads
// each head's keys and values as one sequential stream (a position-major cache puts a head's
// 2·headDim bytes of every position kvDim·2 bytes apart: a stride the prefetcher does not follow).

// store k, v of T tokens (from qkv) as f16 at positions pos0… of one layer's cache; returns 1 if it
// stored a half of exponent 31 (±Inf or NaN: attention must then convert this layer exactly), else 0
export function kv_store(kPtr: usize, vPtr: usize, qkvPtr: usize, T: i32, pos0: i32, qDim: i32, nKvHeads: i32, headDim: i32, qkvDim: i32, ctx: i32): i32 {
  const kvDim = nKvHeads * headDim;
  let special: u32 = 0;
  for (let t = 0; t < T; t++) {
    const src = qkvPtr + (<usize>(t * qkvDim + qDim) << 2);
    for (let h = 0; h < nKvHeads; h++) {
      const at = <usize>((h * ctx + pos0 + t) * headDim) << 1;
      const dk = kPtr + at, dv = vPtr + at;
      const sk = src + (<usize>(h * headDim) << 2), sv = sk + (<usize>kvDim << 2);
      for (let i = 0; i < headDim; i++) {
        const hk = f32_to_f16_bits(load<f32>(sk + (<usize>i << 2))), hv = f32_to_f16_bits(load<f32>(sv + (<usize>i << 2)));
        store<u16>(dk + (<usize>i << 1), hk);
        store<u16>(dv + (<usize>i << 1), hv);
        special |= <u32>((hk & 0x7c00) == 0x7c00) | <u32>((hv & 0x7c00) == 0x7c00);
      }
    }
  }
  return <i32>special;
}

@inline function f32_to_f16_bits(f: f32): u16 {
  const scale_to_inf: f32 = reinterpret<f32>(<u32>0x77800000);
  const scale_to_zero: f32 = reinterpret<f32>(<u32>0x08800000);
  let base: f32 = (Mathf.abs(f) * scale_to_inf) * scale_to_zero;
  const w: u32 = reinterpret<u32>(f);
  const shl1_w: u32 = w + w;
  const sign: u32 = w & 0x80000000;
  let bias: u32 = shl1_w & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits: u32 = reinterpret<u32>(base);
  return <u16>((sign >> 16) | (shl1_w > 0xff000000 ? 0x7e00 : ((bits >> 13) & 0x00007c00) + (bits & 0x00000fff)));
}

// causal attention for query heads [h0, h1) of T tokens at positions pos0…:
// out[t, h·hd…] = Σ_{pos0+t-window < p ≤ pos0+t} softmax_p(q·k_p · scale) · v_p over one layer's f16 cache
// (window 0: every p ≤ pos0+t).
// attPtr: scratch of (pos0+T) f32 per thread. (twin: attentionRef)
const ATT_FLOOR: f32 = reinterpret<f32>(<u32>0x0d800000); // 2^-100
// exact: 1 when the layer's cache holds an Inf/NaN half (kv_store said so), for the exact conversion.
export function attention(outPtr: usize, qkvPtr: usize, kPtr: usize, vPtr: usize, attPtr: usize, T: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, qkvDim: i32, ctx: i32, h0: i32, h1: i32, scale: f32, window: i32, exact: i32): void {
  if (exact != 0) attention_heads(true, outPtr, qkvPtr, kPtr, vPtr, attPtr, T, pos0, nHeads, nKvHeads, headDim, qkvDim, ctx, h0, h1, scale, window);
  else attention_heads(false, outPtr, qkvPtr, kPtr, vPtr, attPtr, T, pos0, nHeads, nKvHeads, headDim, qkvDim, ctx, h0, h1, scale, window);
}
@inline function attention_heads(exact: bool, outPtr: usize, qkvPtr: usize, kPtr: usize, vPtr: usize, attPtr: usize, T: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, qkvDim: i32, ctx: i32, h0: i32, h1: i32, scale: f32, window: i32): void {
  const group = nHeads / nKvHeads;
  const rowBytes = <usize>headDim << 1;
  let touched = i32x4.splat(0);
  for (let t = 0; t < T; t++) {
    // causal, and with a sliding window only the last `window` positions (0: all): positions p0 … n-1
    const n = pos0 + t + 1;
    const p0 = window > 0 && n > window ? n - window : 0;
    const m = n - p0, skip = <usize>p0 * rowBytes;
    for (let h = h0; h < h1; h++) {
      const q = qkvPtr + (<usize>(t * qkvDim + h * headDim) << 2);
      const head = <usize>((h / group) * ctx) * rowBytes; // this head's [ctx][headDim] in K and V
      // scores q·k_p · scale, and their max. Meanwhile the next KV head's k_p and v_p are touched
      // (one load per line), so that the next head finds its keys and values in cache (attention is
      // latency-bound: without touches 12 ms a token on mini, touching ahead in the same head 8.6,
      // the next head's 7); the first head of the range touches its own v_p (for the pass over V
      // below) and its keys TOUCH_AHEAD bytes on (see the matmuls).
      let max: f32 = -Infinity;
      let k = kPtr + head + skip;
      const kLast = kPtr + head + <usize>ctx * rowBytes - rowBytes;
      const first = h == h0, next: usize = h + 1 < h1 && (h + 1) / group != h / group ? <usize>ctx * rowBytes : 0;
      for (let p = 0, v = vPtr + head + skip; p < m; p++, k += rowBytes, v += rowBytes) {
        if (first) {
          const kt = k + TOUCH_AHEAD <= kLast ? k + TOUCH_AHEAD : k;
          for (let j: usize = 0; j < rowBytes; j += 64) {
            touched = i32x4.add(touched, v128.load32_zero(kt + j));
            touched = i32x4.add(touched, v128.load32_zero(v + j));
          }
        }
        if (next) {
          for (let j: usize = 0; j < rowBytes; j += 64) {
            touched = i32x4.add(touched, v128.load32_zero(k + next + j));
            touched = i32x4.add(touched, v128.load32_zero(v + next + j));
          }
        }
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        let i = 0;
        for (; i + 8 <= headDim; i += 8) {
          const hk = v128.load(k + (<usize>i << 1));
          a0 = f32x4.add(a0, f32x4.mul(v128.load(q + (<usize>i << 2)), kv_f16x8_lo(hk, exact)));
          a1 = f32x4.add(a1, f32x4.mul(v128.load(q + (<usize>i << 2), 16), kv_f16x8_hi(hk, exact)));
        }
        let d = hsum_f32(f32x4.add(a0, a1));
        for (; i < headDim; i++) d += load<f32>(q + (<usize>i << 2)) * f16_to_f32(load<u16>(k + (<usize>i << 1)));
        d *= scale;
        store<f32>(attPtr + (<usize>p << 2), d);
        if (d > max) max = d;
      }
      // softmax numerators and their sum. A numerator under 2^-100 counts as 0 (as in attentionRef):
      // beside the max's 1 it is far below f32 resolution, and the pass over V would otherwise
      // multiply by subnormal floats, ~100 cycles each (peaked attention: 1+ ms a token on mini)
      let sum: f32 = 0;
      for (let p = 0; p < m; p++) {
        const x = Mathf.exp(load<f32>(attPtr + (<usize>p << 2)) - max);
        const e = select<f32>(x, 0, x >= ATT_FLOOR);
        store<f32>(attPtr + (<usize>p << 2), e);
        sum += e;
      }
      const inv = f32x4.splat(<f32>1.0 / sum);
      // Σ_p e_p·v_p / sum, 32 dimensions per pass over the positions (one cache line of each v_p)
      const o = outPtr + (<usize>(t * nHeads * headDim + h * headDim) << 2);
      const vh = vPtr + head + skip;
      let i = 0;
      for (; i + 32 <= headDim; i += 32) {
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        let v = vh + (<usize>i << 1);
        for (let p = 0; p < m; p++, v += rowBytes) {
          const a = v128.load32_splat(attPtr + (<usize>p << 2));
          const v0 = v128.load(v), v1 = v128.load(v, 16), v2 = v128.load(v, 32), v3 = v128.load(v, 48);
          a0 = f32x4.add(a0, f32x4.mul(a, kv_f16x8_lo(v0, exact)));
          a1 = f32x4.add(a1, f32x4.mul(a, kv_f16x8_hi(v0, exact)));
          a2 = f32x4.add(a2, f32x4.mul(a, kv_f16x8_lo(v1, exact)));
          a3 = f32x4.add(a3, f32x4.mul(a, kv_f16x8_hi(v1, exact)));
          a4 = f32x4.add(a4, f32x4.mul(a, kv_f16x8_lo(v2, exact)));
          a5 = f32x4.add(a5, f32x4.mul(a, kv_f16x8_hi(v2, exact)));
          a6 = f32x4.add(a6, f32x4.mul(a, kv_f16x8_lo(v3, exact)));
          a7 = f32x4.add(a7, f32x4.mul(a, kv_f16x8_hi(v3, exact)));
        }
        const oi = o + (<usize>i << 2);
        v128.store(oi, f32x4.mul(a0, inv));
        v128.store(oi, f32x4.mul(a1, inv), 16);
        v128.store(oi, f32x4.mul(a2, inv), 32);
        v128.store(oi, f32x4.mul(a3, inv), 48);
        v128.store(oi, f32x4.mul(a4, inv), 64);
        v128.store(oi, f32x4.mul(a5, inv), 80);
        v128.store(oi, f32x4.mul(a6, inv), 96);
        v128.store(oi, f32x4.mul(a7, inv), 112);
      }
      for (; i + 8 <= headDim; i += 8) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        let v = vh + (<usize>i << 1);
        for (let p = 0; p < m; p++, v += rowBytes) {
          const a = v128.load32_splat(attPtr + (<usize>p << 2));
          const hv = v128.load(v);
          a0 = f32x4.add(a0, f32x4.mul(a, kv_f16x8_lo(hv, exact)));
          a1 = f32x4.add(a1, f32x4.mul(a, kv_f16x8_hi(hv, exact)));
        }
        v128.store(o + (<usize>i << 2), f32x4.mul(a0, inv));
        v128.store(o + (<usize>i << 2), f32x4.mul(a1, inv), 16);
      }
      for (; i < headDim; i++) {
        let acc: f32 = 0;
        let v = vh + (<usize>i << 1);
        for (let p = 0; p < m; p++, v += rowBytes) acc += load<f32>(attPtr + (<usize>p << 2)) * f16_to_f32(load<u16>(v));
        store<f32>(o + (<usize>i << 2), acc * f32x4.extract_lane(inv, 0));
      }
    }
  }
  if (T < 0) v128.store(outPtr, touched); // the touches must look used; T is never negative
}

// out[t,i] = silu(gu[t,i]) · gu[t, hiddenDim+i]   (twin: swigluRef)
export function swiglu(outPtr: usize, guPtr: usize, T: i32, hiddenDim: i32, i0: i32, i1: i32): void {
  for (let t = 0; t < T; t++) {
    const g = guPtr + (<usize>(2 * t * hiddenDim) << 2), o = outPtr + (<usize>(t * hiddenDim) << 2);
    for (let i = i0; i < i1; i++) {
      const x = load<f32>(g + (<usize>i << 2));
      store<f32>(o + (<usize>i << 2), (x / (<f32>1.0 + Mathf.exp(-x))) * load<f32>(g + (<usize>(hiddenDim + i) << 2)));
    }
  }
}

// x += y over n floats
export function add(xPtr: usize, yPtr: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(xPtr + (<usize>i << 2), f32x4.add(v128.load(xPtr + (<usize>i << 2)), v128.load(yPtr + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(xPtr + (<usize>i << 2), load<f32>(xPtr + (<usize>i << 2)) + load<f32>(yPtr + (<usize>i << 2)));
}

// ── the other legacy types: Q4_1, Q5_0, Q5_1 (one row at a time) and BF16 ─────────────────────
// Activations are Q8_0 blocks (Q8_1's values are the same; its s = d·Σq is formed here as
// dx·Σq, without ggml's f16 rounding of s). Twin: matmulRef.

// Σ of 32 products of (weights 0..31 as i8 in w0 | w1) with x0 | x1; |q·x| ≤ 32·128, two per i16 lane
@inline function dot32(w0: v128, w1: v128, x0: v128, x1: v128): v128 {
  const a = i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extmul_low_i8x16_s(w0, x0), i16x8.extmul_high_i8x16_s(w0, x0)));
  return i32x4.add(a, i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extmul_low_i8x16_s(w1, x1), i16x8.extmul_high_i8x16_s(w1, x1))));
}

// Σx of a Q8_0 activation block, in every lane
@inline function xsum32(x0: v128, x1: v128): i32 {
  return hsum_i32(i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extadd_pairwise_i8x16_s(x0), i16x8.extadd_pairwise_i8x16_s(x1))));
}

// the 5th bits of a Q5 block (qh: its 4 bytes, loaded into every lane; bit j ↔ weight j) as 16 in
// bytes 0..15 (half 0) or 16..31 (half 1): byte j of the half takes byte j/8 of it, masked by bit j%8
@inline function q5_high(qh: v128, half: i32): v128 {
  const sel = half == 0 ? v128.shuffle<u8>(qh, qh, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1) : v128.shuffle<u8>(qh, qh, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const mask = v128.load(BITS8);
  return v128.and(i8x16.eq(v128.and(sel, mask), mask), bytes(16));
}

// Q4_1 block (20 B): d f16 | m f16 | qs[16]; weight = q·d + m
// Q5_0 block (22 B): d f16 | qh u32 | qs[16]; weight = (q | h<<4) − 16
// Q5_1 block (24 B): d f16 | m f16 | qh u32 | qs[16]; weight = (q | h<<4)·d + m
// `kind` (41, 50, 51) is a constant at each call site.

// Σ q·x of a block's 32 unsigned weights (as bytes, ≤ 31: lo | hi) as i32x4 partials: relaxed,
// two i8×i7 pair-dots (|lane| ≤ 4·31·127 fits i16); SIMD128, widening multiplies
@inline function udot32(lo: v128, hi: v128, x0: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi)));
  return dot32(lo, hi, x0, x1);
}

// Σ q·x of a legacy block with q unsigned (Q5_0's −16 is the caller's), i32x4 partials
@inline function legacy_isum(kind: i32, blk: usize, x0: v128, x1: v128): v128 {
  return udot32(legacy_q(kind, blk, 0), legacy_q(kind, blk, 1), x0, x1);
}
// a legacy block's unsigned values 0..15 (half 0) or 16..31 (half 1) as bytes
@inline function legacy_q(kind: i32, blk: usize, half: i32): v128 {
  const qs = v128.load(blk + (kind == 41 ? 4 : kind == 50 ? 6 : 8));
  const q = half == 0 ? v128.and(qs, bytes(0x0f)) : hi_nibbles(qs);
  return kind == 41 ? q : v128.or(q, q5_high(v128.load32_splat(blk + (kind == 50 ? 2 : 4)), half));
}

// one row's block dotted with a token's block (x0 | x1, Σx = xs, scale dx)
@inline function legacy_block(kind: i32, blk: usize, x0: v128, x1: v128, xs: i32, dx: f32): f32 {
  const s = hsum_i32(legacy_isum(kind, blk, x0, x1));
  if (kind == 50) return dx * (f16_to_f32(load<u16>(blk)) * <f32>(s - (xs << 4)));
  return dx * (f16_to_f32(load<u16>(blk)) * <f32>s + f16_to_f32(load<u16>(blk + 2)) * <f32>xs);
}

// acc (at o) += four rows' blocks (at w, w + step, …) dotted with one token's block, lane = row:
// the same operations per lane as legacy_block
@inline function legacy_acc4(kind: i32, o: usize, w: usize, step: usize, x0: v128, x1: v128, xs: i32, dx: v128): void {
  const w1 = w + step, w2 = w1 + step, w3 = w2 + step;
  let s = hsum4(legacy_isum(kind, w, x0, x1), legacy_isum(kind, w1, x0, x1), legacy_isum(kind, w2, x0, x1), legacy_isum(kind, w3, x0, x1));
  if (kind == 50) s = i32x4.sub(s, i32x4.splat(xs << 4));
  let v = f32x4.mul(f16x8_lo(scales4(w, w1, w2, w3)), f32x4.convert_i32x4_s(s));
  if (kind != 50) v = f32x4.add(v, f32x4.mul(f16x8_lo(scales4(w + 2, w1 + 2, w2 + 2, w3 + 2)), f32x4.splat(<f32>xs)));
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(dx, v)));
}

// legacy_acc4 for prefill, from four rows' blocks expanded at e (expand_legacy4) and the token's
// Σx (xs) and scale (dx): the same operations per lane
@inline function legacy_acc4x(kind: i32, o: usize, e: usize, x0: v128, x1: v128, xs: i32, dx: v128): void {
  let s = hsum4(udot32(v128.load(e), v128.load(e, 16), x0, x1), udot32(v128.load(e, 32), v128.load(e, 48), x0, x1), udot32(v128.load(e, 64), v128.load(e, 80), x0, x1), udot32(v128.load(e, 96), v128.load(e, 112), x0, x1));
  if (kind == 50) s = i32x4.sub(s, i32x4.splat(xs << 4));
  let v = f32x4.mul(v128.load(e, 128), f32x4.convert_i32x4_s(s));
  if (kind != 50) v = f32x4.add(v, f32x4.mul(v128.load(e, 144), f32x4.splat(<f32>xs)));
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(dx, v)));
}
// four rows' blocks (at w, w + step, …) expanded at e: each row's 32 unsigned values (32 bytes), then
// [d0..d3] and [m0..m3] as f32
@inline function expand_legacy4(kind: i32, e: usize, w: usize, step: usize): void {
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
@inline function matmul_legacy(x4: bool, kind: i32, blockBytes: i32, outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize): void {
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
  if (x4) matmul_legacy(true, 41, 20, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
  else matmul_legacy(false, 41, 20, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
}
export function matmul_q5_0(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_legacy(true, 50, 22, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
  else matmul_legacy(false, 50, 22, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
}
export function matmul_q5_1(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_legacy(true, 51, 24, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
  else matmul_legacy(false, 51, 24, outPtr, wPtr, qsPtr, dPtr, cols, rows, r0, r1, T, scratch);
}

// BF16 weights × activations rounded to bf16 (ggml's vec_dot_type for BF16), given as f32
export function matmul_bf16(outPtr: usize, wPtr: usize, xPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32): void {
  matmul_half(true, outPtr, wPtr, xPtr, cols, rows, r0, r1, T);
}

// x → bf16-rounded values (as f32): round to nearest even, NaN kept quiet (ggml_compute_fp32_to_bf16)
export function round_bf16_row(outPtr: usize, xPtr: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const u = load<u32>(xPtr + (<usize>i << 2));
    const h: u32 = (u & 0x7fffffff) > 0x7f800000 ? ((u >> 16) | 64) : ((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    store<u32>(outPtr + (<usize>i << 2), h << 16);
  }
}

// ── Q2_K and Q3_K (matmul_kq's decode and layouts; prefill without expansion) ────────────────

// Σ of 16 products q·x (q unsigned, ≤ 7) as i16x8 partials: relaxed, one i8×i7 pair-dot
// (|lane| ≤ 2·7·127); SIMD128, widening multiplies (|q·x| ≤ 7·128, two per lane)
@inline function dot16_i16(q: v128, x: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(x, q);
  return i16x8.add(i16x8.extmul_low_i8x16_s(q, x), i16x8.extmul_high_i8x16_s(q, x));
}

// Q2_K block (84 B): scales[16] (low nibble scale, high nibble min) | qs[64] | d f16 | dmin f16.
// Sub-block i = 8g + 2j + h (16 weights): 2-bit values at qs + 32g + 16h, shifted by 2j. A loop over
// the two halves g; each sub-block's i16 partials are scaled and widened by one i16 dot with its
// scale (splat from the thread's scratch); the mins meet the activation's bsums the same way.
@inline function q2_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  const sv = v128.load(blk), m3 = bytes(3);
  const sc = v128.and(sv, bytes(15)), mn = hi_nibbles(sv);
  v128.store(scratch, i16x8.extend_low_i8x16_u(sc));
  v128.store(scratch, i16x8.extend_high_i8x16_u(sc), 16);
  const msum = hsum_i32(i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(mn), v128.load(bs)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(mn), v128.load(bs, 16))));
  let isum = i32x4.splat(0);
  for (let g: usize = 0; g < 2; g++) {
    const qa = v128.load(blk + 16 + (g << 5)), qb = v128.load(blk + 32 + (g << 5));
    const xg = x + (g << 7), sg = scratch + (g << 4);
    isum = i32x4.add(isum, q2_pair(v128.and(qa, m3), v128.and(qb, m3), xg, sg));
    isum = i32x4.add(isum, q2_pair(v128.and(i16x8.shr_u(qa, 2), m3), v128.and(i16x8.shr_u(qb, 2), m3), xg + 32, sg + 4));
    isum = i32x4.add(isum, q2_pair(v128.and(i16x8.shr_u(qa, 4), m3), v128.and(i16x8.shr_u(qb, 4), m3), xg + 64, sg + 8));
    isum = i32x4.add(isum, q2_pair(v128.and(i16x8.shr_u(qa, 6), m3), v128.and(i16x8.shr_u(qb, 6), m3), xg + 96, sg + 12));
  }
  return dx * (f16_to_f32(load<u16>(blk + 80)) * <f32>hsum_i32(isum) - f16_to_f32(load<u16>(blk + 82)) * <f32>msum);
}
// sub-blocks 2j and 2j+1 of a half (values a, b; activations at x, x + 16; scales at s, s + 2)
@inline function q2_pair(a: v128, b: v128, x: usize, s: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(dot16_i16(a, v128.load(x)), v128.load16_splat(s)), i32x4.dot_i16x8_s(dot16_i16(b, v128.load(x, 16)), v128.load16_splat(s, 2)));
}

// the 16 scales of a Q3_K block (6-bit values packed in scales[12] at s, ggml's kmask1/kmask2
// unpacking, − 32) as i8: low 4 bits from byte i (i < 8) or the high nibble of byte i − 8, bits 4-5
// from byte 8 + (i & 3) at 2·(i >> 2)
@inline function q3_K_scales(s: usize): v128 {
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
@inline function q3_K_block(blk: usize, x: usize, bs: usize, dx: f32, scratch: usize): f32 {
  const scv = q3_K_scales(blk + 96);
  const sc0 = i16x8.extend_low_i8x16_s(scv), sc1 = i16x8.extend_high_i8x16_s(scv);
  v128.store(scratch, sc0);
  v128.store(scratch, sc1, 16);
  const msum = hsum_i32(i32x4.add(i32x4.dot_i16x8_s(sc0, v128.load(bs)), i32x4.dot_i16x8_s(sc1, v128.load(bs, 16))));
  const m3 = bytes(3), f4 = bytes(4);
  let h0 = v128.load(blk), h1 = v128.load(blk + 16);
  let isum = i32x4.splat(0);
  for (let g: usize = 0; g < 2; g++) {
    const qa = v128.load(blk + 32 + (g << 5)), qb = v128.load(blk + 48 + (g << 5));
    const xg = x + (g << 7), sg = scratch + (g << 4);
    // high bit j of this half's hmask bits (shifted by 4 per half) → 4
    isum = i32x4.add(isum, q2_pair(v128.or(v128.and(qa, m3), v128.and(i16x8.shl(h0, 2), f4)), v128.or(v128.and(qb, m3), v128.and(i16x8.shl(h1, 2), f4)), xg, sg));
    isum = i32x4.add(isum, q2_pair(v128.or(v128.and(i16x8.shr_u(qa, 2), m3), v128.and(i16x8.shl(h0, 1), f4)), v128.or(v128.and(i16x8.shr_u(qb, 2), m3), v128.and(i16x8.shl(h1, 1), f4)), xg + 32, sg + 4));
    isum = i32x4.add(isum, q2_pair(v128.or(v128.and(i16x8.shr_u(qa, 4), m3), v128.and(h0, f4)), v128.or(v128.and(i16x8.shr_u(qb, 4), m3), v128.and(h1, f4)), xg + 64, sg + 8));
    isum = i32x4.add(isum, q2_pair(v128.or(v128.and(i16x8.shr_u(qa, 6), m3), v128.and(i16x8.shr_u(h0, 1), f4)), v128.or(v128.and(i16x8.shr_u(qb, 6), m3), v128.and(i16x8.shr_u(h1, 1), f4)), xg + 96, sg + 12));
    h0 = i16x8.shr_u(h0, 4);
    h1 = i16x8.shr_u(h1, 4);
  }
  return dx * (f16_to_f32(load<u16>(blk + 108)) * <f32>(hsum_i32(isum) - (msum << 2)));
}

// A Q3_K block expanded in Q6_K's form (KX6_ROW bytes at e): the 256 unsigned values q + 4·bit in
// activation order, the 16 scales as i16 splats (at 256 + 16i), as two i16x8 for the −4 term (at
// 512, 528) and d as f32 (at 544); kx_rows4 then gives q3_K_block's value exactly.
@inline function q3_expand(blk: usize, e: usize): void {
  const m3 = bytes(3), f4 = bytes(4);
  let h0 = v128.load(blk), h1 = v128.load(blk + 16);
  for (let g: usize = 0; g < 2; g++) {
    const qa = v128.load(blk + 32 + (g << 5)), qb = v128.load(blk + 48 + (g << 5)), o = e + (g << 7);
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
  const scv = q3_K_scales(blk + 96);
  const sc0 = i16x8.extend_low_i8x16_s(scv), sc1 = i16x8.extend_high_i8x16_s(scv);
  kx6_scales(e, sc0, sc1);
  store<f32>(e, f16_to_f32(load<u16>(blk + 108)), 544);
}

// A Q2_K block expanded in Q6_K's form (KX6_ROW bytes at e): the 256 values in activation order, the
// 16 scales as i16 splats (at 256 + 16i), the 16 mins as two i16x8 (at 512, 528) and [d, dmin] as
// f32 (at 544); kx_rows4 then gives q2_K_block's value exactly.
@inline function q2_expand(blk: usize, e: usize): void {
  const m3 = bytes(3);
  for (let g: usize = 0; g < 2; g++) {
    const qa = v128.load(blk + 16 + (g << 5)), qb = v128.load(blk + 32 + (g << 5)), o = e + (g << 7);
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
  v128.store(e, f16x8_lo(v128.load32_zero(blk + 80)), 544);
}

export function matmul_q2_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(2, 84, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(2, 84, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}
export function matmul_q3_K(outPtr: usize, wPtr: usize, qsPtr: usize, dPtr: usize, bsPtr: usize, cols: i32, rows: i32, r0: i32, r1: i32, T: i32, scratch: usize, x4: i32): void {
  if (x4) matmul_kq(3, 110, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 1);
  else matmul_kq(3, 110, outPtr, wPtr, qsPtr, dPtr, bsPtr, cols, rows, r0, r1, T, scratch, 0);
}

