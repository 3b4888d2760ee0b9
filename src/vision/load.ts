/**
 * The image side of a Phi3VForCausalLM folder (Phi-3.5-vision-instruct): the CLIP tower, the HD
 * separators and the projection as F32 (F16/BF16 widened: it runs once per image), and
 * preprocessor_config.json's num_crops. The text model is converted as any Phi-3 folder is.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HfFolder, HfFolderError } from '../hf/folder.js';
import { phi3vWeights, type Phi3VWeights } from './phi3v.js';
import { CLIP_IMAGE, CLIP_PATCH } from './clip.js';

export interface Phi3VImageSide {
  weights: Phi3VWeights;
  /** the most sub-image crops an image is cut into (preprocessor_config.json num_crops) */
  numCrops: number;
}

export function loadPhi3VImageSide(dir: string): Phi3VImageSide {
  const hf = HfFolder.open(dir);
  try {
    const v = hf.config.vision;
    if (!v) throw new HfFolderError(`${dir}: not a Phi3VForCausalLM folder (config.json model_type is not phi3_v)`);
    const weights = phi3vWeights((name) => {
      const t = hf.tensor(name);
      return t && { data: t.file.readF32(name), shape: t.info.shape };
    }, v);
    const pp = path.join(dir, 'preprocessor_config.json');
    const numCrops = fs.existsSync(pp) ? (JSON.parse(fs.readFileSync(pp, 'utf8')).num_crops ?? 16) : 16;
    if (!Number.isInteger(numCrops) || numCrops < 1) throw new HfFolderError(`${pp}: num_crops must be a positive integer, got ${JSON.stringify(numCrops)}`);
    return { weights, numCrops };
  } finally {
    hf.close();
  }
}

/** a folder whose config.json is a Phi3VForCausalLM's */
export function isVisionFolder(dir: string): boolean {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).model_type === 'phi3_v';
  } catch {
    return false;
  }
}

/** what `phi3 inspect` reports of a vision folder's image side */
export interface VisionSummary {
  image: number;
  patch: number;
  hidden: number;
  intermediate: number;
  heads: number;
  layersRun: number;
  layersInFile: number;
  layerIdx: number;
  order: string;
  numCrops: number;
  dim: number;
  params: number;
}

export function visionSummary(dir: string): VisionSummary {
  const side = loadPhi3VImageSide(dir);
  const hf = HfFolder.open(dir);
  try {
    const v = hf.config.vision!;
    const prefix = 'model.vision_embed_tokens.';
    let params = 0, layers = 0;
    for (const [n, t] of hf.tensors) {
      if (!n.startsWith(prefix)) continue;
      params += t.info.nElements;
      const m = /encoder\.layers\.(\d+)\./.exec(n);
      if (m) layers = Math.max(layers, Number(m[1]) + 1);
    }
    const c = side.weights.clip.shape;
    return { image: CLIP_IMAGE, patch: CLIP_PATCH, hidden: c.hidden, intermediate: c.intermediate, heads: c.heads, layersRun: c.layersRun, layersInFile: layers, layerIdx: v.layerIdx, order: side.weights.order, numCrops: side.numCrops, dim: side.weights.dim, params };
  } finally {
    hf.close();
  }
}
