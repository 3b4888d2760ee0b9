/**
 * Reference quantization: f32 → ggml block bytes, bit-exact with ggml's quantize_row_<type>_ref.
 *
 * Mirrors ggml/src/ggml-quants.c (quantize_row_q4_0_ref, …, make_qx_quants, make_qkx2_quants,
 * nearest_int) line for line, with every float operation rounded to f32 where C rounds it.
 * This is the slow, exact path (used by `phi3 synth` for small models, by tests, and as the twin of
 * the WASM activation quantizers); it is not the importance-matrix quantizer of llama-quantize.
 */
import { fp16ToFp32, fp32ToBf16, fp32ToFp16 } from './fp16.js';
import { GGMLType, GGML_TYPES, QK_K } from './ggml-type.js';
import { getScaleMinK4 } from './dequantize.js';

const fr = Math.fround;
const GROUP_MAX_EPS = fr(1e-15);
const MAGIC = 12582912; // 1.5 * 2^23

/** nearest_int: round half to even through the 1.5·2^23 trick (valid for |x| < 2^22). */
export function nearestInt(fval: number): number {
  return fr(fval + MAGIC) - MAGIC;
}

/** the value of largest magnitude in x[xo..xo+n) (the first of equals), as ggml's quantizers find it */
export function signedAbsMax(x: Float32Array, xo: number, n: number): number {
  let amax = 0, max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[xo + j]!;
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** C's roundf: half away from zero. */
function roundf(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** C's (int8_t)(float) as compiled on x86-64: truncate toward zero, keep the low 8 bits. */
function toInt8(x: number): number {
  return (Math.trunc(x) << 24) >> 24;
}

function putHalf(y: Uint8Array, o: number, h: number): void {
  y[o] = h & 0xff;
  y[o + 1] = h >> 8;
}

type Quant = (x: Float32Array, xo: number, y: Uint8Array, yo: number) => void;

const BLOCK: Partial<Record<GGMLType, Quant>> = {
  [GGMLType.F32](x, xo, y, yo) {
    new DataView(y.buffer, y.byteOffset + yo, 4).setFloat32(0, x[xo]!, true);
  },
  [GGMLType.F16](x, xo, y, yo) {
    putHalf(y, yo, fp32ToFp16(x[xo]!));
  },
  [GGMLType.BF16](x, xo, y, yo) {
    putHalf(y, yo, fp32ToBf16(x[xo]!));
  },
  [GGMLType.Q4_0](x, xo, y, yo) {
    const max = signedAbsMax(x, xo, 32);
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, yo, fp32ToFp16(d));
    for (let j = 0; j < 16; j++) {
      const x0 = fr(x[xo + j]! * id);
      const x1 = fr(x[xo + 16 + j]! * id);
      const xi0 = Math.min(15, toInt8(fr(x0 + 8.5)));
      const xi1 = Math.min(15, toInt8(fr(x1 + 8.5)));
      y[yo + 2 + j] = (xi0 & 0xff) | ((xi1 << 4) & 0xff);
    }
  },
  [GGMLType.Q4_1](x, xo, y, yo) {
    let min = Infinity, max = -Infinity;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, yo, fp32ToFp16(d));
    putHalf(y, yo + 2, fp32ToFp16(min));
    for (let j = 0; j < 16; j++) {
      const x0 = fr(fr(x[xo + j]! - min) * id);
      const x1 = fr(fr(x[xo + 16 + j]! - min) * id);
      const xi0 = Math.min(15, toInt8(fr(x0 + 0.5)));
      const xi1 = Math.min(15, toInt8(fr(x1 + 0.5)));
      y[yo + 4 + j] = (xi0 & 0xff) | ((xi1 << 4) & 0xff);
    }
  },
  [GGMLType.Q5_0](x, xo, y, yo) {
    const max = signedAbsMax(x, xo, 32);
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, yo, fp32ToFp16(d));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const x0 = fr(x[xo + j]! * id);
      const x1 = fr(x[xo + 16 + j]! * id);
      const xi0 = Math.min(31, toInt8(fr(x0 + 16.5))) & 0xff;
      const xi1 = Math.min(31, toInt8(fr(x1 + 16.5))) & 0xff;
      y[yo + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >>> 4) << j;
      qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
    }
    new DataView(y.buffer, y.byteOffset + yo + 2, 4).setUint32(0, qh >>> 0, true);
  },
  [GGMLType.Q5_1](x, xo, y, yo) {
    let min = Infinity, max = -Infinity;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, yo, fp32ToFp16(d));
    putHalf(y, yo + 2, fp32ToFp16(min));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const x0 = fr(fr(x[xo + j]! - min) * id);
      const x1 = fr(fr(x[xo + 16 + j]! - min) * id);
      const xi0 = Math.trunc(fr(x0 + 0.5)) & 0xff;
      const xi1 = Math.trunc(fr(x1 + 0.5)) & 0xff;
      y[yo + 8 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >>> 4) << j;
      qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
    }
    new DataView(y.buffer, y.byteOffset + yo + 4, 4).setUint32(0, qh >>> 0, true);
  },
  [GGMLType.Q8_0](x, xo, y, yo) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, yo, fp32ToFp16(d));
    for (let j = 0; j < 32; j++) y[yo + 2 + j] = roundf(fr(x[xo + j]! * id)) & 0xff;
  },
  [GGMLType.Q8_1](x, xo, y, yo) {
    // quantize_row_q8_1_ref: d, s = d·Σq (both f16), qs[32]
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, yo, fp32ToFp16(d));
    let sum = 0;
    for (let j = 0; j < 32; j++) {
      const q = roundf(fr(x[xo + j]! * id));
      y[yo + 4 + j] = q & 0xff;
      sum += q;
    }
    putHalf(y, yo + 2, fp32ToFp16(fr(sum * d)));
  },
  [GGMLType.Q4_K](x, xo, y, yo) {
    quantizeQ45K(x, xo, y, yo, 15);
  },
  [GGMLType.Q5_K](x, xo, y, yo) {
    quantizeQ45K(x, xo, y, yo, 31);
  },
  [GGMLType.Q6_K](x, xo, y, yo) {
    const L = new Uint8Array(QK_K);
    const Ls = new Int8Array(16);
    const scales = new Float32Array(16);
    let maxScale = 0, maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, xo + 16 * ib, Ls);
      for (let i = 0; i < 16; i++) L[16 * ib + i] = Ls[i]!;
      scales[ib] = scale;
      const abs = Math.abs(scale);
      if (abs > maxAbsScale) {
        maxAbsScale = abs;
        maxScale = scale;
      }
    }
    // layout: ql[128] @0, qh[64] @128, scales[16] @192, d @208
    if (maxAbsScale < GROUP_MAX_EPS) {
      y.fill(0, yo, yo + 210);
      return;
    }
    const iscale = fr(-128 / maxScale);
    putHalf(y, yo + 208, fp32ToFp16(fr(1 / iscale)));
    const d0 = fp16ToFp32(y[yo + 208]! | (y[yo + 209]! << 8));
    for (let ib = 0; ib < 16; ib++) y[yo + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 0xff;
    for (let j = 0; j < 16; j++) {
      const d = fr(d0 * ((y[yo + 192 + j]! << 24) >> 24));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        let l = nearestInt(fr(x[xo + 16 * j + ii]! / d));
        l = Math.max(-32, Math.min(31, l));
        L[16 * j + ii] = l + 32;
      }
    }
    let ql = yo, qh = yo + 128;
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        const q1 = L[j + l]! & 0xf;
        const q2 = L[j + l + 32]! & 0xf;
        const q3 = L[j + l + 64]! & 0xf;
        const q4 = L[j + l + 96]! & 0xf;
        y[ql + l] = q1 | (q3 << 4);
        y[ql + l + 32] = q2 | (q4 << 4);
        y[qh + l] = (L[j + l]! >> 4) | ((L[j + l + 32]! >> 4) << 2) | ((L[j + l + 64]! >> 4) << 4) | ((L[j + l + 96]! >> 4) << 6);
      }
      ql += 64;
      qh += 32;
    }
  },
  [GGMLType.Q8_K](x, xo, y, yo) {
    quantizeQ8KBlock(x, xo, y, yo);
  },
};

