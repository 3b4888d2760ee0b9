/**
 * The CLIP ViT image encoder of Phi-3-vision and Phi-3.5-vision (openai/clip-vit-large-patch14-336:
 * 336² pixels in 14² patches → 576 patch tokens and a class token, pre-layernorm, 24 pre-LN layers
 * with quick_gelu). Phi-3-vision takes the hidden states after layer L + layer_idx + 1 (layer_idx −2:
 * the second-to-last layer's output) without the class token: 576 features of 1024 per 336² crop.
 *
 * This is the exact twin: every product and sum in float64, as the golden data (transformers'
 * CLIPVisionModel in float64) are made. Names are the Hugging Face checkpoint's, under
 * `model.vision_embed_tokens.img_processor.vision_model.`.
 */

export const CLIP_IMAGE = 336;
export const CLIP_PATCH = 14;
/** patches a side (24) and in all (576) */
export const CLIP_GRID = CLIP_IMAGE / CLIP_PATCH;
export const CLIP_PATCHES = CLIP_GRID * CLIP_GRID;

/** a tensor as the folder holds it: values (F16/BF16 widened) and the torch shape */
export interface VisionTensor {
  data: Float32Array;
  shape: number[];
}

export interface ClipShape {
  hidden: number;
  intermediate: number;
  heads: number;
  /** layers run: up to and including the one whose output is taken */
  layersRun: number;
  eps: number;
}

export interface Affine {
  w: Float32Array;
  b: Float32Array;
}
export interface ClipLayer {
  layer_norm1: Affine;
  q_proj: Affine;
  k_proj: Affine;
  v_proj: Affine;
  out_proj: Affine;
  layer_norm2: Affine;
  fc1: Affine;
  fc2: Affine;
}
export interface ClipWeights {
  shape: ClipShape;
  /** [hidden, 3·14·14] (the conv kernel, flattened) */
  patch_embedding: Float32Array;
  class_embedding: Float32Array;
  /** [577, hidden] */
  position_embedding: Float32Array;
  pre_layrnorm: Affine;
  layers: ClipLayer[];
}

export class VisionModelError extends Error {
  override name = 'VisionModelError';
}

/** the tensor `name` from `get`, its shape checked: a VisionModelError names it (and `part`) when absent or mis-shaped */
export function checkedTensor(get: (name: string) => VisionTensor | undefined, name: string, shape: number[], part: string): Float32Array {
  const t = get(name);
  if (!t) throw new VisionModelError(`${part} has no tensor '${name}'`);
  if (t.shape.join() !== shape.join()) throw new VisionModelError(`'${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  return t.data;
}

/**
 * The encoder's weights by their checkpoint names (`get(name)`: the tensor, or undefined), checked
 * against the shapes CLIP needs. The hyper-parameters come from the tensors, as Microsoft's code
 * fixes them to CLIP ViT-L/14-336's: 336² images, 14² patches, heads of 64, layer-norm ε 1e-5.
 * `layerIdx` (config.img_processor.layer_idx, default −2) picks the layer whose output is used.
 */
export function clipWeights(get: (name: string) => VisionTensor | undefined, prefix: string, layerIdx = -2): ClipWeights {
  const need = (name: string, shape: number[]): Float32Array => checkedTensor(get, prefix + name, shape, 'the vision tower');
  const cls = get(prefix + 'embeddings.class_embedding');
  if (!cls || cls.shape.length !== 1) throw new VisionModelError(`the vision tower has no 1-D '${prefix}embeddings.class_embedding'`);
  const D = cls.shape[0]!;
  if (D % 64 !== 0) throw new VisionModelError(`vision hidden size ${D} is not a multiple of CLIP's head size 64`);
  let nLayers = 0;
  while (get(`${prefix}encoder.layers.${nLayers}.layer_norm1.weight`)) nLayers++;
  const fc1 = get(`${prefix}encoder.layers.0.mlp.fc1.weight`);
  if (!nLayers || !fc1) throw new VisionModelError(`the vision tower has no encoder layers under '${prefix}encoder.layers.'`);
  const F = fc1.shape[0]!;
  if (!Number.isInteger(layerIdx) || layerIdx >= 0 || layerIdx < -nLayers)
    throw new VisionModelError(`img_processor.layer_idx ${layerIdx} is not supported: phi3-ts takes a negative layer index in [−${nLayers}, −1] (Phi-3-vision uses −2)`);
  const shape: ClipShape = { hidden: D, intermediate: F, heads: D / 64, layersRun: nLayers + layerIdx + 1, eps: 1e-5 };
  const affine = (n: string, rows: number, cols?: number): Affine => ({ w: need(`${n}.weight`, cols === undefined ? [rows] : [rows, cols]), b: need(`${n}.bias`, [rows]) });
  const layers: ClipLayer[] = [];
  for (let l = 0; l < shape.layersRun; l++) {
    const p = `encoder.layers.${l}.`;
    layers.push({
      layer_norm1: affine(p + 'layer_norm1', D),
      q_proj: affine(p + 'self_attn.q_proj', D, D),
      k_proj: affine(p + 'self_attn.k_proj', D, D),
      v_proj: affine(p + 'self_attn.v_proj', D, D),
      out_proj: affine(p + 'self_attn.out_proj', D, D),
      layer_norm2: affine(p + 'layer_norm2', D),
      fc1: affine(p + 'mlp.fc1', F, D),
      fc2: affine(p + 'mlp.fc2', D, F),
    });
  }
  return {
    shape,
    patch_embedding: need('embeddings.patch_embedding.weight', [D, 3, CLIP_PATCH, CLIP_PATCH]),
    class_embedding: cls.data,
    position_embedding: need('embeddings.position_embedding.weight', [CLIP_PATCHES + 1, D]),
    pre_layrnorm: affine('pre_layrnorm', D),
    layers,
  };
}

/** CLIP's activation: x·σ(1.702·x) */
export function quickGelu(x: number): number {
  return x / (1 + Math.exp(-1.702 * x));
}

/** out[t] = W·x[t] + b  (x: T × nIn, W: nOut × nIn, out: T × nOut), in float64 */
function linear(x: Float64Array, a: Affine, T: number, nIn: number, nOut: number): Float64Array {
  const out = new Float64Array(T * nOut);
  for (let t = 0; t < T; t++)
    for (let o = 0; o < nOut; o++) {
      let s = 0;
      for (let i = 0, xi = t * nIn, wi = o * nIn; i < nIn; i++) s += x[xi + i]! * a.w[wi + i]!;
      out[t * nOut + o] = s + a.b[o]!;
    }
  return out;
}

/** layer norm of each row of x (T × D; biased variance, as torch), into a new array of x's kind: float64 here, float32 in the fast encoder */
export function layerNorm<F extends Float32Array | Float64Array>(x: F, a: Affine, T: number, D: number, eps: number): F {
  const out = (x instanceof Float64Array ? new Float64Array(T * D) : new Float32Array(T * D)) as F;
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[t * D + i]!;
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[t * D + i]! - mean) ** 2;
    const r = 1 / Math.sqrt(v / D + eps);
    for (let i = 0; i < D; i++) out[t * D + i] = (x[t * D + i]! - mean) * r * a.w[i]! + a.b[i]!;
  }
  return out;
}

