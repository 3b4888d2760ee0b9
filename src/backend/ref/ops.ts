/**
 * The reference backend: every op in plain TypeScript, weights dequantized row by row. It is the
 * oracle the WASM kernels are held to, and the backend a learner can step through. Not fast: a
 * matmul dequantizes each weight row once per call (shared by all T tokens of a batch) and dots it
 * in a JS loop.
 *
 * What it rounds is its Numerics (../numerics.ts): `exact` by default (F32 KV, no activation
 * rounding, f64 rope and dequantization: the model's equations, as HF transformers float64), or
 * `ggml` (llama.cpp's CPU defaults, op for op).
 */
import type { GGUFFile } from '../../gguf/reader.js';
import type { GGUFTensorInfo } from '../../gguf/types.js';
import { GGML_TYPES, type GGMLType } from '../../quant/ggml-type.js';
import { quantizeQ8_0Act, roundF16, roundThroughVecDotType } from '../../quant/activations.js';
import { dequantizeRow, dequantizeRowExact } from '../../quant/dequantize.js';
import { fp16ToFp32, fp32ToFp16 } from '../../quant/fp16.js';
import { NUMERICS, type Numerics } from '../numerics.js';
import type { AttnShape, KvCache, Ops, Weight } from '../ops.js';

const fr = Math.fround;

interface RefWeight extends Weight {
  bytes: Uint8Array;
  rowBytes: number;
  /** f32 copy for small 1-D tensors (norm weights) */
  f32?: Float32Array;
}

/** K and V of every layer, [layer][pos · kvDim + i]: f16 bits (ggml's default cache) or f32 values */
class RefKvCache implements KvCache {
  readonly k: (Uint16Array | Float32Array)[];
  readonly v: (Uint16Array | Float32Array)[];
  /** q8_0 rows' scratch */
  private readonly qs = new Int8Array(32);
  private readonly qd = new Float32Array(1);
  constructor(
    readonly nLayers: number,
    readonly ctx: number,
    readonly kvDim: number,
    readonly type: 'f16' | 'f32' | 'q8_0',
  ) {
    const make = () => (type === 'f16' ? new Uint16Array(ctx * kvDim) : new Float32Array(ctx * kvDim));
    this.k = Array.from({ length: nLayers }, make);
    this.v = Array.from({ length: nLayers }, make);
  }
  store(l: number, at: number, k: number, v: number): void {
    if (this.type === 'f16') {
      this.k[l]![at] = fp32ToFp16(k);
      this.v[l]![at] = fp32ToFp16(v);
    } else {
      this.k[l]![at] = k;
      this.v[l]![at] = v;
    }
  }
  /** one position's k and v rows (kvDim values each) at element `at`: q8_0 quantizes them in blocks of
   *  32 as ggml-cpu's quantize_row_q8_0 does and keeps the dequantized values */
  storeRow(l: number, at: number, k: Float32Array, v: Float32Array): void {
    if (this.type !== 'q8_0') {
      for (let i = 0; i < k.length; i++) this.store(l, at + i, k[i]!, v[i]!);
      return;
    }
    for (const [dst, x] of [[this.k[l]!, k], [this.v[l]!, v]] as const)
      for (let b = 0; b < x.length; b += 32) {
        quantizeQ8_0Act(x, b, 32, this.qs, this.qd);
        for (let j = 0; j < 32; j++) dst[at + b + j] = fr(this.qd[0]! * this.qs[j]!);
      }
  }
  /** the cached values as f32 numbers (f16 bits widened) */
  get(which: 'k' | 'v', l: number, at: number): number {
    const x = this[which][l]![at]!;
    return this.type === 'f16' ? fp16ToFp32(x) : x;
  }
}

// ── the ops, as free functions (the "…Ref" twins of the WASM kernels) ──────────────────────────

/**
 * out[t,:] = x[t,:] / √(mean(x[t,:]²) + eps) · w, the sum of squares in f64. `ggml`: as ggml_rms_norm
 * then ggml_mul, mean, 1/√(mean+eps) and x·scale each rounded to f32 before ·w; else one rounding.
 */
