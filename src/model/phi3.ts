/**
 * Phi-3, the whole model: weights keyed by GGUF tensor names, a KV cache, and forward().
 *
 * Mirrors llama.cpp src/models/phi3.cpp (llm_build_phi3) and candle's quantized_phi3.rs.
 * forward() is the story of one batch of tokens through the transformer; each line names its
 * PyTorch equivalent. The numbers are done by an Ops backend (ref: plain TS; wasm: SIMD kernels),
 * so this file reads the same whichever runs it. Fused tensors are split by views, not copies:
 * attn_qkv's rows are q | k | v, ffn_up's rows are gate | up. Phi-3.5-MoE (arch phimoe) runs the
 * same story with biases after its norms and projections, and experts in place of the feed-forward.
 */
import type { GGUFFile } from '../gguf/reader.js';
import type { AttnShape, KvCache, Ops, Weight } from '../backend/ops.js';
import { configFromGguf, ropeFactorSet, validateTensors, type Phi3Config } from './config.js';
import { dequantizeRow } from '../quant/dequantize.js';
import { routeTopK, tokensPerExpert } from './moe.js';

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

/** an RMSNorm's (dim) weight, and phimoe's (dim) bias added after it */
interface Norm<B> {
  w: Weight;
  b?: B;
}
/** a projection and phimoe's bias (rows) */
interface Linear<B> {
  w: Weight;
  b?: B;
}
/** phi3: one fused projection, rows q | k | v. phimoe: three, and their biases concatenated (dim + 2·kvDim) */
type QkvWeights<B> = { qkv: Weight } | { q: Weight; k: Weight; v: Weight; bias: B };
/** phi3: ffn_up's rows are gate | up */
interface DenseFfn {
  up: Weight; // (2·hiddenDim, dim)
  down: Weight; // (dim, hiddenDim)
}
/** phimoe: a router and nExpert experts, each sliced out of the stacked *_exps tensors */
interface MoeFfn {
  router: Weight; // ffn_gate_inp (nExpert, dim)
  gate: Weight[]; // ffn_gate_exps[e] (hiddenDim, dim)
  up: Weight[]; // ffn_up_exps[e] (hiddenDim, dim)
  down: Weight[]; // ffn_down_exps[e] (dim, hiddenDim)
}

interface LayerWeights<B> {
  attnNorm: Norm<B>;
  attnQkv: QkvWeights<B>;
  attnOutput: Linear<B>; // (dim, dim)
  ffnNorm: Norm<B>;
  ffn: DenseFfn | MoeFfn;
}

export interface Phi3Weights<B = unknown> {
  tokenEmbd: Weight; // (vocabSize, dim)
  layers: LayerWeights<B>[];
  outputNorm: Norm<B>;
  output: Linear<B>; // (vocabSize, dim); token_embd when tied
  ropeFactorsLong?: Float32Array; // (ropeDim/2) LongRoPE divisors of each pair's frequency, context > original
  ropeFactorsShort?: Float32Array; // (ropeDim/2) the same, context ≤ original
}

/** a small tensor (rope factors, biases) as f32 values, whatever the backend */
function readF32(f: GGUFFile, name: string): Float32Array | undefined {
  const t = f.tensor(name);
  if (!t) return undefined;
  const out = new Float32Array(t.nElements);
  dequantizeRow(t.type, f.readTensor(t), 0, out, 0, out.length);
  return out;
}

