/**
 * The library API: loadModel() → a Model that tokenizes, computes logits and generates text.
 *
 * One Model owns one GGUF file, one backend and one KV cache; calls on it run one at a time
 * (a generation holds the model until it finishes or is aborted).
 */
import { GGUFFile } from './gguf/reader.js';
import { RefOps } from './backend/ref/ops.js';
import type { Ops } from './backend/ops.js';
import { configFromGguf, estimateMemory, type Phi3Config } from './model/config.js';
import { Phi3, ContextLengthError } from './model/phi3.js';
import { SpmTokenizer } from './tokenizer/spm.js';
import { generate, type GenerateOptions, type GenerationStats } from './generate/generate.js';

export { ContextLengthError } from './model/phi3.js';
export { GgufError } from './gguf/types.js';
export { UnsupportedModelError } from './model/config.js';
export { TokenizerError } from './tokenizer/spm.js';
export type { GenerateOptions, GenerationStats } from './generate/generate.js';

export type BackendName = 'ref';

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

  constructor(
    readonly path: string,
    readonly config: Phi3Config,
    readonly tokenizer: SpmTokenizer,
    readonly phi3: Phi3,
    readonly loadStats: LoadStats,
    private readonly file: GGUFFile,
  ) {}

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
   * Stream text for a prompt (text or token ids). Text prompts get BOS per the vocabulary and
   * special tokens parsed (so chat markup works).
   */
  generate(prompt: string | number[], opts: GenerateOptions = {}): Generation {
    const ids = typeof prompt === 'string' ? this.tokenize(prompt, { special: true }) : prompt;
    const maxTokens = opts.maxTokens ?? 256;
    if (ids.length + maxTokens > this.ctx) throw new ContextLengthError(ids.length + maxTokens, this.ctx, `prompt (${ids.length} tokens) plus max_tokens (${maxTokens})`);
    this.claim();
    let resolve!: (s: GenerationStats) => void, reject!: (e: unknown) => void;
    const stats = new Promise<GenerationStats>((res, rej) => ((resolve = res), (reject = rej)));
    stats.catch(() => {});
    const self = this;
    async function* run(): AsyncGenerator<string> {
      try {
        const it = generate(self.phi3, self.tokenizer, ids, self.history, { ...opts, reuseCache: opts.reuseCache ?? true });
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
        self.busy = false;
      }
    }
    const gen = run();
    return { stats, [Symbol.asyncIterator]: () => gen };
  }

  dispose(): void {
    this.phi3.ops.dispose();
    this.file.close();
  }
}

function makeOps(backend: BackendName): Ops<unknown> {
  switch (backend) {
    case 'ref':
      return new RefOps() as Ops<unknown>;
    default:
      throw new RangeError(`unknown backend '${backend as string}' (expected ref)`);
  }
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
    estimateMemory(config, total, ctx);
    let loaded = 0;
    const phi3 = Phi3.load(file, makeOps(opts.backend ?? 'ref'), {
      ctx,
      onTensor: (b) => {
        loaded += b;
        opts.signal?.throwIfAborted();
        opts.onProgress?.(loaded, total);
      },
    });
    return new Model(path, config, tokenizer, phi3, { loadSeconds: (performance.now() - t0) / 1000, weightsBytes: total }, file);
  } catch (e) {
    file.close();
    throw e;
  }
}
