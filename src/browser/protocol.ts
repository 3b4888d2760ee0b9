/** Messages between the page (index.ts) and the model's Web Worker (worker.ts). */
import type { ChatMessage } from '../generate/chat.js';
import type { GenerateOptions, GenerationStats } from '../generate/generate.js';
import type { Phi3Config } from '../model/config.js';
import type { KvType } from '../backend/wasm/ops.js';

/** what a page may ask of loading (functions and signals stay on the page) */
export interface WorkerLoadOptions {
  ctx?: number;
  threads?: number;
  kvType?: KvType;
  swa?: boolean;
  checkWeights?: boolean;
}

export interface LoadRequest {
  op: 'load';
  id: number;
  source: { url?: string; blob?: Blob; cache?: boolean };
  options: WorkerLoadOptions;
  /** where build/kernels*.wasm are (default: ../../build/ from the worker bundle) */
  assetsUrl?: string;
}

export type WorkerRequest =
  | LoadRequest
  | { op: 'generate'; id: number; prompt?: string | number[]; messages?: ChatMessage[]; options?: Omit<GenerateOptions, 'signal'> }
  | { op: 'abort'; id: number; target: number }
  | { op: 'tokenize'; id: number; text: string; options?: { addBos?: boolean; special?: boolean } }
  | { op: 'detokenize'; id: number; ids: number[]; options?: { special?: boolean } }
  | { op: 'close'; id: number };

export interface ModelInfo {
  path: string;
  config: Phi3Config;
  ctx: number;
  threads: number;
  /** the kernel build: 'relaxed' or 'simd128' */
  simd: string;
  loadSeconds: number;
  weightsBytes: number;
  chatTemplate: string | undefined;
  /** what loading warned of (key: message) */
  warnings: string[];
}

export type WorkerEvent =
  | { event: 'progress'; id: number; phase: 'download' | 'load'; loaded: number; total: number; cached?: boolean }
  | { event: 'result'; id: number; value: unknown }
  | { event: 'chunk'; id: number; text: string; token: number; logprob?: number; topLogprobs?: { token: number; logprob: number }[] }
  | { event: 'done'; id: number; stats: GenerationStats }
  | { event: 'error'; id: number; error: { name: string; message: string } };