export function rmsnormRef(out: Float32Array, x: Float32Array, w: Float32Array, T: number, n: number, eps: number, ggml = false): void {
  for (let t = 0; t < T; t++) {
    const o = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i]! * x[o + i]!;
    if (ggml) {
      const scale = fr(1 / fr(Math.sqrt(fr(fr(ss / n) + eps))));
      for (let i = 0; i < n; i++) out[o + i] = fr(x[o + i]! * scale) * w[i]!;
    } else {
      const scale = 1 / Math.sqrt(ss / n + eps);
      for (let i = 0; i < n; i++) out[o + i] = x[o + i]! * scale * w[i]!;
    }
  }
}

/**
 * out[t,r] = Σ_c W[r,c]·x[t,c], summed in f64. With `ggml` numerics (the default: the WASM kernels'
 * twin), x is first rounded through ggml's vec_dot_type for W's type (Q8_0, Q8_1 or Q8_K blocks for
 * quantized weights, f16/bf16 for half weights) exactly as llama.cpp's x86 CPU matmul sees it
 * (src/quant/activations.ts), and W is dequantized bit-exactly as ggml's; `exact` numerics dot the
 * f32 activations with W's exact values.
 */
export function matmulRef(out: Float32Array, w: RefWeight, x: Float32Array, T: number, numerics: Numerics = NUMERICS.ggml): void {
  const { rows, cols } = w;
  if (numerics.vecDotActivations) x = roundThroughVecDotType(w.type, x, T, cols);
  const row = numerics.exactDequant ? new Float64Array(cols) : new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    if (row instanceof Float64Array) dequantizeRowExact(w.type, w.bytes, r * w.rowBytes, row, 0, cols);
    else dequantizeRow(w.type, w.bytes, r * w.rowBytes, row, 0, cols);
    for (let t = 0; t < T; t++) {
      const xo = t * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += row[c]! * x[xo + c]!;
      out[t * rows + r] = s;
    }
  }
}

/**
 * cos/sin tables [T, ropeDim/2] of NEOX rope as ggml_rope_cache_init computes them, in f32 step for step:
 * theta starts at the position and is multiplied by base^(-2/ropeDim) for each pair i; the angle is
 * freqScale · theta / freqFactors[i] (LongRoPE's factors; linear scaling's freq_scale); cos and sin
 * are multiplied by attnFactor (ggml's mscale). Both backends rotate by these tables.
 */
export function ropeCacheRef(cos: Float32Array, sin: Float32Array, T: number, pos0: number, s: AttnShape): void {
  const half = s.ropeDim / 2;
  const thetaScale = fr(Math.pow(s.ropeFreqBase, -2 / s.ropeDim));
  const ff = s.ropeFreqFactors, freqScale = fr(s.ropeFreqScale), mscale = fr(s.ropeAttnFactor);
  for (let t = 0; t < T; t++) {
    let theta = fr(pos0 + t);
    for (let i = 0; i < half; i++) {
      const angle = fr(freqScale * (ff ? fr(theta / ff[i]!) : theta));
      cos[t * half + i] = fr(Math.cos(angle)) * mscale;
      sin[t * half + i] = fr(Math.sin(angle)) * mscale;
      theta = fr(theta * thetaScale);
    }
  }
}

/** the same tables in f64, angle_i(p) = freqScale · p · base^(−2i/ropeDim) / freqFactors[i], for `exact` numerics */
export function ropeCacheExact(cos: Float64Array, sin: Float64Array, T: number, pos0: number, s: AttnShape): void {
  const half = s.ropeDim / 2;
  const ff = s.ropeFreqFactors;
  for (let t = 0; t < T; t++)
    for (let i = 0; i < half; i++) {
      const angle = (s.ropeFreqScale * (pos0 + t) * Math.pow(s.ropeFreqBase, (-2 * i) / s.ropeDim)) / (ff ? ff[i]! : 1);
      cos[t * half + i] = Math.cos(angle) * s.ropeAttnFactor;
      sin[t * half + i] = Math.sin(angle) * s.ropeAttnFactor;
    }
}

/** NEOX rope as ggml_rope_ext: pairs (i, i + ropeDim/2) of each q and k head rotate by the ropeCacheRef
 *  angles (`f64`: by the ropeCacheExact ones, the rotation in f64) */
