/**
 * phi3-ts in a browser (`import { loadModel } from 'phi3-ts/browser'`): the same reader, tokenizer,
 * model, kernels and generation as in Node, run in a Web Worker with a crew of Web Workers.
 *
 *   const model = await loadModel('https://…/model.gguf', { onProgress });   // or a File / Blob
 *   for await (const text of model.generate('Once upon a time', { maxTokens: 64 })) out.textContent += text;
 *
 * A URL is downloaded once into the Origin Private File System and read from there (a File is read
 * where it lies); the weights go straight into WebAssembly memory, never whole into the JS heap.
 * The page must be cross-origin isolated (COOP/COEP headers) for shared memory: `phi3 web` serves
 * such a page.
 */
import type { ChatMessage } from '../generate/chat.js';
import type { GenerateOptions, GenerationStats, GeneratedChunk } from '../generate/generate.js';
import { textGeneration, type Generation } from '../generate/generation.js';
import type { ModelInfo, WorkerEvent, WorkerLoadOptions, WorkerRequest } from './protocol.js';

export type { ModelInfo } from './protocol.js';
export type { GenerateOptions, GenerationStats, GeneratedChunk } from '../generate/generate.js';
export type { Generation } from '../generate/generation.js';
export type { ChatMessage } from '../generate/chat.js';

export interface LoadProgress {
  /** 'download': a URL into the OPFS cache; 'load': tensors into WebAssembly memory */
  phase: 'download' | 'load';
  loaded: number;
  total: number;
  /** download: the file was in the cache already */
  cached?: boolean;
}

export interface BrowserLoadOptions extends WorkerLoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /** keep a downloaded URL in the Origin Private File System (default true); false reads it by range requests */
  cache?: boolean;
  /** the worker bundle (default: phi3-worker.js beside this module) */
  workerUrl?: string | URL;
  /** where kernels.wasm and kernels-relaxed.wasm are (default: the package's build/) */
  assetsUrl?: string | URL;
  signal?: AbortSignal;
}

/** an error from the worker, with its name (GgufError, UnsupportedModelError, ContextLengthError, …) */
export class ModelError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

type Listener = (e: WorkerEvent) => void;
/** a request without its id (distributed over the union) */
type Request = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

export class BrowserModel {
  private nextId = 1;
  private readonly listeners = new Map<number, Listener>();
  private closed = false;

  constructor(
    private readonly worker: Worker,
    readonly info: ModelInfo,
  ) {
    worker.addEventListener('message', (e: MessageEvent<WorkerEvent>) => this.listeners.get(e.data.id)?.(e.data));
  }

  get config() {
    return this.info.config;
  }

