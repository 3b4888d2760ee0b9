/**
 * Images → input embeddings for a Phi-3-vision model (Node): decode (PNG, JPEG), preprocess
 * (preprocess.ts), encode and project (clip.ts, phi3v.ts). The engine sees only ImageEncoder.
 */
import * as fs from 'node:fs';
import type { ImageEncoder } from '../engine.js';
import { decodeImage, preprocessImage } from './preprocess.js';
import { imageEmbeddings, imageTokenCount } from './phi3v.js';
import type { Phi3VImageSide } from './load.js';
import { FastPhi3V, visionPlan } from './fast.js';
import { WasmOps } from '../backend/wasm/ops.js';
import { nodeHost } from '../backend/wasm/node-host.js';
import type { Ops } from '../backend/ops.js';
import { GGMLType } from '../quant/ggml-type.js';
import { yieldToEventLoop } from '../generate/generate.js';

export class Phi3VEncoder implements ImageEncoder {
  /** exact: the float64 twin (clip.ts, phi3v.ts; slow, for the ref backend); else on the WASM kernels (fast.ts) */
  private constructor(
    readonly side: Phi3VImageSide,
    private readonly fast: { enc: FastPhi3V<unknown>; ops: WasmOps } | undefined,
  ) {}

  static async create(side: Phi3VImageSide, o: { exact?: boolean; threads: number; type?: 'Q8_0' | 'F16' }): Promise<Phi3VEncoder> {
    if (o.exact) return new Phi3VEncoder(side, undefined);
    const ops = new WasmOps(visionPlan(side.weights, o.threads), nodeHost);
    try {
      await ops.start();
      const enc = new FastPhi3V(side.weights, ops as Ops<unknown>, o.type === 'F16' ? GGMLType.F16 : GGMLType.Q8_0);
      await ops.start(); // again, should the weights have needed more banks
      return new Phi3VEncoder(side, { enc, ops });
    } catch (e) {
      ops.dispose();
      throw e;
    }
  }

  async close(): Promise<void> {
    const ops = this.fast?.ops as { close?: () => Promise<void>; dispose(): void } | undefined;
    if (ops?.close) await ops.close();
    else ops?.dispose();
  }

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

  async encodeAsync(bytes: Uint8Array, what: string): Promise<{ rows: Float32Array; count: number; seconds: number }> {
    if (!this.fast) return this.encode(bytes, what);
    const t0 = performance.now();
    const p = preprocessImage(decodeImage(bytes, what), this.side.numCrops);
    await yieldToEventLoop();
    const rows = await this.fast.enc.embeddingsAsync(p.crops, p.h, p.w, yieldToEventLoop);
    return { rows, count: imageTokenCount(p.h, p.w), seconds: (performance.now() - t0) / 1000 };
  }

  encode(bytes: Uint8Array, what: string): { rows: Float32Array; count: number; seconds: number } {
    const t0 = performance.now();
    const p = preprocessImage(decodeImage(bytes, what), this.side.numCrops);
    const rows = this.fast ? this.fast.enc.embeddings(p.crops, p.h, p.w) : Float32Array.from(imageEmbeddings(this.side.weights, p.crops, p.h, p.w));
    return { rows, count: imageTokenCount(p.h, p.w), seconds: (performance.now() - t0) / 1000 };
  }
}
