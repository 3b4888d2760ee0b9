/**
 * Reference dequantization: ggml block bytes → f32, bit-exact with ggml's dequantize_row_<type>.
 *
 * Mirrors ggml/src/ggml-quants.c (dequantize_row_q4_0 … dequantize_row_q8_K) line for line.
 * Every float operation is rounded to f32 (Math.fround, or the store into a Float32Array) exactly
 * where C rounds it, so results match ggml bit for bit (checked against libggml in test/ and golden/).
 * Not the fast path: the WASM kernels never dequantize whole rows.
 */
import { fp16ToFp32 as h2f, bf16ToFp32 } from './fp16.js';
import { GGMLType, GGML_TYPES, QK_K } from './ggml-type.js';

function half(b: Uint8Array, o: number): number {
  return h2f(b[o]! | (b[o + 1]! << 8));
}

/** get_scale_min_k4: unpack the 6-bit scale and min of sub-block j from a K-quant scales[12]. */
export function getScaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j]! & 63, q[o + j + 4]! & 63];
  return [(q[o + j + 4]! & 0xf) | ((q[o + j - 4]! >> 6) << 4), (q[o + j + 4]! >> 4) | ((q[o + j]! >> 6) << 4)];
}

type Dequant = (x: Uint8Array, xo: number, y: Float32Array | Float64Array, yo: number) => void;

/**
 * One block each; xo/yo are the byte offset of the block and the element offset of its output.
 * `fr` is where C rounds to f32: Math.fround (into a Float32Array) for ggml's bits, or the identity
 * (into a Float64Array) for the value the block stands for, d·sc·q − dmin·m without rounding.
 */