/** quantize_row_q8_K_ref for one block: d (f32) @0, qs[256] @4, bsums[16] (i16) @260. */
function quantizeQ8KBlock(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  const dv = new DataView(y.buffer, y.byteOffset + yo, 292);
  const max = signedAbsMax(x, xo, QK_K);
  if (!max) {
    y.fill(0, yo, yo + 292 - 32); // d and qs; bsums left as ggml leaves them (we zero them too)
    y.fill(0, yo + 260, yo + 292);
    return;
  }
  const iscale = fr(-127 / max);
  for (let j = 0; j < QK_K; j++) {
    const v = nearestInt(fr(iscale * x[xo + j]!));
    y[yo + 4 + j] = Math.min(127, v) & 0xff;
  }
  for (let j = 0; j < 16; j++) {
    let sum = 0;
    for (let ii = 0; ii < 16; ii++) sum += (y[yo + 4 + j * 16 + ii]! << 24) >> 24;
    dv.setInt16(260 + 2 * j, sum, true);
  }
  dv.setFloat32(0, fr(1 / iscale), true);
}

// scratch of quantizeQ45K and makeQkx2Quants (one call at a time: JavaScript runs one on each thread)
const K45 = { L: new Uint8Array(QK_K), Laux: new Uint8Array(32), weights: new Float32Array(32), mins: new Float32Array(8), scales: new Float32Array(8), out: { min: 0 }, xm: new Float32Array(32) };

