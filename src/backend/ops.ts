/**
 * The Ops interface: every numeric step of the forward pass, implemented twice with the same
 * signatures — `ref/` (plain TypeScript, f32, the oracle) and `wasm/` (SIMD kernels, worker crew).
 *
 * Buffers are opaque handles `B` (a Float32Array for ref, a pointer into WASM memory for wasm),
 * holding row-major f32 matrices [T, n]: T tokens of n values each. Weights are ggml tensors as
 * stored in the GGUF (rows × cols, ne[0] = cols) in whatever type the file has.
 */
import type { GGUFFile } from '../gguf/reader.js';
import type { GGUFTensorInfo } from '../gguf/types.js';
import type { GGMLType } from '../quant/ggml-type.js';

export interface Weight {
  name: string;
  type: GGMLType;
  /** ne[1]: output features */
  rows: number;
  /** ne[0]: input features (row length) */
  cols: number;
}

/** Attention geometry, shared by rope and attention. */
export interface AttnShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** rope.dimension_count: leading dims of each head that rotate (NEOX halves) */
  ropeDim: number;
  ropeFreqBase: number;
  /** linear rope scaling: every angle is multiplied by it (1 / rope.scaling.factor; 1 without scaling) */
  ropeFreqScale: number;
  /** LongRoPE: pair i's angle is divided by ropeFreqFactors[i] (rope_factors_long or _short, ropeDim/2 values) */
  ropeFreqFactors: Float32Array | undefined;
  /** rope.scaling.attn_factor: cos and sin are both multiplied by it, so q·k grows by its square */
  ropeAttnFactor: number;
  /** sliding-window attention: each token sees only the last `window` positions, itself included
   *  (llama.cpp's standard SWA mask); 0 = full causal attention; −1 = no mask: every token of a call
   *  sees all pos0 + T positions (an encoder's attention: vision/fast.ts) */
  window: number;
  /** elements per token in the fused qkv buffer: q (nHeads·headDim) | k (kvDim) | v (kvDim) */
  qkvDim: number;
}

export interface KvCache {
  readonly nLayers: number;
  readonly ctx: number;
  readonly kvDim: number;
}

export interface Ops<B> {
  readonly name: string;
  /** an f32 scratch buffer of n elements (zeroed) */
  alloc(n: number): B;
  /** copy n floats out of a buffer */
  read(b: B, offset: number, n: number): Float32Array;
  /** dst[dstOff..+n] = src[srcOff..+n] */
  copy(dst: B, dstOff: number, src: B, srcOff: number, n: number): void;
  /** b[offset..+data.length] = data */
  write(b: B, offset: number, data: Float32Array): void;
  /** the part of b from element `offset` on, as a buffer of its own (same memory) */
  view(b: B, offset: number): B;
  /** load a tensor's bytes from the file into this backend */
  loadWeight(file: GGUFFile, t: GGUFTensorInfo): Weight;
  kvCache(nLayers: number, ctx: number, kvDim: number): KvCache;

  /** out[t,:] = embd[tokens[t], :] */
  embed(out: B, embd: Weight, tokens: ArrayLike<number>): void;
  /** out[t,:] = x[t,:] / sqrt(mean(x[t,:]²) + eps) · w */
  rmsnorm(out: B, x: B, w: Weight, T: number, eps: number): void;
  /** out[t,r] = Σ_c W[r,c] · x[t,c]   (W: rows × cols, x: T × cols, out: T × rows) */
  matmul(out: B, W: Weight, x: B, T: number): void;
  /** rotate q and k of each token of qkv [T, qkvDim] in place, NEOX style, token t at position pos0+t
   *  (angles, LongRoPE factors and attn_factor as ggml_rope_ext: see ropeCacheRef) */
  rope(qkv: B, T: number, pos0: number, s: AttnShape): void;
  /** store k,v of T tokens at positions pos0… in layer l of the cache, then causal attention:
   *  out[t, h·headDim…] = Σ_{p ≤ pos0+t, p > pos0+t-window} softmax_p(q_h · k_p / √headDim) v_p */
  attention(out: B, qkv: B, cache: KvCache, l: number, T: number, pos0: number, s: AttnShape): void;
  /** out[t,i] = silu(gu[t,i]) · gu[t, hiddenDim+i]   (gate rows first, then up, as ffn_up stores them) */
  swiglu(out: B, gu: B, T: number, hiddenDim: number): void;
  /** x += y over n elements */
  add(x: B, y: B, n: number): void;
  /** x[t,:] += bias for each of T rows of n (ggml_add of a bias vector) */
  addBias(x: B, bias: B, T: number, n: number): void;
  /** release everything this backend holds */
  dispose(): void;
}
