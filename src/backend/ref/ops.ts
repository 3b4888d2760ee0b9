/**
 * The reference backend: every op in plain TypeScript, f32 values, weights dequantized row by row
 * with ggml's own (bit-exact) dequantization. It is the oracle the WASM kernels are held to, and
 * the backend a learner can step through. Not fast: a matmul dequantizes each weight row once per
 * call (shared by all T tokens of a batch) and dots it in a JS loop.
 *
 * The KV cache stores f16, as llama.cpp's default cache does, so both round K and V the same way.
 */
import type { GGUFFile } from '../../gguf/reader.js';
import type { GGUFTensorInfo } from '../../gguf/types.js';
import { GGML_TYPES, type GGMLType } from '../../quant/ggml-type.js';
import { roundThroughVecDotType } from '../../quant/activations.js';
import { dequantizeRow } from '../../quant/dequantize.js';
import { fp16ToFp32, fp32ToFp16 } from '../../quant/fp16.js';
import type { AttnShape, KvCache, Ops, Weight } from '../ops.js';

interface RefWeight extends Weight {
  bytes: Uint8Array;
  rowBytes: number;
  /** f32 copy for small 1-D tensors (norm weights) */
  f32?: Float32Array;
}

class RefKvCache implements KvCache {
  /** [layer][pos · kvDim + i] as f16 bits */
  readonly k: Uint16Array[];
  readonly v: Uint16Array[];
  constructor(
    readonly nLayers: number,
    readonly ctx: number,
    readonly kvDim: number,
  ) {
    this.k = Array.from({ length: nLayers }, () => new Uint16Array(ctx * kvDim));
    this.v = Array.from({ length: nLayers }, () => new Uint16Array(ctx * kvDim));
  }
}

// ── the ops, as free functions (the "…Ref" twins of the WASM kernels) ──────────────────────────

export function rmsnormRef(out: Float32Array, x: Float32Array, w: Float32Array, T: number, n: number, eps: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i]! * x[o + i]!;
    const scale = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[o + i] = x[o + i]! * scale * w[i]!;
  }
}

/**
 * out[t,r] = Σ_c W[r,c]·x[t,c], with x first rounded through ggml's vec_dot_type for W's type
 * (Q8_0, Q8_1 or Q8_K blocks for quantized weights, f16/bf16 for half weights), exactly as
 * llama.cpp's x86 CPU matmul sees it (src/quant/activations.ts). The dot itself is f32 values summed in f64.
 */
export function matmulRef(out: Float32Array, w: RefWeight, x: Float32Array, T: number): void {
  const { rows, cols } = w;
  x = roundThroughVecDotType(w.type, x, T, cols);
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    dequantizeRow(w.type, w.bytes, r * w.rowBytes, row, 0, cols);
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
  const thetaScale = Math.fround(Math.pow(s.ropeFreqBase, -2 / s.ropeDim));
  const ff = s.ropeFreqFactors, freqScale = Math.fround(s.ropeFreqScale), mscale = Math.fround(s.ropeAttnFactor);
  for (let t = 0; t < T; t++) {
    let theta = Math.fround(pos0 + t);
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(freqScale * (ff ? Math.fround(theta / ff[i]!) : theta));
      cos[t * half + i] = Math.fround(Math.cos(angle)) * mscale;
      sin[t * half + i] = Math.fround(Math.sin(angle)) * mscale;
      theta = Math.fround(theta * thetaScale);
    }
  }
}

/** NEOX rope as ggml_rope_ext: pairs (i, i + ropeDim/2) of each q and k head rotate by the ropeCacheRef angles */
export function ropeRef(qkv: Float32Array, T: number, pos0: number, s: AttnShape): void {
  const half = s.ropeDim / 2;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  ropeCacheRef(cos, sin, T, pos0, s);
  for (let t = 0; t < T; t++) {
    const base = t * s.qkvDim;
    for (let h = 0; h < s.nHeads + s.nKvHeads; h++) {
      const o = base + h * s.headDim; // q heads, then k heads (k follows q in the fused layout)
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i]!, sn = sin[t * half + i]!;
        const x0 = qkv[o + i]!, x1 = qkv[o + i + half]!;
        qkv[o + i] = x0 * c - x1 * sn;
        qkv[o + i + half] = x0 * sn + x1 * c;
      }
    }
  }
}

/** softmax numerators below this are 0: far below f32 resolution beside the max's 1 */
const ATT_FLOOR = 2 ** -100;

export function attentionRef(out: Float32Array, qkv: Float32Array, c: RefKvCache, l: number, T: number, pos0: number, s: AttnShape): void {
  const { nHeads, nKvHeads, headDim, qkvDim } = s;
  const kvDim = nKvHeads * headDim;
  const qDim = nHeads * headDim;
  const K = c.k[l]!, V = c.v[l]!;
  // store k, v as f16
  for (let t = 0; t < T; t++) {
    const p = (pos0 + t) * kvDim;
    for (let i = 0; i < kvDim; i++) {
      K[p + i] = fp32ToFp16(qkv[t * qkvDim + qDim + i]!);
      V[p + i] = fp32ToFp16(qkv[t * qkvDim + qDim + kvDim + i]!);
    }
  }
  const scale = 1 / Math.sqrt(headDim);
  const att = new Float32Array(pos0 + T);
  const group = nHeads / nKvHeads;
  for (let t = 0; t < T; t++) {
    const n = pos0 + t + 1; // causal: positions 0..pos0+t
    const p0 = s.window > 0 && n > s.window ? n - s.window : 0; // sliding window: only the last `window` of them
    for (let h = 0; h < nHeads; h++) {
      const q = t * qkvDim + h * headDim;
      const kvh = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let p = p0; p < n; p++) {
        let d = 0;
        for (let i = 0; i < headDim; i++) d += qkv[q + i]! * fp16ToFp32(K[p * kvDim + kvh + i]!);
        att[p] = d * scale;
        if (att[p]! > max) max = att[p]!;
      }
      let sum = 0;
      for (let p = p0; p < n; p++) {
        const e = Math.exp(att[p]! - max);
        att[p] = e < ATT_FLOOR ? 0 : e; // a weight under 2^-100 counts as 0 (as the WASM kernel: no subnormal floats)
        sum += att[p]!;
      }
      const o = t * qDim + h * headDim;
      for (let i = 0; i < headDim; i++) {
        let acc = 0;
        for (let p = p0; p < n; p++) acc += att[p]! * fp16ToFp32(V[p * kvDim + kvh + i]!);
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
    return new RefKvCache(nLayers, ctx, kvDim);
  }
  embed(out: Float32Array, embd: Weight, tokens: ArrayLike<number>): void {
    const w = embd as RefWeight;
    for (let t = 0; t < tokens.length; t++) dequantizeRow(w.type, w.bytes, tokens[t]! * w.rowBytes, out, t * w.cols, w.cols);
  }
  rmsnorm(out: Float32Array, x: Float32Array, w: Weight, T: number, eps: number): void {
    rmsnormRef(out, x, (w as RefWeight).f32!, T, w.cols, eps);
  }
  matmul(out: Float32Array, W: Weight, x: Float32Array, T: number): void {
    matmulRef(out, W as RefWeight, x, T);
  }
  rope(qkv: Float32Array, T: number, pos0: number, s: AttnShape): void {
    ropeRef(qkv, T, pos0, s);
  }
  attention(out: Float32Array, qkv: Float32Array, cache: KvCache, l: number, T: number, pos0: number, s: AttnShape): void {
    attentionRef(out, qkv, cache as RefKvCache, l, T, pos0, s);
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