export function loadWeights<B>(f: GGUFFile, c: Phi3Config, ops: Ops<B>, onTensor?: (bytes: number) => void): Phi3Weights<B> {
  validateTensors(f, c);
  const w = (name: string) => {
    const t = f.tensor(name)!;
    const weight = ops.loadWeight(f, t);
    onTensor?.(t.byteSize);
    return weight;
  };
  /** f32 vectors (biases) as one backend buffer */
  const vector = (...names: string[]) => {
    const parts = names.map((n) => readF32(f, n)!);
    const b = ops.alloc(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) ops.write(b, at, p), (at += p.length);
    return b;
  };
  /** a stacked (cols, rows, nExpert) tensor as nExpert weights: each expert's rows are contiguous */
  const experts = (name: string) => {
    const t = f.tensor(name)!;
    const [cols, rows, n] = t.shape as [number, number, number];
    const bytes = t.byteSize / n;
    const slices = Array.from({ length: n }, (_, e) =>
      ops.loadWeight(f, { ...t, name: `${name}[${e}]`, shape: [cols, rows], offset: t.offset + e * bytes, byteSize: bytes, nElements: cols * rows }),
    );
    onTensor?.(t.byteSize);
    return slices;
  };
  const moe = c.arch === 'phimoe';
  const norm = (name: string): Norm<B> => ({ w: w(`${name}.weight`), b: moe ? vector(`${name}.bias`) : undefined });
  const linear = (name: string): Linear<B> => ({ w: w(`${name}.weight`), b: moe ? vector(`${name}.bias`) : undefined });
  const tokenEmbd = w('token_embd.weight');
  const layers: LayerWeights<B>[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}`;
    layers.push({
      attnNorm: norm(`${b}.attn_norm`),
      attnQkv: moe
        ? { q: w(`${b}.attn_q.weight`), k: w(`${b}.attn_k.weight`), v: w(`${b}.attn_v.weight`), bias: vector(`${b}.attn_q.bias`, `${b}.attn_k.bias`, `${b}.attn_v.bias`) }
        : { qkv: w(`${b}.attn_qkv.weight`) },
      attnOutput: linear(`${b}.attn_output`),
      ffnNorm: norm(`${b}.ffn_norm`),
      ffn: moe
        ? { router: w(`${b}.ffn_gate_inp.weight`), gate: experts(`${b}.ffn_gate_exps.weight`), up: experts(`${b}.ffn_up_exps.weight`), down: experts(`${b}.ffn_down_exps.weight`) }
        : { up: w(`${b}.ffn_up.weight`), down: w(`${b}.ffn_down.weight`) },
    });
  }
  const outputNorm = norm('output_norm');
  const output = c.tiedEmbeddings ? { w: tokenEmbd } : linear('output');
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
  logits: B; // (T, vocabSize)
  // phimoe only (empty otherwise)
  qkvParts: B; // (T, dim) q, then (T, kvDim) k, then (T, kvDim) v
  router: B; // (T, nExpert) router logits
  xe: B; // (T, dim) the inputs of the tokens routed to one expert
  slots: Float32Array; // (T, k, dim) each token's k weighted expert outputs
  moeOut: Float32Array; // (T, dim) their sum
  constructor(ops: Ops<B>, c: Phi3Config, readonly maxT: number) {
    const moe = c.nExpert > 0 ? 1 : 0;
    this.x = ops.alloc(maxT * c.dim);
    this.xb = ops.alloc(maxT * c.dim);
    this.xb2 = ops.alloc(maxT * c.dim);
    this.qkv = ops.alloc(maxT * (c.dim + 2 * c.kvDim));
    this.gu = ops.alloc(maxT * 2 * c.hiddenDim);
    this.hb = ops.alloc(maxT * c.hiddenDim);
    this.logits = ops.alloc(maxT * c.vocabSize);
    this.qkvParts = ops.alloc(moe * maxT * (c.dim + 2 * c.kvDim));
    this.router = ops.alloc(moe * maxT * c.nExpert);
    this.xe = ops.alloc(moe * maxT * c.dim);
    this.slots = new Float32Array(moe * maxT * c.nExpertUsed * c.dim);
    this.moeOut = new Float32Array(moe * maxT * c.dim);
  }
}

export interface ForwardOptions {
  /** logits for every token of the batch (default: only the last) */
  allLogits?: boolean;
  /** the sequence to run (default: the first) */
  seq?: Sequence;
}

/** One sequence's place in the model: its own KV cache, and how many positions of it are filled. */
export class Sequence {
  nPast = 0;
  constructor(
    readonly index: number,
    readonly cache: KvCache,
    /** positions its cache holds */
    readonly ctx: number,
  ) {}
  /** keep only the first n cached positions */
  truncate(n: number): void {
    this.nPast = Math.min(this.nPast, Math.max(0, n));
  }
}

/** a sequence's tokens in a batch of several sequences (forwardParts), and which of their logits are wanted */
export interface SequencePart {
  seq: Sequence;
  tokens: number[];
  want: 'all' | 'last' | 'none';
  /** input embeddings (an image's, vision/phi3v.ts) in place of tokens: each range's n rows of dim replace tokens at..at+n−1 of the part */
  embeds?: EmbedRange[];
}

/** rows of input embeddings and the first token of a part (or submission) they replace */
export interface EmbedRange {
  at: number;
  rows: Float32Array;
}

/** the ranges' rows that fall in tokens [from, to), re-based to from */
export function sliceEmbeds(ranges: readonly EmbedRange[] | undefined, from: number, to: number, dim: number): EmbedRange[] | undefined {
  if (!ranges) return undefined;
  const out: EmbedRange[] = [];
  for (const r of ranges) {
    const n = r.rows.length / dim, a = Math.max(r.at, from), b = Math.min(r.at + n, to);
    if (a < b) out.push({ at: a - from, rows: r.rows.subarray((a - r.at) * dim, (b - r.at) * dim) });
  }
  return out.length ? out : undefined;
}

export class Phi3<B = unknown> {
  readonly attn: AttnShape;
  /** the sequences' KV caches (one unless loaded with several: continuous batching); forward() runs the first */
  readonly sequences: Sequence[];
  /** phimoe: the smallest top-k routing margin (moe.ts) of the last forward() call; Infinity without experts */
  routingMargin = Infinity;
  private state: RunState<B>;

  constructor(
    readonly config: Phi3Config,
    readonly weights: Phi3Weights<B>,
    readonly ops: Ops<B>,
    readonly ctx: number,
    /** largest batch one forward() call processes at once; longer inputs are split */
    readonly maxBatch = 64,
    /** apply phi3.attention.sliding_window (llama.cpp ignores it for Phi, and so do we by default) */
    swa = false,
    /** sequences, each with a KV cache of `ctx` positions */
    nSequences = 1,
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
    this.sequences = Array.from({ length: nSequences }, (_, i) => new Sequence(i, ops.kvCache(c.nLayers, ctx, c.kvDim), ctx));
    this.state = new RunState(ops, c, maxBatch);
  }

  static load<B>(f: GGUFFile, ops: Ops<B>, opts: { ctx?: number; maxBatch?: number; swa?: boolean; sequences?: number; onTensor?: (bytes: number) => void } = {}): Phi3<B> {
    const c = configFromGguf(f);
    const ctx = opts.ctx ?? c.contextLength;
    return new Phi3(c, loadWeights(f, c, ops, opts.onTensor), ops, ctx, opts.maxBatch, opts.swa, opts.sequences);
  }

  /** the first sequence's KV cache, which forward() runs */
  get cache(): KvCache {
    return this.sequences[0]!.cache;
  }
  /** tokens already in the first sequence's KV cache */
  get nPast(): number {
    return this.sequences[0]!.nPast;
  }
  set nPast(n: number) {
    this.sequences[0]!.nPast = n;
  }

  /** forget every sequence's KV cache (the next forward starts at position 0) */
  reset(): void {
    for (const q of this.sequences) q.nPast = 0;
  }

  /** keep only the first n cached positions (for chat: reuse a shared prefix) */
  truncate(n: number): void {
    this.sequences[0]!.truncate(n);
  }

  /**
   * Run tokens through one sequence at its positions nPast…, append them to its KV cache, and return
   * logits: one row (vocabSize) for the last token, or one per token with allLogits.
   */
  forward(tokens: ArrayLike<number>, opts: ForwardOptions = {}): Float32Array[] {
    const seq = opts.seq ?? this.sequences[0]!;
    if (seq.nPast + tokens.length > seq.ctx) throw new ContextLengthError(seq.nPast + tokens.length, seq.ctx, 'the tokens');
    const out: Float32Array[] = [];
    this.routingMargin = Infinity;
    for (let i = 0; i < tokens.length; i += this.maxBatch) {
      const batch = Array.prototype.slice.call(tokens, i, i + this.maxBatch) as number[];
      const isLast = i + this.maxBatch >= tokens.length;
      out.push(...this.forwardParts([{ seq, tokens: batch, want: opts.allLogits ? 'all' : isLast ? 'last' : 'none' }])[0]!);
    }
    return out;
  }

  /**
   * One batch of several sequences' tokens (at most maxBatch in all): every matmul runs over the
   * whole batch (it reads each weight once), rope and attention run per sequence over its own KV
   * cache and positions. Returns each part's wanted logits.
   */
  forwardParts(parts: SequencePart[]): Float32Array[][] {
    const { ops, config: c, weights: w, attn, state: s } = this;
    const T = parts.reduce((a, p) => a + p.tokens.length, 0);
    if (T > this.maxBatch) throw new RangeError(`a batch of ${T} tokens is more than the ${this.maxBatch} one forward pass takes`);
    for (const p of parts)
      if (p.seq.nPast + p.tokens.length > p.seq.ctx) throw new ContextLengthError(p.seq.nPast + p.tokens.length, p.seq.ctx, 'the tokens');
    const at = (buf: B, row: number, width: number) => ops.view(buf, row * width);

    ops.embed(s.x, w.tokenEmbd, parts.flatMap((p) => (p.embeds ? p.tokens.map((t) => Math.max(t, 0)) : p.tokens))); // x = tok_embeddings(tokens)
    this.placeEmbeds(parts); //                                        x[image positions] = image embeddings
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l]!;
      this.norm(s.xb, s.x, L.attnNorm, T); //                          h = attn_norm(x)
      this.qkvProj(L.attnQkv, T); //                                   q, k, v = qkv_proj(h).split(...)
      let row = 0;
      for (const { seq, tokens } of parts) {
        const qkv = at(s.qkv, row, attn.qkvDim), n = tokens.length, pos = seq.nPast;
        ops.rope(qkv, n, pos, attn); //                                q, k = rope(q, pos), rope(k, pos)
        ops.attention(at(s.xb, row, c.dim), qkv, seq.cache, l, n, pos, attn); // h = softmax(q·kᵀ/√d + causal) · v
        row += n;
      }
      this.linear(s.xb2, L.attnOutput, s.xb, T); //                    h = o_proj(h)
      ops.add(s.x, s.xb2, T * c.dim); //                               x = x + h
      this.norm(s.xb, s.x, L.ffnNorm, T); //                           h = ffn_norm(x)
      if ('router' in L.ffn) this.moe(L.ffn, T); //                    h = Σ_top-k weight_e · expert_e(h)
      else {
        ops.matmul(s.gu, L.ffn.up, s.xb, T); //                        gate, up = gate_up_proj(h).chunk(2)
        ops.swiglu(s.hb, s.gu, T, c.hiddenDim); //                     h = silu(gate) * up
        ops.matmul(s.xb2, L.ffn.down, s.hb, T); //                     h = down_proj(h)
      }
      ops.add(s.x, s.xb2, T * c.dim); //                               x = x + h
    }
    // the wanted positions' rows of x, gathered in order (into xb2, free now), then the head
    let rows = 0, row = 0;
    const counts = parts.map(({ tokens, want }) => {
      const n = want === 'all' ? tokens.length : want === 'last' ? 1 : 0;
      if (n) ops.copy(s.xb2, rows * c.dim, s.x, (row + tokens.length - n) * c.dim, n * c.dim);
      row += tokens.length;
      rows += n;
      return n;
    });
    for (const p of parts) p.seq.nPast += p.tokens.length;
    if (rows > 0) {
      this.norm(s.xb, s.xb2, w.outputNorm, rows); //                    h = norm(x)
      this.linear(s.logits, w.output, s.xb, rows); //                  logits = lm_head(h)
    }
    let r = 0;
    return counts.map((n) => Array.from({ length: n }, () => ops.read(s.logits, r++ * c.vocabSize, c.vocabSize)));
  }

  /** each part's input embeddings over its rows of state.x */
  private placeEmbeds(parts: SequencePart[]): void {
    let row = 0;
    for (const p of parts) {
      for (const e of p.embeds ?? []) {
        const n = e.rows.length / this.config.dim;
        if (!Number.isInteger(n) || e.at < 0 || e.at + n > p.tokens.length) throw new RangeError(`input embeddings of ${e.rows.length} values do not fit the part's ${p.tokens.length} tokens at ${e.at} (rows of ${this.config.dim})`);
        this.ops.write(this.state.x, (row + e.at) * this.config.dim, e.rows);
      }
      row += p.tokens.length;
    }
  }

  /** out = rmsnorm(x) · w (+ b) */
  private norm(out: B, x: B, n: Norm<B>, T: number): void {
    this.ops.rmsnorm(out, x, n.w, T, this.config.rmsEps);
    if (n.b) this.ops.addBias(out, n.b, T, this.config.dim);
  }

  /** out = x · Wᵀ (+ b) */
  private linear(out: B, p: Linear<B>, x: B, T: number): void {
    this.ops.matmul(out, p.w, x, T);
    if (p.b) this.ops.addBias(out, p.b, T, p.w.rows);
  }

  /** state.qkv (T, dim + 2·kvDim) = the q | k | v projections of state.xb */
  private qkvProj(a: QkvWeights<B>, T: number): void {
    const { ops, state: s, attn } = this;
    if ('qkv' in a) return ops.matmul(s.qkv, a.qkv, s.xb, T);
    // phimoe: three projections, interleaved token by token into the fused layout, then q | k | v's biases
    const parts = [a.q, a.k, a.v];
    let at = 0, col = 0;
    for (const W of parts) {
      ops.matmul(ops.view(s.qkvParts, at), W, s.xb, T);
      for (let t = 0; t < T; t++) ops.copy(s.qkv, t * attn.qkvDim + col, s.qkvParts, at + t * W.rows, W.rows);
      at += T * W.rows;
      col += W.rows;
    }
    ops.addBias(s.qkv, a.bias, T, attn.qkvDim);
  }

  /**
   * phimoe's feed-forward, as llama.cpp's build_moe_ffn: route each token to its top-k experts
   * (moe.ts), run each expert once on the tokens routed to it, and sum the k weighted outputs of each
   * token in routing order (f32 products and sums, as ggml). state.xb → state.xb2.
   */
  private moe(m: MoeFfn, T: number): void {
    const { ops, config: c, state: s } = this;
    const k = c.nExpertUsed, dim = c.dim, hidden = c.hiddenDim;
    ops.matmul(s.router, m.router, s.xb, T); //                       logits = router(h)
    const routes = routeTopK(ops.read(s.router, 0, T * c.nExpert), T, c.nExpert, k);
    this.routingMargin = Math.min(this.routingMargin, routes.margin);
    tokensPerExpert(routes, c.nExpert).forEach((slotsOfE, e) => {
      const n = slotsOfE.length;
      if (n === 0) return;
      // the expert's input rows: state.xb itself when every token goes to it, else gathered
      let xin = s.xb;
      if (n < T) {
        slotsOfE.forEach((slot, i) => ops.copy(s.xe, i * dim, s.xb, Math.floor(slot / k) * dim, dim));
        xin = s.xe;
      }
      ops.matmul(s.gu, m.gate[e]!, xin, n); //                         gate = gate_e(h)   (n, hidden)
      ops.matmul(ops.view(s.gu, n * hidden), m.up[e]!, xin, n); //     up = up_e(h), right after gate
      ops.swiglu(s.hb, s.gu, 1, n * hidden); //                        silu(gate) * up over all n rows
      ops.matmul(s.xb2, m.down[e]!, s.hb, n); //                       y = down_e(...)    (n, dim)
      const y = ops.read(s.xb2, 0, n * dim);
      slotsOfE.forEach((slot, i) => {
        const wgt = routes.weights[slot]!;
        for (let d = 0; d < dim; d++) s.slots[slot * dim + d] = y[i * dim + d]! * wgt;
      });
    });
    for (let t = 0; t < T; t++)
      for (let d = 0; d < dim; d++) {
        let acc = s.slots[t * k * dim + d]!;
        for (let j = 1; j < k; j++) acc = Math.fround(acc + s.slots[(t * k + j) * dim + d]!);
        s.moeOut[t * dim + d] = acc;
      }
    ops.write(s.xb2, 0, s.moeOut.subarray(0, T * dim));
  }
}