/** quantize_row_q4_K_ref (nmax 15) and quantize_row_q5_K_ref (nmax 31) share this body. */
function quantizeQ45K(x: Float32Array, xo: number, y: Uint8Array, yo: number, nmax: 15 | 31): void {
  const { L, Laux, weights, mins, scales, out } = K45;
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xo + 32 * j + l]! * x[xo + 32 * j + l]!));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[xo + 32 * j + l]!);
    const Lj = L.subarray(32 * j, 32 * j + 32);
    scales[j] =
      nmax === 15
        ? makeQkx2Quants(32, 15, x, xo + 32 * j, weights, Lj, out, Laux, -1, 0.1, 20)
        : makeQkx2Quants(32, 31, x, xo + 32 * j, weights, Lj, out, Laux, -0.5, 0.1, 15);
    mins[j] = out.min;
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const sc = yo + 4; // scales[12]
  y.fill(0, sc, sc + 12);
  for (let j = 0; j < 8; j++) {
    let ls = nearestInt(fr(invScale * scales[j]!)) & 0xff;
    let lm = nearestInt(fr(invMin * mins[j]!)) & 0xff;
    ls = Math.min(63, ls);
    lm = Math.min(63, lm);
    if (j < 4) {
      y[sc + j] = ls;
      y[sc + j + 4] = lm;
    } else {
      y[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      y[sc + j - 4] = y[sc + j - 4]! | ((ls >> 4) << 6);
      y[sc + j] = y[sc + j]! | ((lm >> 4) << 6);
    }
  }
  putHalf(y, yo, fp32ToFp16(fr(maxScale / 63)));
  putHalf(y, yo + 2, fp32ToFp16(fr(maxMin / 63)));
  const dAll = fp16ToFp32(y[yo]! | (y[yo + 1]! << 8));
  const mAll = fp16ToFp32(y[yo + 2]! | (y[yo + 3]! << 8));
  for (let j = 0; j < 8; j++) {
    const [s, m] = getScaleMinK4(j, y, sc);
    const d = fr(dAll * s);
    if (!d) continue;
    const dm = fr(mAll * m);
    for (let ii = 0; ii < 32; ii++) {
      let l = nearestInt(fr(fr(x[xo + 32 * j + ii]! + dm) / d));
      l = Math.max(0, Math.min(nmax, l));
      L[32 * j + ii] = l;
    }
  }
  if (nmax === 15) {
    let q = yo + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) y[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
      q += 32;
    }
  } else {
    const qh = yo + 16;
    let ql = yo + 48;
    y.fill(0, qh, qh + 32);
    let m1 = 1, m2 = 2;
    for (let n = 0; n < QK_K; n += 64) {
      for (let j = 0; j < 32; j++) {
        let l1 = L[n + j]!;
        if (l1 > 15) {
          l1 -= 16;
          y[qh + j] = y[qh + j]! | m1;
        }
        let l2 = L[n + j + 32]!;
        if (l2 > 15) {
          l2 -= 16;
          y[qh + j] = y[qh + j]! | m2;
        }
        y[ql + j] = l1 | (l2 << 4);
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  }
}

/** make_qkx2_quants (use_mad = false): scale and min of an asymmetric n-level fit, searched over nstep grids. */
function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  out: { min: number },
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): number {
  rmin = fr(rmin);
  rdelta = fr(rdelta);
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = weights[0]!;
  let sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, 0, n);
    out.min = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(fr(iscale * fr(x[xo + i]! - min)));
    L[i] = Math.max(0, Math.min(nmax, l));
    let diff = fr(fr(fr(scale * L[i]!) + min) - x[xo + i]!);
    diff = fr(diff * diff);
    bestError = fr(bestError + fr(weights[i]! * diff));
  }
  // x − min, kept while min is (ggml updates min when a step improves, and later steps use the new one)
  const xm = K45.xm;
  let xmOf = NaN;
  for (let is = 0; is <= nstep; is++) {
    if (xmOf !== min) {
      for (let i = 0; i < n; i++) xm[i] = x[xo + i]! - min;
      xmOf = min;
    }
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(fr(iscale * xm[i]!));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      Laux[i] = l;
      const wl = fr(weights[i]! * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]!));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]!) + thisMin) - x[xo + i]!);
        diff = fr(diff * diff);
        curError = fr(curError + fr(weights[i]! * diff));
      }
      if (curError < bestError) {
        L.set(Laux.subarray(0, n));
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  out.min = -min;
  return scale;
}