function blockDecoders(fr: (x: number) => number): Partial<Record<GGMLType, Dequant>> {
  return {
    [GGMLType.F32](x, xo, y, yo) {
      y[yo] = new DataView(x.buffer, x.byteOffset + xo, 4).getFloat32(0, true);
    },
    [GGMLType.F16](x, xo, y, yo) {
      y[yo] = half(x, xo);
    },
    [GGMLType.BF16](x, xo, y, yo) {
      y[yo] = bf16ToFp32(x[xo]! | (x[xo + 1]! << 8));
    },
    [GGMLType.Q4_0](x, xo, y, yo) {
      const d = half(x, xo);
      for (let j = 0; j < 16; j++) {
        const q = x[xo + 2 + j]!;
        y[yo + j] = ((q & 0x0f) - 8) * d;
        y[yo + j + 16] = ((q >> 4) - 8) * d;
      }
    },
    [GGMLType.Q4_1](x, xo, y, yo) {
      const d = half(x, xo);
      const m = half(x, xo + 2);
      for (let j = 0; j < 16; j++) {
        const q = x[xo + 4 + j]!;
        y[yo + j] = fr((q & 0x0f) * d) + m;
        y[yo + j + 16] = fr((q >> 4) * d) + m;
      }
    },
    [GGMLType.Q5_0](x, xo, y, yo) {
      const d = half(x, xo);
      const qh = (x[xo + 2]! | (x[xo + 3]! << 8) | (x[xo + 4]! << 16) | (x[xo + 5]! << 24)) >>> 0;
      for (let j = 0; j < 16; j++) {
        const xh0 = ((qh >>> j) << 4) & 0x10;
        const xh1 = (qh >>> (j + 12)) & 0x10;
        const q = x[xo + 6 + j]!;
        y[yo + j] = (((q & 0x0f) | xh0) - 16) * d;
        y[yo + j + 16] = (((q >> 4) | xh1) - 16) * d;
      }
    },
    [GGMLType.Q5_1](x, xo, y, yo) {
      const d = half(x, xo);
      const m = half(x, xo + 2);
      const qh = (x[xo + 4]! | (x[xo + 5]! << 8) | (x[xo + 6]! << 16) | (x[xo + 7]! << 24)) >>> 0;
      for (let j = 0; j < 16; j++) {
        const xh0 = ((qh >>> j) << 4) & 0x10;
        const xh1 = (qh >>> (j + 12)) & 0x10;
        const q = x[xo + 8 + j]!;
        y[yo + j] = fr(((q & 0x0f) | xh0) * d) + m;
        y[yo + j + 16] = fr(((q >> 4) | xh1) * d) + m;
      }
    },
    [GGMLType.Q8_0](x, xo, y, yo) {
      const d = half(x, xo);
      for (let j = 0; j < 32; j++) y[yo + j] = ((x[xo + 2 + j]! << 24) >> 24) * d;
    },
    [GGMLType.Q8_1](x, xo, y, yo) {
      const d = half(x, xo);
      for (let j = 0; j < 32; j++) y[yo + j] = ((x[xo + 4 + j]! << 24) >> 24) * d;
    },
    [GGMLType.Q2_K](x, xo, y, yo) {
      // scales[16] @0, qs[64] @16, d @80, dmin @82
      const d = half(x, xo + 80);
      const min = half(x, xo + 82);
      let q = xo + 16;
      let is = 0;
      for (let n = 0; n < QK_K; n += 128) {
        let shift = 0;
        for (let j = 0; j < 4; j++) {
          let sc = x[xo + is++]!;
          let dl = fr(d * (sc & 0xf));
          let ml = fr(min * (sc >> 4));
          for (let l = 0; l < 16; l++) y[yo++] = fr(dl * ((x[q + l]! >> shift) & 3)) - ml;
          sc = x[xo + is++]!;
          dl = fr(d * (sc & 0xf));
          ml = fr(min * (sc >> 4));
          for (let l = 0; l < 16; l++) y[yo++] = fr(dl * ((x[q + l + 16]! >> shift) & 3)) - ml;
          shift += 2;
        }
        q += 32;
      }
    },
    [GGMLType.Q3_K](x, xo, y, yo) {
      // hmask[32] @0, qs[64] @32, scales[12] @96, d @108
      const dAll = half(x, xo + 108);
      const scales = unpackQ3KScales(x, xo + 96);
      let q = xo + 32;
      const hm = xo;
      let m = 1;
      let is = 0;
      for (let n = 0; n < QK_K; n += 128) {
        let shift = 0;
        for (let j = 0; j < 4; j++) {
          let dl = fr(dAll * (scales[is++]! - 32));
          for (let l = 0; l < 16; l++) y[yo++] = dl * (((x[q + l]! >> shift) & 3) - (x[hm + l]! & m ? 0 : 4));
          dl = fr(dAll * (scales[is++]! - 32));
          for (let l = 0; l < 16; l++) y[yo++] = dl * (((x[q + l + 16]! >> shift) & 3) - (x[hm + l + 16]! & m ? 0 : 4));
          shift += 2;
          m <<= 1;
        }
        q += 32;
      }
    },
    [GGMLType.Q4_K](x, xo, y, yo) {
      // d @0, dmin @2, scales[12] @4, qs[128] @16
      const d = half(x, xo);
      const min = half(x, xo + 2);
      let q = xo + 16;
      let is = 0;
      for (let j = 0; j < QK_K; j += 64) {
        const [sc1, m1_] = getScaleMinK4(is, x, xo + 4);
        const [sc2, m2_] = getScaleMinK4(is + 1, x, xo + 4);
        const d1 = fr(d * sc1), m1 = fr(min * m1_);
        const d2 = fr(d * sc2), m2 = fr(min * m2_);
        for (let l = 0; l < 32; l++) y[yo++] = fr(d1 * (x[q + l]! & 0xf)) - m1;
        for (let l = 0; l < 32; l++) y[yo++] = fr(d2 * (x[q + l]! >> 4)) - m2;
        q += 32;
        is += 2;
      }
    },
    [GGMLType.Q5_K](x, xo, y, yo) {
      // d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
      const d = half(x, xo);
      const min = half(x, xo + 2);
      const qh = xo + 16;
      let ql = xo + 48;
      let is = 0;
      let u1 = 1, u2 = 2;
      for (let j = 0; j < QK_K; j += 64) {
        const [sc1, m1_] = getScaleMinK4(is, x, xo + 4);
        const [sc2, m2_] = getScaleMinK4(is + 1, x, xo + 4);
        const d1 = fr(d * sc1), m1 = fr(min * m1_);
        const d2 = fr(d * sc2), m2 = fr(min * m2_);
        for (let l = 0; l < 32; l++) y[yo++] = fr(d1 * ((x[ql + l]! & 0xf) + (x[qh + l]! & u1 ? 16 : 0))) - m1;
        for (let l = 0; l < 32; l++) y[yo++] = fr(d2 * ((x[ql + l]! >> 4) + (x[qh + l]! & u2 ? 16 : 0))) - m2;
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
      }
    },
    [GGMLType.Q6_K](x, xo, y, yo) {
      // ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208
      const d = half(x, xo + 208);
      let ql = xo, qh = xo + 128, sc = xo + 192;
      for (let n = 0; n < QK_K; n += 128) {
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const q1 = ((x[ql + l]! & 0xf) | (((x[qh + l]! >> 0) & 3) << 4)) - 32;
          const q2 = ((x[ql + l + 32]! & 0xf) | (((x[qh + l]! >> 2) & 3) << 4)) - 32;
          const q3 = ((x[ql + l]! >> 4) | (((x[qh + l]! >> 4) & 3) << 4)) - 32;
          const q4 = ((x[ql + l + 32]! >> 4) | (((x[qh + l]! >> 6) & 3) << 4)) - 32;
          y[yo + l] = fr(d * ((x[sc + is]! << 24) >> 24)) * q1;
          y[yo + l + 32] = fr(d * ((x[sc + is + 2]! << 24) >> 24)) * q2;
          y[yo + l + 64] = fr(d * ((x[sc + is + 4]! << 24) >> 24)) * q3;
          y[yo + l + 96] = fr(d * ((x[sc + is + 6]! << 24) >> 24)) * q4;
        }
        yo += 128;
        ql += 64;
        qh += 32;
        sc += 8;
      }
    },
    [GGMLType.Q8_K](x, xo, y, yo) {
      const d = new DataView(x.buffer, x.byteOffset + xo, 4).getFloat32(0, true);
      for (let j = 0; j < QK_K; j++) y[yo + j] = d * ((x[xo + 4 + j]! << 24) >> 24);
    },
  };
}
const BLOCK = blockDecoders(Math.fround);
const BLOCK_EXACT = blockDecoders((x) => x);

