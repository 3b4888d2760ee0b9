/**
 * Half-precision conversions, bit-exact with ggml.
 *
 * Mirrors ggml/src/ggml-impl.h: ggml_compute_fp16_to_fp32 / ggml_compute_fp32_to_fp16
 * (round-to-nearest-even, NaN → 0x7E00) and ggml_compute_fp32_to_bf16 (RNE, NaN quieted).
 * Not a general IEEE library: only what GGUF tensors and ggml's quantizers need.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function fp32ToBits(f: number): number {
  f32[0] = f;
  return u32[0]!;
}

export function fp32FromBits(b: number): number {
  u32[0] = b >>> 0;
  return f32[0]!;
}

/** fp16 → fp32 lookup for all 65536 half values (exact). */
export const FP16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    let bits: number;
    if (exp === 0) {
      if (mant === 0) {
        bits = sign;
      } else {
        // subnormal: value = mant * 2^-24
        t[h] = (sign ? -1 : 1) * mant * 2 ** -24;
        continue;
      }
    } else if (exp === 0x1f) {
      bits = sign | 0x7f800000 | (mant << 13);
    } else {
      bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    t[h] = fp32FromBits(bits >>> 0);
  }
  return t;
})();

export function fp16ToFp32(h: number): number {
  return FP16_TABLE[h & 0xffff]!;
}

/** ggml_compute_fp32_to_fp16, line for line (Maratyszcza's FP16 algorithm). */
export function fp32ToFp16(f: number): number {
  const scaleToInf = 5.192296858534828e33; // 0x1.0p+112f
  const scaleToZero = 7.703719777548943e-34; // 0x1.0p-110f
  let base = Math.fround(Math.fround(Math.abs(Math.fround(f)) * scaleToInf) * scaleToZero);
  const w = fp32ToBits(f);
  const shl1W = (w + w) >>> 0;
  const sign = (w & 0x80000000) >>> 0;
  let bias = (shl1W & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = Math.fround(fp32FromBits(((bias >>> 1) + 0x07800000) >>> 0) + base);
  const bits = fp32ToBits(base);
  const expBits = (bits >>> 13) & 0x00007c00;
  const mantissaBits = bits & 0x00000fff;
  const nonsign = expBits + mantissaBits;
  return ((sign >>> 16) | (shl1W > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

export function bf16ToFp32(h: number): number {
  return fp32FromBits((h & 0xffff) << 16);
}

/** ggml_compute_fp32_to_bf16: round to nearest even, NaN forced quiet. */
export function fp32ToBf16(f: number): number {
  const i = fp32ToBits(f);
  if ((i & 0x7fffffff) >>> 0 > 0x7f800000) return ((i >>> 16) | 64) & 0xffff;
  return (((i + (0x7fff + ((i >>> 16) & 1))) >>> 0) >>> 16) & 0xffff;
}
