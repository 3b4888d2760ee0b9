/**
 * A synthetic Phi-3.5-vision Hugging Face folder (random weights, the real structure at small dims):
 * the text model as `phi3 synth` makes it, exported to transformers' Phi3 names, and a CLIP ViT tower
 * (336² images, 14² patches, heads of 64), the HD separators and the two-layer projection under
 * Phi3VForCausalLM's names `model.vision_embed_tokens.…`, in a second safetensors shard with an index.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SafetensorsFile, writeSafetensors, type SafetensorsEntry } from '../safetensors/safetensors.js';
import { exportHf } from '../convert/export-hf.js';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { Rng } from '../util/rng.js';
import { writeSynth, type SynthShape } from './synth.js';
import { CLIP_PATCH, CLIP_PATCHES } from '../vision/clip.js';

export interface VisionSynthShape {
  /** the text model (its dim is the projection's output) */
  text: SynthShape;
  /** CLIP hidden size (a multiple of 64), MLP size, layers */
  hidden: number;
  intermediate: number;
  layers: number;
  /** preprocessor_config.json num_crops */
  numCrops: number;
}

/** CLIP ViT-L/14-336 under Phi-3.5-mini (the real one), and a small twin */
export const VISION_PRESETS: Record<string, VisionSynthShape> = {
  'phi3.5-vision': { text: { dim: 3072, hiddenDim: 8192, nLayers: 32, nHeads: 32, nKvHeads: 32, contextLength: 131072, originalContextLength: 4096, slidingWindow: 262144 }, hidden: 1024, intermediate: 4096, layers: 24, numCrops: 4 },
  'phi3.5-vision-tiny': { text: { dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 4, contextLength: 4096 }, hidden: 128, intermediate: 256, layers: 3, numCrops: 4 },
};

export const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

const f32 = (n: number, f: (i: number) => number): Uint8Array => new Uint8Array(Float32Array.from({ length: n }, (_, i) => f(i)).buffer);

/** the vision tensors: name, torch shape, values */
export function visionTensors(s: VisionSynthShape, dim: number, seed: number): SafetensorsEntry[] {
  const rng = new Rng(seed * 7919 + 17);
  const D = s.hidden, F = s.intermediate;
  const out: SafetensorsEntry[] = [];
  const add = (name: string, shape: number[], f: () => number) => out.push({ name, dtype: 'F32', shape, data: f32(shape.reduce((a, b) => a * b, 1), f) });
  const normal = (sd: number) => () => rng.normal() * sd;
  const near1 = () => 1 + rng.normal() * 0.1;
  const p = 'model.vision_embed_tokens.', v = p + 'img_processor.vision_model.';
  add(v + 'embeddings.class_embedding', [D], normal(0.5));
  add(v + 'embeddings.patch_embedding.weight', [D, 3, CLIP_PATCH, CLIP_PATCH], normal(1 / Math.sqrt(3 * CLIP_PATCH * CLIP_PATCH)));
  add(v + 'embeddings.position_embedding.weight', [CLIP_PATCHES + 1, D], normal(0.2));
  add(v + 'pre_layrnorm.weight', [D], near1);
  add(v + 'pre_layrnorm.bias', [D], normal(0.05));
  for (let l = 0; l < s.layers; l++) {
    const L = `${v}encoder.layers.${l}.`;
    for (const n of ['layer_norm1', 'layer_norm2']) add(`${L}${n}.weight`, [D], near1), add(`${L}${n}.bias`, [D], normal(0.05));
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) add(`${L}self_attn.${n}.weight`, [D, D], normal(1 / Math.sqrt(D))), add(`${L}self_attn.${n}.bias`, [D], normal(0.02));
    add(`${L}mlp.fc1.weight`, [F, D], normal(1 / Math.sqrt(D)));
    add(`${L}mlp.fc1.bias`, [F], normal(0.02));
    add(`${L}mlp.fc2.weight`, [D, F], normal(0.5 / Math.sqrt(F)));
    add(`${L}mlp.fc2.bias`, [D], normal(0.02));
  }
  add(v + 'post_layernorm.weight', [D], near1); // in the checkpoint, unused by Phi-3-vision
  add(v + 'post_layernorm.bias', [D], normal(0.05));
  add(p + 'glb_GN', [1, 1, 4 * D], normal(0.5));
  add(p + 'sub_GN', [1, 1, 1, 4 * D], normal(0.5));
  add(p + 'img_projection.0.weight', [dim, 4 * D], normal(1 / Math.sqrt(4 * D)));
  add(p + 'img_projection.0.bias', [dim], normal(0.02));
  add(p + 'img_projection.2.weight', [dim, dim], normal(1 / Math.sqrt(dim)));
  add(p + 'img_projection.2.bias', [dim], normal(0.02));
  return out;
}

