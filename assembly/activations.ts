// Activations: each matmul's input row converted once per op to the weight type's vec_dot_type, as
// ggml-cpu does — Q8_0 blocks for the legacy types, Q8_K super-blocks (with bsums) for K-quants.
// Twins: src/quant/activations.ts (quantizeQ8_0Act, quantizeQ8KAct).
import { hsum_i32, round_f16 } from './lanes';

// ── activation quantizers ──────────────────────────────────────────────────────────────────────

// ggml-cpu x86 quantize_row_q8_0: d = amax/127 stored as f16; q = round_nearest_even(x · 127/amax);
// and sums[b] = Σ q of block b as i32 (Q8_1's s, in integers: the unsigned-weight dots subtract
// offset·sums). (twin: quantizeQ8_0Act). n % 32 == 0.
export function quantize_q8_0(qsPtr: usize, dPtr: usize, sumsPtr: usize, xPtr: usize, n: i32): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const q = qsPtr + (<usize>b << 5);
    const amax = q8_0_block(q, xPtr + (<usize>b << 7));
    store<f32>(dPtr + (<usize>b << 2), round_f16(amax / 127.0));
    const s = i16x8.add(i16x8.extadd_pairwise_i8x16_s(v128.load(q)), i16x8.extadd_pairwise_i8x16_s(v128.load(q, 16)));
    store<i32>(sumsPtr + (<usize>b << 2), hsum_i32(i32x4.extadd_pairwise_i16x8_s(s)));
  }
}

// one block of 32 f32 at x as ggml-cpu's x86 quantize_row_q8_0 rounds it: q = nearest-even(x · 127/amax)
// into the 32 bytes at q (unaligned is fine); returns amax (d = amax/127). Also the q8_0 KV cache's store.
@inline export function q8_0_block(q: usize, x: usize): f32 {
  let m = f32x4.abs(v128.load(x));
  for (let k = 1; k < 8; k++) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>k << 4))));
  const amax = Mathf.max(Mathf.max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), Mathf.max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  const id = f32x4.splat(amax != 0 ? <f32>127.0 / amax : 0);
  for (let k = 0; k < 2; k++) {
    const o = <usize>k << 6;
    const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o), id)));
    const bb = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o + 16), id)));
    const c = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o + 32), id)));
    const d = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o + 48), id)));
    v128.store(q + (<usize>k << 4), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, bb), i16x8.narrow_i32x4_s(c, d)));
  }
  return amax;
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
