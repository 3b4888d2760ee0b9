/**
 * The CLIP encoder and projection on the WASM kernels (the fast twin of clip.ts and phi3v.ts, which
 * are exact): matrices as Q8_0 (default) or F16, every matmul of a 577-token crop one
 * multi-threaded kernel call; layer norms, quick_gelu, GELU and softmax-free parts on the host in
 * f32. Attention is the text model's kernel over a one-layer f32 cache with no causal mask (window −1).
 */
import { serializeGguf } from '../gguf/writer.js';
import { BufferSource, GGUFFile } from '../gguf/reader.js';
import { GGMLType } from '../quant/ggml-type.js';
import { quantize } from '../quant/quantize.js';
import type { AttnShape, KvCache, Ops, Weight } from '../backend/ops.js';
import { CLIP_GRID, CLIP_IMAGE, CLIP_PATCH, CLIP_PATCHES, layerNorm, quickGelu, type ClipWeights } from './clip.js';
import { gelu, hdRows, merge2x2, type Phi3VWeights } from './phi3v.js';

const N = CLIP_PATCHES + 1; // tokens of a crop

const PATCH_COLS = 3 * CLIP_PATCH * CLIP_PATCH; // 588
const PATCH_PAD = Math.ceil(PATCH_COLS / 32) * 32; // 608: kernels take rows of whole blocks

/** a WasmOps plan for the encoder: its activations, biases and one-layer f32 cache in bank 0, staging for its largest matmul */
export function visionPlan(w: Phi3VWeights, threads: number): { reserveBytes: number; maxCols: number; maxRows: number; maxT: number; threads: number; kvType: 'f32' } {
  const { hidden: D, intermediate: F } = w.clip.shape;
  const maxT = Math.max(N, PROJ_ROWS);
  const acts = 4 * (N * 3 * D + N * D + 3 * D + maxT * Math.max(4 * D, F, PATCH_PAD) + maxT * Math.max(F, w.dim, D));
  const biases = 4 * (w.clip.layers.length * (3 * D + D + F + D) + 2 * w.dim);
  const kv = 2 * N * D * 4 + threads * N * 4;
  const rope = 2 * maxT * 512 * 4;
  return { reserveBytes: acts + biases + kv + rope + (1 << 20), maxCols: Math.max(F, 4 * D, w.dim, PATCH_PAD), maxRows: Math.max(3 * D, F, w.dim), maxT, threads, kvType: 'f32' };
}

/** rows the projection takes at once */
const PROJ_ROWS = 1024;

interface FastLayer {
  qkv: Weight;
  qkvB: unknown;
  out: Weight;
  outB: unknown;
  fc1: Weight;
  fc1B: unknown;
  fc2: Weight;
  fc2B: unknown;
}