export function ropeRef(qkv: Float32Array, T: number, pos0: number, s: AttnShape, f64 = false): void {
  const half = s.ropeDim / 2;
  const cos = f64 ? new Float64Array(T * half) : new Float32Array(T * half);
  const sin = f64 ? new Float64Array(T * half) : new Float32Array(T * half);
  if (cos instanceof Float64Array) ropeCacheExact(cos, sin as Float64Array, T, pos0, s);
  else ropeCacheRef(cos, sin as Float32Array, T, pos0, s);
  for (let t = 0; t < T; t++) {
    const base = t * s.qkvDim;
    for (let h = 0; h < s.nHeads + s.nKvHeads; h++) {
      const o = base + h * s.headDim; // q heads, then k heads (k follows q in the fused layout)
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i]!, sn = sin[t * half + i]!;
        const x0 = qkv[o + i]!, x1 = qkv[o + i + half]!;
        qkv[o + i] = f64 ? x0 * c - x1 * sn : fr(x0 * c) - fr(x1 * sn);
        qkv[o + i + half] = f64 ? x0 * sn + x1 * c : fr(x0 * sn) + fr(x1 * c);
      }
    }
  }
}

/** softmax numerators below this are 0: far below f32 resolution beside the max's 1 */
const ATT_FLOOR = 2 ** -100;

/**
 * Store k, v of T tokens at pos0… in layer l of the cache, then causal (optionally sliding-window)
 * attention, dots and sums in f64. `ggmlF16` rounds as ggml's mul_mat does with an f16 cache: q·(1/√headDim)
 * to f16 before q·k, and the normalised softmax weights to f16 before ·V. Without it (the WASM kernel's
 * twin and `exact`), q and the weights stay f32.
 */
export function attentionRef(out: Float32Array, qkv: Float32Array, c: RefKvCache, l: number, T: number, pos0: number, s: AttnShape, ggmlF16 = false): void {
  const { nHeads, nKvHeads, headDim, qkvDim } = s;
  const kvDim = nKvHeads * headDim;
  const qDim = nHeads * headDim;
  for (let t = 0; t < T; t++) {
    const p = (pos0 + t) * kvDim;
    const kv = t * qkvDim + qDim;
    c.storeRow(l, p, qkv.subarray(kv, kv + kvDim), qkv.subarray(kv + kvDim, kv + 2 * kvDim));
  }
  const scale = 1 / Math.sqrt(headDim);
  const att = new Float64Array(pos0 + T);
  const q = new Float64Array(headDim);
  const group = nHeads / nKvHeads;
  for (let t = 0; t < T; t++) {
    const n = s.window < 0 ? pos0 + T : pos0 + t + 1; // causal: positions 0..pos0+t (window −1: no mask, all pos0+T)
    const p0 = s.window > 0 && n > s.window ? n - s.window : 0; // sliding window: only the last `window` of them
    for (let h = 0; h < nHeads; h++) {
      const qo = t * qkvDim + h * headDim;
      for (let i = 0; i < headDim; i++) q[i] = ggmlF16 ? roundF16(fr(qkv[qo + i]! * fr(scale))) : qkv[qo + i]!;
      const kvh = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let p = p0; p < n; p++) {
        let d = 0;
        for (let i = 0; i < headDim; i++) d += q[i]! * c.get('k', l, p * kvDim + kvh + i);
        att[p] = ggmlF16 ? fr(d) : fr(d) * scale;
        if (att[p]! > max) max = att[p]!;
      }
      let sum = 0;
      for (let p = p0; p < n; p++) {
        const e = ggmlF16 ? fr(Math.exp(fr(att[p]! - max))) : Math.exp(att[p]! - max);
        att[p] = e < ATT_FLOOR ? 0 : e; // a weight under 2^-100 counts as 0 (as the WASM kernel: no subnormal floats)
        sum += att[p]!;
      }
      if (ggmlF16) {
        // ggml_soft_max: weights · (f32) 1/sum, then ggml_mul_mat(v, kq) converts them to f16
        const inv = fr(1 / sum);
        for (let p = p0; p < n; p++) att[p] = roundF16(fr(att[p]! * inv));
        sum = 1;
      }
      const o = t * qDim + h * headDim;
      for (let i = 0; i < headDim; i++) {
        let acc = 0;
        for (let p = p0; p < n; p++) acc += att[p]! * c.get('v', l, p * kvDim + kvh + i);
        out[o + i] = acc / sum;
      }
    }
  }
}

