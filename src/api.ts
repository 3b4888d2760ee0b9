/**
 * The library API for Node: loadModel(path) → a Model (engine.ts) that tokenizes, computes logits
 * and generates text. A path is a GGUF file or a Hugging Face folder (converted once, cached).
 * Node's platform: files by descriptor, Piscina's worker threads, chat templates rendered in a
 * worker under limits, the machine's memory and cores from node:os.
 */
import * as os from 'node:os';
import { openGguf } from './gguf/file-source.js';
import { nodeHost } from './backend/wasm/node-host.js';
import { TemplateRunner } from './generate/template-runner.js';
import { CONVERT_TYPES, cachedHfGguf, isHfFolder } from './convert/convert-hf.js';
import { openModel, validateLoadOptions, type BackendName, type LoadOptions, type Model } from './engine.js';
import type { KvType } from './backend/wasm/ops.js';
import { loadPhi3VImageSide, isVisionFolder, type Phi3VImageSide } from './vision/load.js';
import { Phi3VEncoder } from './vision/encoder.js';

export * from './engine.js';

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<Model> {
  if (typeof path !== 'string') throw new TypeError('the model path must be a string');
  validateLoadOptions(opts);
  if (opts.type !== undefined && !CONVERT_TYPES.includes(opts.type)) throw new RangeError(`type must be one of ${CONVERT_TYPES.join(', ')}, got ${JSON.stringify(opts.type)}`);
  if (opts.cacheDir !== undefined && typeof opts.cacheDir !== 'string') throw new TypeError('cacheDir must be a string');
  opts.signal?.throwIfAborted();
  const t0 = performance.now();
  let vision: Phi3VImageSide | undefined;
  if (isHfFolder(path)) {
    // Phi-3.5-vision: the text model converted as any Phi-3 folder, the image side read from the folder
    vision = isVisionFolder(path) ? loadPhi3VImageSide(path) : undefined;
    path = cachedHfGguf(path, { type: opts.type, cacheDir: opts.cacheDir }).path;
  } else if (opts.type !== undefined) throw new RangeError(`type '${opts.type}' applies to a Hugging Face folder; ${path} is not one`);
  const file = openGguf(path);
  const model = await openModel(file, opts, { wasm: nodeHost, cores: os.availableParallelism(), memoryBytes: os.totalmem(), templates: new TemplateRunner() }, t0);
  if (vision) {
    // the image side on its own WASM memory and crew (exact float64 with the ref backend)
    try {
      model.vision = await Phi3VEncoder.create(vision, { exact: opts.backend === 'ref', threads: Math.min(opts.threads ?? os.availableParallelism(), os.availableParallelism()), type: opts.visionType });
    } catch (e) {
      await model.close();
      throw e;
    }
  }
  return model;
}

export interface BenchResult {
  load_s: number;
  prefill_tok_s: number;
  decode_tok_s: number;
  peak_rss_mb: number;
}

/**
 * Load, prefill `nPrompt` tokens, then decode `nGen` tokens greedily (every step a full forward of
 * one token); the numbers `phi3 bench --json` prints. Prompt tokens are a fixed, valid sequence.
 */
export async function benchModel(path: string, o: { nPrompt: number; nGen: number; threads?: number; backend?: BackendName; kvType?: KvType }): Promise<BenchResult> {
  const t0 = performance.now();
  const model = await loadModel(path, { ctx: o.nPrompt + o.nGen + 8, threads: o.threads, backend: o.backend, kvType: o.kvType });
  const load_s = (performance.now() - t0) / 1000;
  try {
    const v = model.config.vocabSize;
    const prompt = [model.tokenizer.bos >= 0 ? model.tokenizer.bos : 1, ...Array.from({ length: o.nPrompt - 1 }, (_, i) => 300 + ((i * 7919) % Math.max(1, v - 400)))];
    const phi3 = model.phi3;
    phi3.reset();
    const t1 = performance.now();
    let logits = phi3.forward(prompt)[0]!; // the CLI's own measurement: the crew is the model's alone here
    const prefill_s = (performance.now() - t1) / 1000;
    const t2 = performance.now();
    for (let i = 0; i < o.nGen; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
      logits = phi3.forward([best])[0]!;
    }
    const decode_s = (performance.now() - t2) / 1000;
    return { load_s, prefill_tok_s: o.nPrompt / prefill_s, decode_tok_s: o.nGen / decode_s, peak_rss_mb: process.resourceUsage().maxRSS / 1024 };
  } finally {
    await model.close();
  }
}