/** Q3_K's 12 packed bytes → 16 signed 6-bit scales (+32 bias kept, as ggml's aux[] trick). */
export function unpackQ3KScales(x: Uint8Array, o: number): Int8Array {
  const rd = (i: number) => (x[o + i]! | (x[o + i + 1]! << 8) | (x[o + i + 2]! << 16) | (x[o + i + 3]! << 24)) >>> 0;
  const kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  const a0 = rd(0), a1 = rd(4), tmp = rd(8);
  const aux = new Uint32Array(4);
  aux[2] = ((a0 >>> 4) & kmask2) | (((tmp >>> 4) & kmask1) << 4);
  aux[3] = ((a1 >>> 4) & kmask2) | (((tmp >>> 6) & kmask1) << 4);
  aux[0] = (a0 & kmask2) | (((tmp >>> 0) & kmask1) << 4);
  aux[1] = (a1 & kmask2) | (((tmp >>> 2) & kmask1) << 4);
  return new Int8Array(aux.buffer);
}

export function canDequantize(type: GGMLType): boolean {
  return BLOCK[type] !== undefined;
}

/**
 * dequantize_row_<type>: `n` elements starting at byte `srcOffset` of `src` into `dst[dstOffset…]`.
 * `n` must be a whole number of blocks.
 */
export function dequantizeRow(
  type: GGMLType,
  src: Uint8Array,
  srcOffset: number,
  dst: Float32Array,
  dstOffset: number,
  n: number,
): void {
  const t = GGML_TYPES.get(type);
  const f = BLOCK[type];
  if (!t || !f) throw new Error(`dequantize: unsupported ggml type ${t?.name ?? type}`);
  if (n % t.blockSize !== 0) throw new Error(`dequantize ${t.name}: ${n} is not a multiple of ${t.blockSize}`);
  const nb = n / t.blockSize;
  if (type === GGMLType.F32) {
    // fast path: aligned view when possible
    const dv = new DataView(src.buffer, src.byteOffset + srcOffset, n * 4);
    for (let i = 0; i < n; i++) dst[dstOffset + i] = dv.getFloat32(i * 4, true);
    return;
  }
  if (type === GGMLType.F16) {
    for (let i = 0; i < n; i++) dst[dstOffset + i] = half(src, srcOffset + 2 * i);
    return;
  }
  for (let i = 0; i < nb; i++) f(src, srcOffset + i * t.typeSize, dst, dstOffset + i * t.blockSize);
}

/** Convenience: a whole tensor (rows × cols) of `type` → new Float32Array. */
export function dequantize(type: GGMLType, src: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  dequantizeRow(type, src, 0, out, 0, n);
  return out;
}

/**
 * The exact value of each weight (no f32 rounding inside the block formula: K-quants' d·sc and
 * dmin·m products kept in f64), for the `exact` numerics. Same layout and checks as dequantizeRow.
 */
export function dequantizeRowExact(type: GGMLType, src: Uint8Array, srcOffset: number, dst: Float64Array, dstOffset: number, n: number): void {
  const t = GGML_TYPES.get(type);
  const f = BLOCK_EXACT[type];
  if (!t || !f) throw new Error(`dequantize: unsupported ggml type ${t?.name ?? type}`);
  if (n % t.blockSize !== 0) throw new Error(`dequantize ${t.name}: ${n} is not a multiple of ${t.blockSize}`);
  for (let i = 0; i < n / t.blockSize; i++) f(src, srcOffset + i * t.typeSize, dst, dstOffset + i * t.blockSize);
}
