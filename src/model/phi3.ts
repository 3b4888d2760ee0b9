/**
 * Phi-3, the whole model: weights keyed by GGUF tensor names, a KV cache, and forward().
 *
 * Mirrors llama.cpp src/models/phi3.cpp (llm_build_phi3) and candle's quantized_phi3.rs.
 * forward() is the story of one batch of tokens through the transformer; each line names its
 * PyTorch equivalent. The numbers are done by an Ops backend (ref: plain TS; wasm: SIMD kernels),
 * so this file reads the same whichever runs it. Fused tensors are split by views, not copies:
 * attn_qkv's rows are q | k | v, ffn_up's rows are gate | up.
 */
import type { GGUFFile } from '../gguf/reader.js';
import type { AttnShape, KvCache, Ops, Weight } from '../backend/ops.js';
import { configFromGguf, ropeFactorSet, validateTensors, type Phi3Config } from './config.js';
import { dequantizeRow } from '../quant/dequantize.js';

export class ContextLengthError extends Error {
  override name = 'ContextLengthError';
  constructor(
    readonly requested: number,
    readonly limit: number,
    what = 'prompt plus max_tokens',
  ) {
    super(`${what} needs ${requested} tokens, but the context holds ${limit}`);
  }
}

interface LayerWeights {
  attnNorm: Weight; // (dim)
  attnQkv: Weight; // (dim + 2·kvDim, dim): rows q | k | v
  attnOutput: Weight; // (dim, dim)
  ffnNorm: Weight; // (dim)
  ffnUp: Weight; // (2·hiddenDim, dim): rows gate | up
  ffnDown: Weight; // (dim, hiddenDim)
}

export interface Phi3Weights {
  tokenEmbd: Weight; // (vocabSize, dim)
  layers: LayerWeights[];
  outputNorm: Weight; // (dim)
  output: Weight; // (vocabSize, dim); token_embd when tied
  ropeFactorsLong?: Float32Array; // (ropeDim/2) LongRoPE divisors of each pair's frequency, context > original
  ropeFactorsShort?: Float32Array; // (ropeDim/2) the same, context ≤ original
}

/** a small tensor (rope factors) as f32 values, whatever the backend */
function readF32(f: GGUFFile, name: string): Float32Array | undefined {
  const t = f.tensor(name);
  if (!t) return undefined;
  const out = new Float32Array(t.nElements);
  dequantizeRow(t.type, f.readTensor(t), 0, out, 0, out.length);
  return out;
}

export function loadWeights<B>(f: GGUFFile, c: Phi3Config, ops: Ops<B>, onTensor?: (bytes: number) => void): Phi3Weights {
  validateTensors(f, c);
  const w = (name: string) => {
    const t = f.tensor(name)!;
    const weight = ops.loadWeight(f, t);
    onTensor?.(t.byteSize);
    return weight;
  };
  const tokenEmbd = w('token_embd.weight');
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    layers.push({
      attnNorm: w(`blk.${l}.attn_norm.weight`),
      attnQkv: w(`blk.${l}.attn_qkv.weight`),
      attnOutput: w(`blk.${l}.attn_output.weight`),
      ffnNorm: w(`blk.${l}.ffn_norm.weight`),
      ffnUp: w(`blk.${l}.ffn_up.weight`),
      ffnDown: w(`blk.${l}.ffn_down.weight`),
    });
  }
  const outputNorm = w('output_norm.weight');
  const output = c.tiedEmbeddings ? tokenEmbd : w('output.weight');
  return { tokenEmbd, layers, outputNorm, output, ropeFactorsLong: readF32(f, 'rope_factors_long.weight'), ropeFactorsShort: readF32(f, 'rope_factors_short.weight') };
}

/** Activation buffers for batches of up to maxT tokens (llama2.c's RunState). */
class RunState<B> {
  x: B; // (T, dim) residual stream
  xb: B; // (T, dim) normed input / attention output
  xb2: B; // (T, dim) branch output before the residual add
  qkv: B; // (T, dim + 2·kvDim)
  gu: B; // (T, 2·hiddenDim) gate | up
  hb: B; // (T, hiddenDim)
  last: B; // (1, dim) the final position, when only its logits are wanted
  logits: B; // (T, vocabSize)
  constructor(ops: Ops<B>, c: Phi3Config, readonly maxT: number) {
    this.x = ops.alloc(maxT * c.dim);
    this.xb = ops.alloc(maxT * c.dim);
    this.xb2 = ops.alloc(maxT * c.dim);
    this.qkv = ops.alloc(maxT * (c.dim + 2 * c.kvDim));
    this.gu = ops.alloc(maxT * 2 * c.hiddenDim);
    this.hb = ops.alloc(maxT * c.hiddenDim);
    this.last = ops.alloc(c.dim);
    this.logits = ops.alloc(maxT * c.vocabSize);
  }
}

export interface ForwardOptions {
  /** logits for every token of the batch (default: only the last) */
  allLogits?: boolean;
}

export class Phi3<B = unknown> {
  readonly attn: AttnShape;
  readonly cache: KvCache;
  /** tokens already in the KV cache */
  nPast = 0;
  private state: RunState<B>;