/** make_qx_quants with rmse_type 1 and no importance weights (as quantize_row_q6_K_ref calls it). */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array): number {
  const max = signedAbsMax(x, xo, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[i] = l + nmax;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    sumlx = suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      let l = nearestInt(fr(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[xo + i]!));
        L[i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

export function canQuantize(type: GGMLType): boolean {
  return BLOCK[type] !== undefined;
}

/** quantize_row_<type>_ref: `n` floats from `src[srcOffset…]` into block bytes at `dst[dstOffset…]`. */
export function quantizeRow(
  type: GGMLType,
  src: Float32Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  n: number,
): void {
  const t = GGML_TYPES.get(type);
  const f = BLOCK[type];
  if (!t || !f) throw new Error(`quantize: unsupported ggml type ${t?.name ?? type}`);
  if (n % t.blockSize !== 0) throw new Error(`quantize ${t.name}: ${n} is not a multiple of ${t.blockSize}`);
  if (type === GGMLType.F32) {
    const dv = new DataView(dst.buffer, dst.byteOffset + dstOffset, n * 4);
    for (let i = 0; i < n; i++) dv.setFloat32(i * 4, src[srcOffset + i]!, true);
    return;
  }
  const nb = n / t.blockSize;
  for (let i = 0; i < nb; i++) f(src, srcOffset + i * t.blockSize, dst, dstOffset + i * t.typeSize);
}

/** Convenience: a whole f32 array → new byte array of `type`. */
export function quantize(type: GGMLType, src: Float32Array): Uint8Array {
  const t = GGML_TYPES.get(type);
  if (!t) throw new Error(`quantize: unknown ggml type ${type}`);
  const out = new Uint8Array((src.length / t.blockSize) * t.typeSize);
  quantizeRow(type, src, 0, out, 0, src.length);
  return out;
}

/** F32 values stored as `type`: F32 as is, F16/BF16 rounded (ggml's conversions), quantized types by quantize() */
export function storeAs(type: GGMLType, x: Float32Array): Uint8Array {
  if (type === GGMLType.F32) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (type === GGMLType.F16 || type === GGMLType.BF16) {
    const h = new Uint16Array(x.length);
    const f = type === GGMLType.F16 ? fp32ToFp16 : fp32ToBf16;
    for (let i = 0; i < x.length; i++) h[i] = f(x[i]!);
    return new Uint8Array(h.buffer);
  }
  return quantize(type, x);
}