export function swigluRef(out: Float32Array, gu: Float32Array, T: number, hiddenDim: number): void {
  for (let t = 0; t < T; t++) {
    const g = t * 2 * hiddenDim;
    for (let i = 0; i < hiddenDim; i++) {
      const x = gu[g + i]!;
      out[t * hiddenDim + i] = (x / (1 + Math.exp(-x))) * gu[g + hiddenDim + i]!;
    }
  }
}

export class RefOps implements Ops<Float32Array> {
  readonly name = 'ref';

  constructor(readonly numerics: Numerics = NUMERICS.exact) {}

  alloc(n: number): Float32Array {
    return new Float32Array(n);
  }
  read(b: Float32Array, offset: number, n: number): Float32Array {
    return b.slice(offset, offset + n);
  }
  copy(dst: Float32Array, dstOff: number, src: Float32Array, srcOff: number, n: number): void {
    dst.set(src.subarray(srcOff, srcOff + n), dstOff);
  }
  write(b: Float32Array, offset: number, data: Float32Array): void {
    b.set(data, offset);
  }
  view(b: Float32Array, offset: number): Float32Array {
    return b.subarray(offset);
  }
  loadWeight(file: GGUFFile, t: GGUFTensorInfo): RefWeight {
    const info = GGML_TYPES.get(t.type)!;
    const cols = t.shape[0]!;
    const rows = t.nElements / cols;
    const bytes = file.readTensor(t);
    const w: RefWeight = { name: t.name, type: t.type as GGMLType, rows, cols, bytes, rowBytes: (cols / info.blockSize) * info.typeSize };
    if (t.shape.length === 1) {
      w.f32 = new Float32Array(cols);
      dequantizeRow(w.type, bytes, 0, w.f32, 0, cols);
    }
    return w;
  }
  kvCache(nLayers: number, ctx: number, kvDim: number): KvCache {
    return new RefKvCache(nLayers, ctx, kvDim, this.numerics.kv);
  }
  embed(out: Float32Array, embd: Weight, tokens: ArrayLike<number>): void {
    const w = embd as RefWeight;
    const exact = this.numerics.exactDequant ? new Float64Array(w.cols) : undefined;
    for (let t = 0; t < tokens.length; t++) {
      if (!exact) dequantizeRow(w.type, w.bytes, tokens[t]! * w.rowBytes, out, t * w.cols, w.cols);
      else {
        dequantizeRowExact(w.type, w.bytes, tokens[t]! * w.rowBytes, exact, 0, w.cols);
        out.set(exact, t * w.cols);
      }
    }
  }
  rmsnorm(out: Float32Array, x: Float32Array, w: Weight, T: number, eps: number): void {
    rmsnormRef(out, x, (w as RefWeight).f32!, T, w.cols, eps, this.numerics.ggmlRmsNorm);
  }
  matmul(out: Float32Array, W: Weight, x: Float32Array, T: number): void {
    matmulRef(out, W as RefWeight, x, T, this.numerics);
  }
  rope(qkv: Float32Array, T: number, pos0: number, s: AttnShape): void {
    ropeRef(qkv, T, pos0, s, this.numerics.ropeF64);
  }
  attention(out: Float32Array, qkv: Float32Array, cache: KvCache, l: number, T: number, pos0: number, s: AttnShape): void {
    attentionRef(out, qkv, cache as RefKvCache, l, T, pos0, s, this.numerics.f16Attention);
  }
  swiglu(out: Float32Array, gu: Float32Array, T: number, hiddenDim: number): void {
    swigluRef(out, gu, T, hiddenDim);
  }
  add(x: Float32Array, y: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) x[i] = x[i]! + y[i]!;
  }
  addBias(x: Float32Array, bias: Float32Array, T: number, n: number): void {
    for (let t = 0; t < T; t++) for (let i = 0; i < n; i++) x[t * n + i] = x[t * n + i]! + bias[i]!;
  }
  dispose(): void {}
}