  constructor(
    readonly config: Phi3Config,
    readonly weights: Phi3Weights,
    readonly ops: Ops<B>,
    readonly ctx: number,
    /** largest batch one forward() call processes at once; longer inputs are split */
    readonly maxBatch = 64,
    /** apply phi3.attention.sliding_window (llama.cpp ignores it for Phi, and so do we by default) */
    swa = false,
  ) {
    const c = config;
    this.attn = {
      nHeads: c.nHeads,
      nKvHeads: c.nKvHeads,
      headDim: c.headDim,
      ropeDim: c.ropeDim,
      ropeFreqBase: c.ropeFreqBase,
      ropeFreqScale: c.ropeFreqScale,
      // LongRoPE: one factor set for the whole context, as llama.cpp
      ropeFreqFactors: { long: weights.ropeFactorsLong, short: weights.ropeFactorsShort, none: undefined }[ropeFactorSet(c, ctx)],
      ropeAttnFactor: c.ropeAttnFactor,
      window: swa ? c.slidingWindow ?? 0 : 0,
      qkvDim: c.dim + 2 * c.kvDim,
    };
    this.cache = ops.kvCache(c.nLayers, ctx, c.kvDim);
    this.state = new RunState(ops, c, maxBatch);
  }

  static load<B>(f: GGUFFile, ops: Ops<B>, opts: { ctx?: number; maxBatch?: number; swa?: boolean; onTensor?: (bytes: number) => void } = {}): Phi3<B> {
    const c = configFromGguf(f);
    const ctx = opts.ctx ?? c.contextLength;
    return new Phi3(c, loadWeights(f, c, ops, opts.onTensor), ops, ctx, opts.maxBatch, opts.swa);
  }

  /** forget the KV cache (the next forward starts at position 0) */
  reset(): void {
    this.nPast = 0;
  }

  /** keep only the first n cached positions (for chat: reuse a shared prefix) */
  truncate(n: number): void {
    this.nPast = Math.min(this.nPast, Math.max(0, n));
  }

  /**
   * Run tokens through the model at positions nPast…, append them to the KV cache, and return
   * logits: one row (vocabSize) for the last token, or one per token with allLogits.
   */
  forward(tokens: ArrayLike<number>, opts: ForwardOptions = {}): Float32Array[] {
    if (this.nPast + tokens.length > this.ctx) throw new ContextLengthError(this.nPast + tokens.length, this.ctx, 'the tokens');
    const out: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i += this.maxBatch) {
      const batch = Array.prototype.slice.call(tokens, i, i + this.maxBatch) as number[];
      const isLast = i + this.maxBatch >= tokens.length;
      out.push(...this.forwardBatch(batch, opts.allLogits ? 'all' : isLast ? 'last' : 'none'));
    }
    return out;
  }

  private forwardBatch(tokens: number[], want: 'all' | 'last' | 'none'): Float32Array[] {
    const { ops, config: c, weights: w, attn, cache, state: s } = this;
    const T = tokens.length;
    const pos = this.nPast;

    ops.embed(s.x, w.tokenEmbd, tokens); //                            x = tok_embeddings(tokens)
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      ops.rmsnorm(s.xb, s.x, L.attnNorm, T, c.rmsEps); //              h = attn_norm(x)
      ops.matmul(s.qkv, L.attnQkv, s.xb, T); //                        q, k, v = qkv_proj(h).split(...)
      ops.rope(s.qkv, T, pos, attn); //                                q, k = rope(q, pos), rope(k, pos)
      ops.attention(s.xb, s.qkv, cache, l, T, pos, attn); //           h = softmax(q·kᵀ/√d + causal) · v
      ops.matmul(s.xb2, L.attnOutput, s.xb, T); //                     h = o_proj(h)
      ops.add(s.x, s.xb2, T * c.dim); //                               x = x + h
      ops.rmsnorm(s.xb, s.x, L.ffnNorm, T, c.rmsEps); //               h = ffn_norm(x)
      ops.matmul(s.gu, L.ffnUp, s.xb, T); //                           gate, up = gate_up_proj(h).chunk(2)
      ops.swiglu(s.hb, s.gu, T, c.hiddenDim); //                       h = silu(gate) * up
      ops.matmul(s.xb2, L.ffnDown, s.hb, T); //                        h = down_proj(h)
      ops.add(s.x, s.xb2, T * c.dim); //                               x = x + h
    }
    this.nPast += T;
    if (want === 'none') return [];
    const rows = want === 'all' ? T : 1;
    let h = s.x;
    if (want === 'last') {
      ops.copy(s.last, 0, s.x, (T - 1) * c.dim, c.dim);
      h = s.last;
    }
    ops.rmsnorm(s.xb, h, w.outputNorm, rows, c.rmsEps); //             h = norm(x)
    ops.matmul(s.logits, w.output, s.xb, rows); //                     logits = lm_head(h)
    return Array.from({ length: rows }, (_, r) => ops.read(s.logits, r * c.vocabSize, c.vocabSize));
  }
}