/** write the folder; returns its files */
export function writeVisionSynth(dir: string, s: VisionSynthShape, o: { seed: number; vocabFile?: string }): string[] {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phi3-vision-synth-'));
  try {
    const gguf = path.join(tmp, 'text.gguf');
    writeSynth(gguf, { shape: s.text, type: 'F32', seed: o.seed, vocabFile: o.vocabFile, name: 'Phi-3.5-vision-instruct (synthetic)' });
    const r = exportHf(gguf, dir);
    const text = path.join(dir, 'model.safetensors'), shard1 = 'model-00001-of-00002.safetensors', shard2 = 'model-00002-of-00002.safetensors';
    fs.renameSync(text, path.join(dir, shard1));
    const vision = visionTensors(s, s.text.dim, o.seed);
    writeSafetensors(path.join(dir, shard2), vision, { format: 'pt' });
    // the index: every tensor of both shards
    const st = SafetensorsFile.open(path.join(dir, shard1));
    const names1 = [...st.tensors.keys()];
    st.close();
    const weight_map = Object.fromEntries([...names1.map((n) => [n, shard1]), ...vision.map((t) => [t.name, shard2])]);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map }, null, 2) + '\n');
    const cfgPath = path.join(dir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    Object.assign(cfg, {
      architectures: ['Phi3VForCausalLM'],
      model_type: 'phi3_v',
      img_processor: { image_dim_out: s.hidden, model_name: 'openai/clip-vit-large-patch14-336', name: 'clip_vision_model', num_img_tokens: 144 },
      embd_layer: { embedding_cls: 'image', hd_transform_order: 'sub_glb', projection_cls: 'mlp', use_hd_transform: true, with_learnable_separator: true },
    });
    fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2) + '\n');
    fs.writeFileSync(
      path.join(dir, 'preprocessor_config.json'),
      JSON.stringify({ do_convert_rgb: true, image_mean: OPENAI_CLIP_MEAN, image_std: OPENAI_CLIP_STD, image_processor_type: 'Phi3VImageProcessor', num_crops: s.numCrops, num_img_tokens: 144, processor_class: 'Phi3VProcessor' }, null, 2) + '\n',
    );
    return [...r.files.filter((f) => f !== text), path.join(dir, shard1), path.join(dir, shard2), path.join(dir, 'model.safetensors.index.json'), path.join(dir, 'preprocessor_config.json')];
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** golden and test inputs: 1 + h·w crops of seeded values in the normalised pixels' range */
export function seededCrops(seed: number, n: number): Float32Array[] {
  const rng = new Rng(seed * 31 + 5);
  return Array.from({ length: n }, () => Float32Array.from({ length: 3 * 336 * 336 }, () => (rng.next() * 2 - 1) * 1.8));
}

/** a seeded test picture: smooth colour gradients, a few bands and noise, 8-bit RGB */
export function syntheticImage(seed: number, width: number, height: number): { width: number; height: number; data: Uint8Array } {
  const rng = new Rng(seed * 131 + 7);
  const data = new Uint8Array(width * height * 3);
  const fx = 1 + rng.int(7), fy = 1 + rng.int(5);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const band = Math.floor((x * fx + y * fy) / 37) % 2 ? 40 : 0;
      data[i] = Math.min(255, Math.floor((255 * x) / width) * 0.7 + band + rng.int(30));
      data[i + 1] = Math.min(255, Math.floor((255 * y) / height) * 0.8 + rng.int(40));
      data[i + 2] = Math.min(255, 128 + 100 * Math.sin((x * fx + y) / 23) + rng.int(20));
    }
  return { width, height, data };
}

/** a preprocessing golden's picture: which seed and size, how it is stored, and the num_crops it is run with */
export interface GoldenImage {
  name: string;
  seed: number;
  width: number;
  height: number;
  format: 'png' | 'jpeg';
  numCrops: number[];
}

/**
 * The preprocessing goldens' pictures. The last three have a width of s·336 and a height the HD size
 * keeps (at the num_crops given), so that no resampling happens and the tiles form an s×s grid: where
 * transformers.js's processor (√n×√n regions, sharp's resize) and Microsoft's (HD tiles, PIL's resize)
 * do the same operations (golden/vision/transformersjs/).
 */
export const GOLDEN_IMAGES: GoldenImage[] = [
  { name: 'wide-500x300', seed: 1, width: 500, height: 300, format: 'png', numCrops: [4, 16] },
  { name: 'tall-300x700', seed: 2, width: 300, height: 700, format: 'png', numCrops: [4, 16] },
  { name: 'exact-672x336', seed: 3, width: 672, height: 336, format: 'png', numCrops: [4, 16] },
  { name: 'small-100x100', seed: 4, width: 100, height: 100, format: 'png', numCrops: [4, 16] },
  { name: 'strip-1000x180', seed: 5, width: 1000, height: 180, format: 'png', numCrops: [4, 16] },
  { name: 'tall-336x1344', seed: 6, width: 336, height: 1344, format: 'png', numCrops: [4, 16] },
  { name: 'photo-400x250', seed: 7, width: 400, height: 250, format: 'jpeg', numCrops: [4, 16] },
  { name: 'square-672x672', seed: 8, width: 672, height: 672, format: 'png', numCrops: [4, 16] },
  { name: 'pad-1008x700', seed: 9, width: 1008, height: 700, format: 'png', numCrops: [9] },
  { name: 'pad-1344x1100', seed: 10, width: 1344, height: 1100, format: 'png', numCrops: [16] },
];

/** a golden picture's file: its name (`<name>.png` or `.jpg`) and bytes (PNG by pngjs, JPEG quality 90 by jpeg-js) */
export function goldenImageFile(name: string): { file: string; bytes: Uint8Array } {
  const g = GOLDEN_IMAGES.find((x) => x.name === name);
  if (!g) throw new RangeError(`no golden image '${name}' (${GOLDEN_IMAGES.map((x) => x.name).join(', ')})`);
  const im = syntheticImage(g.seed, g.width, g.height);
  const rgba = Buffer.alloc(g.width * g.height * 4, 255);
  for (let i = 0; i < g.width * g.height; i++) for (let c = 0; c < 3; c++) rgba[4 * i + c] = im.data[3 * i + c]!;
  if (g.format === 'jpeg') return { file: `${name}.jpg`, bytes: jpeg.encode({ width: g.width, height: g.height, data: rgba }, 90).data };
  const png = new PNG({ width: g.width, height: g.height });
  rgba.copy(png.data);
  return { file: `${name}.png`, bytes: PNG.sync.write(png) };
}