/**
 * One 336² crop (pixels [3, 336, 336], normalised) → its features: [576, hidden], the patch tokens of
 * the chosen layer's output.
 */
export function clipFeatures(w: ClipWeights, pixels: Float32Array): Float64Array {
  const { hidden: D, intermediate: F, heads: H, eps } = w.shape;
  const S = CLIP_IMAGE, P = CLIP_PATCH, G = CLIP_GRID, N = CLIP_PATCHES + 1, hd = D / H;
  if (pixels.length !== 3 * S * S) throw new RangeError(`a crop is 3 × ${S} × ${S} values, got ${pixels.length}`);
  // x = [class_embedding, patch_embedding ⊛ pixels] + position_embedding          (N, D)
  let x: Float64Array = new Float64Array(N * D);
  for (let d = 0; d < D; d++) x[d] = w.class_embedding[d]! + w.position_embedding[d]!;
  for (let gy = 0; gy < G; gy++)
    for (let gx = 0; gx < G; gx++) {
      const t = 1 + gy * G + gx;
      for (let d = 0; d < D; d++) {
        let s = 0;
        for (let c = 0; c < 3; c++)
          for (let ky = 0; ky < P; ky++)
            for (let kx = 0; kx < P; kx++) s += w.patch_embedding[((d * 3 + c) * P + ky) * P + kx]! * pixels[(c * S + gy * P + ky) * S + gx * P + kx]!;
        x[t * D + d] = s + w.position_embedding[t * D + d]!;
      }
    }
  x = layerNorm(x, w.pre_layrnorm, N, D, eps); //                                   x = pre_layrnorm(x)
  const scores = new Float64Array(N);
  for (const L of w.layers) {
    const h = layerNorm(x, L.layer_norm1, N, D, eps); //                          h = layer_norm1(x)
    const q = linear(h, L.q_proj, N, D, D), k = linear(h, L.k_proj, N, D, D), v = linear(h, L.v_proj, N, D, D);
    const att = new Float64Array(N * D); //                                       h = softmax(q·kᵀ/√hd) · v, per head, no mask
    const scale = 1 / Math.sqrt(hd);
    for (let hh = 0; hh < H; hh++)
      for (let i = 0; i < N; i++) {
        let max = -Infinity;
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let e = 0; e < hd; e++) s += q[i * D + hh * hd + e]! * k[j * D + hh * hd + e]!;
          scores[j] = s * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let z = 0;
        for (let j = 0; j < N; j++) z += (scores[j] = Math.exp(scores[j]! - max));
        for (let e = 0; e < hd; e++) {
          let s = 0;
          for (let j = 0; j < N; j++) s += scores[j]! * v[j * D + hh * hd + e]!;
          att[i * D + hh * hd + e] = s / z;
        }
      }
    const o = linear(att, L.out_proj, N, D, D);
    for (let i = 0; i < N * D; i++) x[i] = x[i]! + o[i]!; //                       x = x + out_proj(h)
    const h2 = layerNorm(x, L.layer_norm2, N, D, eps); //                         h = layer_norm2(x)
    const f = linear(h2, L.fc1, N, D, F);
    for (let i = 0; i < f.length; i++) f[i] = quickGelu(f[i]!); //                h = quick_gelu(fc1(h))
    const m = linear(f, L.fc2, N, F, D);
    for (let i = 0; i < N * D; i++) x[i] = x[i]! + m[i]!; //                       x = x + fc2(h)
  }
  return x.slice(D); // the patch tokens: the class token dropped                 (576, D)
}
