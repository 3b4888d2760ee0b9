/**
 * The library API: loadModel() → a Model that tokenizes, computes logits and generates text.
 *
 * One Model owns one GGUF file, one backend and one KV cache; calls on it run one at a time
 * (a generation holds the model until it finishes or is aborted).
 */
import { GGUFFile } from './gguf/reader.js';
import * as os from 'node:os';
import { RefOps } from './backend/ref/ops.js';
import { WasmOps, planFor } from './backend/wasm/ops.js';
import type { Ops } from './backend/ops.js';
import { configFromGguf, estimateMemory, type Phi3Config } from './model/config.js';
import { Phi3, ContextLengthError } from './model/phi3.js';
import { SpmTokenizer } from './tokenizer/spm.js';
import { generate, type GenerateOptions, type GenerationStats, type GeneratedChunk } from './generate/generate.js';
import { renderChat, type ChatMessage } from './generate/chat.js';

export { ContextLengthError } from './model/phi3.js';
export { GgufError } from './gguf/types.js';
export { UnsupportedModelError } from './model/config.js';
export { TokenizerError } from './tokenizer/spm.js';
export type { GenerateOptions, GenerationStats, GeneratedChunk } from './generate/generate.js';
export type { ChatMessage } from './generate/chat.js';

export type BackendName = 'wasm' | 'ref';

export interface LoadOptions {
  /** context length in tokens (default: the model's trained context) */
  ctx?: number;
  backend?: BackendName;
  /** worker threads for the wasm backend (default: available cores) */
  threads?: number;
  /** called as tensor bytes load */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

export interface LoadStats {
  loadSeconds: number;
  weightsBytes: number;
}

export interface Generation extends AsyncIterable<string> {
  /** resolves when generation ends */
  readonly stats: Promise<GenerationStats>;
}

export class Model {
  private history: number[] = [];
  private busy = false;

  /** tokenizer.chat_template of the file, if any */
  readonly chatTemplate: string | undefined;

  constructor(
    readonly path: string,
    readonly config: Phi3Config,
    readonly tokenizer: SpmTokenizer,
    readonly phi3: Phi3,
    readonly loadStats: LoadStats,
    private readonly file: GGUFFile,
  ) {
    this.chatTemplate = file.optString('tokenizer.chat_template');
  }

  get ctx(): number {
    return this.phi3.ctx;
  }

  tokenize(text: string, opts: { addBos?: boolean; special?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { addSpecial: opts.addBos ?? true, parseSpecial: opts.special ?? false });
  }