  private request<T>(req: Request): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the model is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.listeners.set(id, (e) => {
        if (e.event === 'result') resolve(e.value as T);
        else if (e.event === 'error') reject(new ModelError(e.error.name, e.error.message));
        else return;
        this.listeners.delete(id);
      });
      this.worker.postMessage({ ...req, id });
    });
  }

  tokenize(text: string, options: { addBos?: boolean; special?: boolean } = {}): Promise<number[]> {
    return this.request({ op: 'tokenize', text, options });
  }

  detokenize(ids: number[], options: { special?: boolean } = {}): Promise<string> {
    return this.request({ op: 'detokenize', ids, options });
  }

  /**
   * Stream generated tokens (text, token id, log-probabilities when asked) for a prompt or, with
   * `messages`, a chat. Generations queue in the worker and run one at a time. `signal` or
   * breaking out of the loop stops it at the next token.
   */
  stream(prompt: string | number[] | { messages: ChatMessage[] }, options: GenerateOptions = {}): AsyncGenerator<GeneratedChunk, GenerationStats> {
    const { signal, ...rest } = options;
    const id = this.nextId++;
    const queue: WorkerEvent[] = [];
    let wake: (() => void) | undefined;
    this.listeners.set(id, (e) => {
      queue.push(e);
      wake?.();
    });
    const req = typeof prompt === 'object' && !Array.isArray(prompt) ? { messages: prompt.messages } : { prompt };
    if (this.closed) throw new Error('the model is closed');
    this.worker.postMessage({ op: 'generate', id, ...req, options: rest });
    const abort = () => this.worker.postMessage({ op: 'abort', id: this.nextId++, target: id });
    signal?.addEventListener('abort', abort);
    const self = this;
    async function* run(): AsyncGenerator<GeneratedChunk, GenerationStats> {
      let finished = false;
      try {
        for (;;) {
          while (queue.length === 0) await new Promise<void>((r) => (wake = r));
          const e = queue.shift()!;
          if (e.event === 'chunk') yield { text: e.text, token: e.token, logprob: e.logprob, topLogprobs: e.topLogprobs };
          else if (e.event === 'done') return (finished = true), e.stats;
          else if (e.event === 'error') throw ((finished = true), new ModelError(e.error.name, e.error.message));
        }
      } finally {
        if (!finished) abort(); // the caller stopped early
        signal?.removeEventListener('abort', abort);
        self.listeners.delete(id);
      }
    }
    return run();
  }

  /** stream text; `stats` resolves when the generation ends */
  generate(prompt: string | number[] | { messages: ChatMessage[] }, options: GenerateOptions = {}): Generation {
    return textGeneration(() => this.stream(prompt, options));
  }

  /** an assistant reply to messages, through the file's chat template */
  chat(messages: ChatMessage[], options: GenerateOptions = {}): Generation {
    return this.generate({ messages }, options);
  }

  /** stop the worker and its crew, and free the model's memory */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.request({ op: 'close' }).catch(() => {});
    this.closed = true;
    this.worker.terminate();
  }
}

/**
 * Load a GGUF from a URL (downloaded into the OPFS cache once) or a File/Blob, in a new Web Worker.
 * Progress comes through `onProgress`; errors are ModelErrors named as in Node (GgufError, …).
 */
export async function loadModel(source: string | URL | Blob, options: BrowserLoadOptions = {}): Promise<BrowserModel> {
  if (!globalThis.crossOriginIsolated)
    throw new Error(
      'phi3-ts needs a cross-origin isolated page for shared WebAssembly memory: serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp (`phi3 web` does)',
    );
  const { onProgress, cache, workerUrl, assetsUrl, signal, ...load } = options;
  signal?.throwIfAborted();
  const worker = new Worker(workerUrl ?? new URL('./phi3-worker.js', import.meta.url), { type: 'module', name: 'phi3-model' });
  const src = source instanceof Blob ? { blob: source } : { url: new URL(String(source), location.href).href, cache };
  const info = await new Promise<ModelInfo>((resolve, reject) => {
    const onAbort = () => (worker.terminate(), reject(signal!.reason ?? new DOMException('aborted', 'AbortError')));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.addEventListener('error', (e) => reject(new Error(`the phi3-ts worker failed to start: ${e.message || 'see the console'}`)), { once: true });
    const onMessage = (e: MessageEvent<WorkerEvent>) => {
      const m = e.data;
      if (m.id !== 0) return;
      if (m.event === 'progress') onProgress?.({ phase: m.phase, loaded: m.loaded, total: m.total, cached: m.cached });
      else if (m.event === 'result' || m.event === 'error') {
        worker.removeEventListener('message', onMessage);
        signal?.removeEventListener('abort', onAbort);
        if (m.event === 'result') resolve(m.value as ModelInfo);
        else (worker.terminate(), reject(new ModelError(m.error.name, m.error.message)));
      }
    };
    worker.addEventListener('message', onMessage);
    worker.postMessage({ op: 'load', id: 0, source: src, options: load, assetsUrl: assetsUrl && new URL(String(assetsUrl), location.href).href });
  });
  return new BrowserModel(worker, info);
}