/** run a step generator to its end */
function drive<T>(g: Generator<void, T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

export class FastPhi3V<B> {
  private readonly layers: FastLayer[] = [];
  private readonly patch: Weight;
  private readonly proj0: Weight;
  private readonly proj2: Weight;
  private readonly proj0B: B;
  private readonly proj2B: B;
  private readonly cache: KvCache;
  private readonly attn: AttnShape;
  private readonly buf: { qkv: B; att: B; h: B; f: B };
  readonly D: number;

  constructor(
    readonly w: Phi3VWeights,
    private readonly ops: Ops<B>,
    /** the matrices' type: Q8_0 (the fast kernels) or F16 */
    type: GGMLType.Q8_0 | GGMLType.F16 = GGMLType.Q8_0,
  ) {
    const c = w.clip, D = (this.D = c.shape.hidden), F = c.shape.intermediate;
    // every matrix as F16 in one in-memory GGUF, loaded as the text model's weights are
    const f16 = (name: string, rows: number, cols: number, data: Float32Array) => ({ name, shape: [cols, rows], type, data: () => quantize(type, data) });
    const padded = new Float32Array(D * PATCH_PAD);
    for (let d = 0; d < D; d++) padded.set(c.patch_embedding.subarray(d * PATCH_COLS, (d + 1) * PATCH_COLS), d * PATCH_PAD);
    const cat = (...a: Float32Array[]) => {
      const o = new Float32Array(a.reduce((n, x) => n + x.length, 0));
      let at = 0;
      for (const x of a) o.set(x, at), (at += x.length);
      return o;
    };
    const tensors = [f16('patch', D, PATCH_PAD, padded), f16('proj0', w.dim, 4 * D, w.proj0.w), f16('proj2', w.dim, w.dim, w.proj2.w)];
    c.layers.forEach((L, l) => {
      tensors.push(f16(`${l}.qkv`, 3 * D, D, cat(L.q_proj.w, L.k_proj.w, L.v_proj.w)), f16(`${l}.out`, D, D, L.out_proj.w), f16(`${l}.fc1`, F, D, L.fc1.w), f16(`${l}.fc2`, D, F, L.fc2.w));
    });
    const file = GGUFFile.fromSource(new BufferSource(serializeGguf({ metadata: [], tensors }), 'vision tower'));
    const get = (name: string) => ops.loadWeight(file, file.tensors.find((t) => t.name === name)!);
    const bias = (v: Float32Array) => {
      const b = ops.alloc(v.length);
      ops.write(b, 0, v);
      return b;
    };
    this.patch = get('patch');
    this.proj0 = get('proj0');
    this.proj2 = get('proj2');
    this.proj0B = bias(w.proj0.b);
    this.proj2B = bias(w.proj2.b);
    c.layers.forEach((L, l) =>
      this.layers.push({
        qkv: get(`${l}.qkv`), qkvB: bias(cat(L.q_proj.b, L.k_proj.b, L.v_proj.b)),
        out: get(`${l}.out`), outB: bias(L.out_proj.b),
        fc1: get(`${l}.fc1`), fc1B: bias(L.fc1.b),
        fc2: get(`${l}.fc2`), fc2B: bias(L.fc2.b),
      }),
    );
    this.cache = ops.kvCache(1, N, D);
    this.attn = { nHeads: c.shape.heads, nKvHeads: c.shape.heads, headDim: 64, ropeDim: 0, ropeFreqBase: 1, ropeFreqScale: 1, ropeFreqFactors: undefined, ropeAttnFactor: 1, window: -1, qkvDim: 3 * D };
    const maxT = Math.max(N, PROJ_ROWS);
    this.buf = { qkv: ops.alloc(N * 3 * D), att: ops.alloc(N * D), h: ops.alloc(maxT * Math.max(4 * D, F, PATCH_PAD)), f: ops.alloc(maxT * Math.max(F, w.dim, D)) };
  }

  /** one crop's features, [576, D] (as clipFeatures) */
  features(pixels: Float32Array): Float32Array {
    return drive(this.featureSteps(pixels));
  }

  /** features(), a layer a step (so that an async caller can give the event loop turns between them) */
  *featureSteps(pixels: Float32Array): Generator<void, Float32Array> {
    const { ops, D, buf } = this;
    const c: ClipWeights = this.w.clip, F = c.shape.intermediate, eps = c.shape.eps, S = CLIP_IMAGE, P = CLIP_PATCH;
    // patches (576 × 588, padded to 608) · patch_embeddingᵀ
    const patches = new Float32Array(CLIP_PATCHES * PATCH_PAD);
    for (let gy = 0; gy < CLIP_GRID; gy++)
      for (let gx = 0; gx < CLIP_GRID; gx++)
        for (let ch = 0; ch < 3; ch++)
          for (let ky = 0; ky < P; ky++)
            patches.set(pixels.subarray((ch * S + gy * P + ky) * S + gx * P, (ch * S + gy * P + ky) * S + gx * P + P), (gy * CLIP_GRID + gx) * PATCH_PAD + (ch * P + ky) * P);
    ops.write(buf.h, 0, patches);
    ops.matmul(buf.f, this.patch, buf.h, CLIP_PATCHES);
    const pe = ops.read(buf.f, 0, CLIP_PATCHES * D);
    let x: Float32Array = new Float32Array(N * D);
    for (let d = 0; d < D; d++) x[d] = c.class_embedding[d]! + c.position_embedding[d]!;
    for (let i = 0; i < CLIP_PATCHES * D; i++) x[D + i] = pe[i]! + c.position_embedding[D + i]!;
    x = layerNorm(x, c.pre_layrnorm, N, D, eps);
    const s = this.attn;
    for (const [l, L] of c.layers.entries()) {
      yield;
      const fl = this.layers[l]!;
      ops.write(buf.h, 0, layerNorm(x, L.layer_norm1, N, D, eps));
      ops.matmul(buf.qkv, fl.qkv, buf.h, N); //                                   q | k | v
      ops.addBias(buf.qkv, fl.qkvB as B, N, 3 * D);
      // keys and values into the cache, and every query over all N of them (window −1: no causal mask)
      ops.attention(buf.att, buf.qkv, this.cache, 0, N, 0, s);
      ops.matmul(buf.f, fl.out, buf.att, N);
      ops.addBias(buf.f, fl.outB as B, N, D);
      const o = ops.read(buf.f, 0, N * D);
      for (let i = 0; i < N * D; i++) x[i] = x[i]! + o[i]!; //                    x = x + out_proj(attn)
      ops.write(buf.h, 0, layerNorm(x, L.layer_norm2, N, D, eps));
      ops.matmul(buf.f, fl.fc1, buf.h, N);
      ops.addBias(buf.f, fl.fc1B as B, N, F);
      const f = ops.read(buf.f, 0, N * F);
      for (let i = 0; i < f.length; i++) f[i] = quickGelu(f[i]!);
      ops.write(buf.h, 0, f);
      ops.matmul(buf.f, fl.fc2, buf.h, N);
      ops.addBias(buf.f, fl.fc2B as B, N, D);
      const m = ops.read(buf.f, 0, N * D);
      for (let i = 0; i < N * D; i++) x[i] = x[i]! + m[i]!; //                    x = x + fc2(h)
    }
    return x.subarray(D);
  }

  /** an image's embeddings (as imageEmbeddings) from its crops */
  embeddings(crops: Float32Array[], h: number, wc: number): Float32Array {
    return drive(this.embeddingSteps(crops, h, wc));
  }

  /** embeddings() as the async encoder takes it: the event loop gets a turn after every layer */
  async embeddingsAsync(crops: Float32Array[], h: number, wc: number, turn: () => Promise<void>): Promise<Float32Array> {
    const g = this.embeddingSteps(crops, h, wc);
    for (;;) {
      const r = g.next();
      if (r.done) return r.value;
      await turn();
    }
  }

  *embeddingSteps(crops: Float32Array[], h: number, wc: number): Generator<void, Float32Array> {
    const { ops, D, buf, w } = this;
    const C4 = 4 * D;
    const merged: Float32Array[] = [];
    for (const crop of crops.slice(0, 1 + h * wc)) merged.push(merge2x2(yield* this.featureSteps(crop), D));
    const rows = hdRows(w, merged, h, wc, C4);
    // the projection, 1024 rows at a time
    const out = new Float32Array(rows.length * w.dim);
    for (let r0 = 0; r0 < rows.length; r0 += PROJ_ROWS) {
      const T = Math.min(PROJ_ROWS, rows.length - r0), x = new Float32Array(T * C4);
      for (let t = 0; t < T; t++) x.set(rows[r0 + t]!, t * C4);
      ops.write(buf.h, 0, x);
      ops.matmul(buf.f, this.proj0, buf.h, T);
      ops.addBias(buf.f, this.proj0B, T, w.dim);
      const g = ops.read(buf.f, 0, T * w.dim);
      for (let i = 0; i < g.length; i++) g[i] = gelu(g[i]!);
      ops.write(buf.h, 0, g);
      ops.matmul(buf.f, this.proj2, buf.h, T);
      ops.addBias(buf.f, this.proj2B, T, w.dim);
      out.set(ops.read(buf.f, 0, T * w.dim), r0 * w.dim);
    }
    return out;
  }
}
