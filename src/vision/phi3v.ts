/**
 * Phi-3-vision's image embedding (Microsoft's Phi3ImageEmbedding, HD transform): the CLIP features of
 * the global 336² view and of the h×w sub-image crops, each crop's 24×24 patches merged 2×2 into
 * 12×12 of 4·C, the sub-images laid out as one (12h)×(12w) grid, `sub_GN` appended at the end of
 * every row, `glb_GN` between the two parts (order sub_glb: sub-images first, as Phi-3.5-vision's
 * config says), then the projection Linear(4C → dim) → GELU → Linear(dim → dim).
 *
 * An image of h×w crops gives (h·w + 1)·144 + 1 + (h + 1)·12 embeddings, which replace its
 * `<|image_N|>` placeholder in the prompt. Exact twin, float64 (see clip.ts).
 */
import { CLIP_GRID, VisionModelError, checkedTensor, clipFeatures, clipWeights, type ClipWeights, type VisionTensor } from './clip.js';

const M = CLIP_GRID / 2; // 12: merged patches a side

export interface Phi3VWeights {
  clip: ClipWeights;
  /** [4C] each */
  glb_GN: Float32Array;
  sub_GN: Float32Array;
  /** img_projection.0: [dim, 4C]; img_projection.2: [dim, dim] */
  proj0: { w: Float32Array; b: Float32Array };
  proj2: { w: Float32Array; b: Float32Array };
  dim: number;
  order: 'sub_glb' | 'glb_sub';
}

/** embeddings an image of h × w crops takes in the prompt */
export function imageTokenCount(h: number, w: number): number {
  return (h * w + 1) * M * M + 1 + (h + 1) * M;
}

/** the vision weights of a Phi3VForCausalLM checkpoint (`model.vision_embed_tokens.…`), checked */
export function phi3vWeights(get: (name: string) => VisionTensor | undefined, o: { layerIdx?: number; order?: string } = {}): Phi3VWeights {
  const p = 'model.vision_embed_tokens.';
  const clip = clipWeights(get, p + 'img_processor.vision_model.', o.layerIdx);
  const C4 = 4 * clip.shape.hidden;
  const need = (name: string, shape: number[]): Float32Array => checkedTensor(get, p + name, shape, 'the vision embedding');
  const p0 = get(p + 'img_projection.0.weight');
  if (!p0 || p0.shape.length !== 2 || p0.shape[1] !== C4) throw new VisionModelError(`'${p}img_projection.0.weight' must be [dim, ${C4}]`);
  const dim = p0.shape[0]!;
  const order = o.order ?? 'sub_glb';
  if (order !== 'sub_glb' && order !== 'glb_sub') throw new VisionModelError(`embd_layer.hd_transform_order '${order}' is not supported (sub_glb or glb_sub)`);
  return {
    clip,
    glb_GN: need('glb_GN', [1, 1, C4]),
    sub_GN: need('sub_GN', [1, 1, 1, C4]),
    proj0: { w: need('img_projection.0.weight', [dim, C4]), b: need('img_projection.0.bias', [dim]) },
    proj2: { w: need('img_projection.2.weight', [dim, dim]), b: need('img_projection.2.bias', [dim]) },
    dim,
    order,
  };
}

type Floats = Float32Array | Float64Array;

/** the 2×2 merge of one crop's features (576 × C) into 144 × 4C: row (i, j) = f[2i,2j] | f[2i,2j+1] | f[2i+1,2j] | f[2i+1,2j+1] */
export function merge2x2<T extends Floats>(f: T, C: number): T {
  const out = new (f.constructor as new (n: number) => T)(M * M * 4 * C);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < M; j++)
      for (let a = 0; a < 2; a++)
        for (let b = 0; b < 2; b++) out.set(f.subarray(((2 * i + a) * CLIP_GRID + 2 * j + b) * C, ((2 * i + a) * CLIP_GRID + 2 * j + b + 1) * C), ((i * M + j) * 4 + a * 2 + b) * C);
  return out;
}

/**
 * An image's rows before the projection, in order: the sub-images as one (12h)×(12w) grid and the
 * global view's 12×12, each row of either ended by sub_GN, glb_GN between them (`order` says which part
 * comes first). merged[0] is the global view's 144 × 4C, merged[1…h·w] the tiles'.
 */
export function hdRows(w: Pick<Phi3VWeights, 'sub_GN' | 'glb_GN' | 'order'>, merged: Floats[], h: number, wc: number, C4: number): ArrayLike<number>[] {
  const m = merged, rows: ArrayLike<number>[] = [];
  const globalPart = () => {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < M; j++) rows.push(m[0]!.subarray((i * M + j) * C4, (i * M + j + 1) * C4));
      rows.push(w.sub_GN);
    }
  };
  const subPart = () => {
    for (let r = 0; r < h * M; r++) {
      const hc = Math.floor(r / M), i = r % M;
      for (let col = 0; col < wc * M; col++) {
        const c = Math.floor(col / M), j = col % M;
        rows.push(m[1 + hc * wc + c]!.subarray((i * M + j) * C4, (i * M + j + 1) * C4));
      }
      rows.push(w.sub_GN);
    }
  };
  if (w.order === 'sub_glb') subPart(), rows.push(w.glb_GN), globalPart();
  else globalPart(), rows.push(w.glb_GN), subPart();
  return rows;
}

/** the exact GELU (torch's nn.GELU()): x·Φ(x) */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** erf, for the exact GELU: its Taylor series near 0, the continued fraction of erfc beyond (|error| < 1e-14) */
export function erf(x: number): number {
  const z = Math.abs(x);
  if (z < 2.5) {
    let term = z, sum = z;
    for (let n = 1; n < 80; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  // erfc(z) = e^(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + …)))))
  let f = z;
  for (let k = 60; k >= 1; k--) f = z + k / 2 / f;
  const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/**
 * An image's embeddings, [imageTokenCount(h, w), dim], from its crops' pixels: crop 0 the global view,
 * crops 1…h·w the sub-images in row-major order (preprocess.ts makes them).
 */
export function imageEmbeddings(w: Phi3VWeights, crops: Float32Array[], h: number, wc: number): Float64Array {
  if (crops.length < 1 + h * wc) throw new RangeError(`an image of ${h}×${wc} crops needs ${1 + h * wc} crops, got ${crops.length}`);
  const C = w.clip.shape.hidden, C4 = 4 * C;
  const feats = crops.slice(0, 1 + h * wc).map((c) => merge2x2(clipFeatures(w.clip, c), C)); // each (144, 4C)
  const rows = hdRows(w, feats, h, wc, C4);
  // projection: Linear(4C → dim) → GELU → Linear(dim → dim)
  const D = w.dim, out = new Float64Array(rows.length * D), hid = new Float64Array(D);
  for (const [t, x] of rows.entries()) {
    for (let o = 0; o < D; o++) {
      let s = 0;
      for (let i = 0; i < C4; i++) s += x[i]! * w.proj0.w[o * C4 + i]!;
      s += w.proj0.b[o]!;
      hid[o] = gelu(s);
    }
    for (let o = 0; o < D; o++) {
      let s = 0;
      for (let i = 0; i < D; i++) s += hid[i]! * w.proj2.w[o * D + i]!;
      out[t * D + o] = s + w.proj2.b[o]!;
    }
  }
  return out;
}