  detokenize(ids: number[], opts: { special?: boolean } = {}): string {
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.tokenizer.vocabSize - 1})`);
    return this.tokenizer.decode(ids, { special: opts.special });
  }

  private claim(): void {
    if (this.busy) throw new Error('the model is busy with another call; calls run one at a time');
    this.busy = true;
  }

  /** logits after each token (all = every position, else only the last); starts a fresh cache */
  logits(tokens: number[], opts: { all?: boolean } = {}): Float32Array[] {
    if (tokens.length === 0) throw new RangeError('no tokens');
    for (const id of tokens) if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.config.vocabSize - 1})`);
    if (tokens.length > this.ctx) throw new ContextLengthError(tokens.length, this.ctx, 'the tokens');
    this.claim();
    try {
      this.phi3.reset();
      this.history = [];
      return this.phi3.forward(tokens, { allLogits: opts.all ?? false });
    } finally {
      this.phi3.reset();
      this.busy = false;
    }
  }

  /**
   * Stream generated tokens for a prompt (text or token ids), with their text and, when asked,
   * log-probabilities. Text prompts get BOS per the vocabulary and special tokens parsed (so chat
   * markup works). The KV cache is kept between calls: only tokens after the prefix shared with
   * the previous call are computed.
   */
  stream(prompt: string | number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedChunk, GenerationStats> {
    const ids = typeof prompt === 'string' ? this.tokenize(prompt, { special: true }) : prompt;
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.config.vocabSize - 1})`);
    const maxTokens = opts.maxTokens ?? 256;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`max_tokens must be a positive integer, got ${maxTokens}`);
    if (ids.length + maxTokens > this.ctx) throw new ContextLengthError(ids.length + maxTokens, this.ctx, `prompt (${ids.length} tokens) plus max_tokens (${maxTokens})`);
    this.claim();
    const self = this;
    async function* run(): AsyncGenerator<GeneratedChunk, GenerationStats> {
      try {
        return yield* generate(self.phi3, self.tokenizer, ids, self.history, { ...opts, reuseCache: opts.reuseCache ?? true });
      } catch (e) {
        // a failed or interrupted step leaves the cache in an unknown state: start over next time
        self.phi3.reset();
        self.history = [];
        throw e;
      } finally {
        self.busy = false;
      }
    }
    return run();
  }

  /** Stream text (see stream()); `stats` resolves when generation ends. */
  generate(prompt: string | number[], opts: GenerateOptions = {}): Generation {
    const it = this.stream(prompt, opts);
    let resolve!: (s: GenerationStats) => void, reject!: (e: unknown) => void;
    const stats = new Promise<GenerationStats>((res, rej) => ((resolve = res), (reject = rej)));
    stats.catch(() => {});
    async function* text(): AsyncGenerator<string> {
      try {
        for (;;) {
          const r = await it.next();
          if (r.done) {
            resolve(r.value);
            return;
          }
          if (r.value.text) yield r.value.text;
        }
      } catch (e) {
        reject(e);
        throw e;
      } finally {
        await it.return?.(undefined as never);
      }
    }
    const gen = text();
    return { stats, [Symbol.asyncIterator]: () => gen };
  }

  /** the chat prompt for messages: the file's chat template (or Phi-3's), ending with the assistant's turn */
  chatPrompt(messages: ChatMessage[]): string {
    const t = this.tokenizer;
    return renderChat(messages, {
      template: this.chatTemplate,
      bosToken: t.bos >= 0 ? t.decode([t.bos], { special: true }) : '',
      eosToken: t.eos >= 0 ? t.decode([t.eos], { special: true }) : '',
      addGenerationPrompt: true,
    });
  }

  /** Stream an assistant reply to messages; `<|end|>` (an end-of-generation token) ends the turn. */
  chat(messages: ChatMessage[], opts: GenerateOptions = {}): Generation {
    return this.generate(this.tokenize(this.chatPrompt(messages), { special: true, addBos: false }), opts);
  }

  /** release the weights, stop worker threads, close the file */
  dispose(): void {
    this.phi3.ops.dispose();
    this.file.close();
  }

  /** dispose and wait until worker threads have exited */
  async close(): Promise<void> {
    const ops = this.phi3.ops as { close?: () => Promise<void> };
    this.file.close();
    if (ops.close) await ops.close();
    else this.phi3.ops.dispose();
  }
}

/** largest batch of prompt tokens one forward pass processes */
const MAX_BATCH = 64;

function makeOps(backend: BackendName, config: Phi3Config, ctx: number, threads: number): Ops<unknown> {
  switch (backend) {
    case 'ref':
      return new RefOps() as Ops<unknown>;
    case 'wasm':
      return new WasmOps(planFor(config, ctx, MAX_BATCH, threads)) as Ops<unknown>;
    default:
      throw new RangeError(`unknown backend '${backend as string}' (expected wasm or ref)`);
  }
}

/** the model will not fit in this machine's memory */
export class OutOfMemoryError extends Error {
  override name = 'OutOfMemoryError';
}

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<Model> {
  const t0 = performance.now();
  const file = GGUFFile.open(path);
  try {
    const config = configFromGguf(file);
    const tokenizer = new SpmTokenizer(file);
    const ctx = opts.ctx ?? config.contextLength;
    if (!Number.isInteger(ctx) || ctx < 1) throw new RangeError(`ctx must be a positive integer, got ${ctx}`);
    const total = file.tensors.reduce((a, t) => a + t.byteSize, 0);
    const est = estimateMemory(config, total, ctx);
    if (est.totalBytes > os.totalmem())
      throw new OutOfMemoryError(
        `${path}: running at ctx ${ctx} needs about ${(est.totalBytes / 2 ** 30).toFixed(2)} GiB (weights ${(est.weightsBytes / 2 ** 30).toFixed(2)} + KV cache ${(est.kvCacheBytes / 2 ** 30).toFixed(2)} + scratch), but this machine has ${(os.totalmem() / 2 ** 30).toFixed(2)} GiB; try a smaller --ctx or a smaller quantization`,
      );
    const threads = opts.threads ?? os.availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
    let loaded = 0;
    const backend = opts.backend ?? 'wasm';
    const ops = makeOps(backend, config, ctx, threads);
    let phi3: Phi3<unknown>;
    try {
      // the crew starts first and reads the weights with the main thread; starting it again after
      // is a no-op unless the weights took more memory banks
      if (ops instanceof WasmOps) await ops.start();
      phi3 = Phi3.load(file, ops, {
        ctx,
        maxBatch: MAX_BATCH,
        onTensor: (b) => {
          loaded += b;
          opts.signal?.throwIfAborted();
          opts.onProgress?.(loaded, total);
        },
      });
      if (ops instanceof WasmOps) await ops.start();
    } catch (e) {
      ops.dispose();
      throw e;
    }
    return new Model(path, config, tokenizer, phi3, { loadSeconds: (performance.now() - t0) / 1000, weightsBytes: total }, file);
  } catch (e) {
    file.close();
    throw e;
  }
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
export async function benchModel(path: string, o: { nPrompt: number; nGen: number; threads?: number; backend?: BackendName }): Promise<BenchResult> {
  const t0 = performance.now();
  const model = await loadModel(path, { ctx: o.nPrompt + o.nGen + 8, threads: o.threads, backend: o.backend });
  const load_s = (performance.now() - t0) / 1000;
  try {
    const v = model.config.vocabSize;
    const prompt = [model.tokenizer.bos >= 0 ? model.tokenizer.bos : 1, ...Array.from({ length: o.nPrompt - 1 }, (_, i) => 300 + ((i * 7919) % Math.max(1, v - 400)))];
    const phi3 = model.phi3;
    phi3.reset();
    const t1 = performance.now();
    let logits = phi3.forward(prompt)[0]!;
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
