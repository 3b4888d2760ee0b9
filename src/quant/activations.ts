/**
 * Activation quantizers as ggml-cpu runs them on x86 (ggml/src/ggml-cpu/arch/x86/quants.c):
 * the row a matmul dots with quantized weights is first converted to the weight type's
 * vec_dot_type. Q8_0/Q8_1 use the SIMD path's arithmetic (id = 127/amax, round half to even),
 * which differs in the last bit from quantize_row_q8_0_ref; Q8_K is quantize_row_q8_K_ref.
 *
 * These are the TypeScript twins of the WASM kernels quantize_q8_0 / quantize_q8_K, and what the
 * reference backend rounds activations through.
 */
import { fp16ToFp32, fp32ToBf16, bf16ToFp32, fp32ToFp16 } from './fp16.js';
import { GGMLType, QK_K, vecDotType } from './ggml-type.js';
import { nearestInt, signedAbsMax } from './quantize.js';

const fr = Math.fround;

/** round half to even, as _mm256_round_ps(_MM_ROUND_NEAREST) and f32x4.nearest */
function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** the f32 value ggml stores after rounding to f16 */
export function roundF16(x: number): number {
  return fp16ToFp32(fp32ToFp16(x));
}

/**
 * Q8_0 activation blocks as split arrays: qs[n] i8, d[n/32] (f16-rounded f32) and, if given,
 * sums[n/32] = Σ qs of each block (Q8_1's s in integers; the Q4_0 kernel's unsigned dots need it)
 */
export function quantizeQ8_0Act(x: Float32Array, xo: number, n: number, qs: Int8Array, d: Float32Array, sums?: Int32Array): void {
  for (let b = 0; b < n / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + b * 32 + j]!));
    d[b] = roundF16(fr(amax / 127));
    const id = amax !== 0 ? fr(127 / amax) : 0;
    let s = 0;
    for (let j = 0; j < 32; j++) s += qs[b * 32 + j] = Math.max(-128, Math.min(127, roundEven(fr(x[xo + b * 32 + j]! * id))));
    if (sums) sums[b] = s;
  }
}

/** Q8_K activation blocks as split arrays: qs[n] i8, d[n/256] f32, bsums[n/16] (quantize_row_q8_K_ref) */
export function quantizeQ8KAct(x: Float32Array, xo: number, n: number, qs: Int8Array, d: Float32Array, bsums: Int16Array): void {
  for (let b = 0; b < n / QK_K; b++) {
    const max = signedAbsMax(x, xo + b * QK_K, QK_K);
    if (!max) {
      d[b] = 0;
      qs.fill(0, b * QK_K, (b + 1) * QK_K);
      bsums.fill(0, b * 16, (b + 1) * 16);
      continue;
    }
    const iscale = fr(-127 / max);
    for (let j = 0; j < QK_K; j++) qs[b * QK_K + j] = Math.min(127, nearestInt(fr(iscale * x[xo + b * QK_K + j]!)));
    for (let j = 0; j < 16; j++) {
      let s = 0;
      for (let i = 0; i < 16; i++) s += qs[b * QK_K + j * 16 + i]!;
      bsums[b * 16 + j] = s;
    }
    d[b] = fr(1 / iscale);
  }
}

/**
 * x [T, n] → the values ggml-cpu's matmul dots with a weight of `type`: f32 as is, f16/bf16
 * rounded, quantized types through their Q8 activation blocks (dequantized back to f32).
 */
export function roundThroughVecDotType(type: GGMLType, x: Float32Array, T: number, n: number): Float32Array {
  const vt = vecDotType(type);
  if (vt === GGMLType.F32) return x;
  const out = new Float32Array(T * n);
  if (vt === GGMLType.F16 || vt === GGMLType.BF16) {
    const r = vt === GGMLType.F16 ? roundF16 : (v: number) => bf16ToFp32(fp32ToBf16(v));
    for (let i = 0; i < T * n; i++) out[i] = r(x[i]!);
    return out;
  }
  const qs = new Int8Array(n);
  if (vt === GGMLType.Q8_K) {
    const d = new Float32Array(n / QK_K), bs = new Int16Array(n / 16);
    for (let t = 0; t < T; t++) {
      quantizeQ8KAct(x, t * n, n, qs, d, bs);
      for (let i = 0; i < n; i++) out[t * n + i] = d[i >> 8]! * qs[i]!;
    }
    return out;
  }
  // Q8_0 and Q8_1 share the x86 arithmetic (Q8_1 adds a sum field that only the dot uses)
  const d = new Float32Array(n / 32);
  for (let t = 0; t < T; t++) {
    quantizeQ8_0Act(x, t * n, n, qs, d);
    for (let i = 0; i < n; i++) out[t * n + i] = d[i >> 5]! * qs[i]!;
  }
  return out;
}
