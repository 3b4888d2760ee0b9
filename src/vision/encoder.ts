/**
 * Images → input embeddings for a Phi-3-vision model (Node): decode (PNG, JPEG), preprocess
 * (preprocess.ts), encode and project (clip.ts, phi3v.ts). The engine sees only ImageEncoder.
 */
import * as fs from 'node:fs';
import type { ImageEncoder } from '../engine.js';
import { decodeImage, preprocessImage } from './preprocess.js';
import { imageEmbeddings, imageTokenCount } from './phi3v.js';
import type { Phi3VImageSide } from './load.js';

export class Phi3VEncoder implements ImageEncoder {
  constructor(readonly side: Phi3VImageSide) {}

  get dim(): number {
    return this.side.weights.dim;
  }
  get numCrops(): number {
    return this.side.numCrops;
  }

  read(path: string): Uint8Array {
    try {
      return fs.readFileSync(path);
    } catch (e) {
      throw new TypeError(`cannot read the image ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  encode(bytes: Uint8Array, what: string): { rows: Float32Array; count: number; seconds: number } {
    const t0 = performance.now();
    const p = preprocessImage(decodeImage(bytes, what), this.side.numCrops);
    const rows = Float32Array.from(imageEmbeddings(this.side.weights, p.crops, p.h, p.w));
    return { rows, count: imageTokenCount(p.h, p.w), seconds: (performance.now() - t0) / 1000 };
  }
}
