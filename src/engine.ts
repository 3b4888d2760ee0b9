/**
 * The platform-free half of the library API: a Model that tokenizes, computes logits and generates
 * text, and openModel(), which builds one from a parsed GGUF and a platform (ModelHost). Node's
 * loadModel(path) is in api.ts; a browser's in src/browser/.
 *
 * One Model owns one GGUF file, one backend and `parallel` sequences, each with its own KV cache
 * (one by default). A call that uses a KV cache (logits, generate, stream, chat) takes a free
 * sequence, in call order, and up to `parallel` generations run at once, batched into each forward
 * pass (generate/batcher.ts). A generation takes its sequence when it is first iterated and gives it
 * back when it ends — done, aborted, `break` out of the loop, `return()`/`throw()` on the iterator,
 * or, for one abandoned mid-way, when it is garbage-collected.
 */
import type { GGUFFile } from './gguf/reader.js';
import { RefOps } from './backend/ref/ops.js';
import { WasmOps, planFor, KV_TYPES, kvTypeBytes, type KvType, type WasmHost } from './backend/wasm/ops.js';
import type { Ops } from './backend/ops.js';
import { numericsByName, type Numerics, type NumericsName } from './backend/numerics.js';
import { UnsupportedModelError, checkWeights, configFromGguf, estimateMemory, validateTensors, type ConfigWarning, type Phi3Config } from './model/config.js';
import { Phi3, ContextLengthError, type Sequence } from './model/phi3.js';
import { Batcher } from './generate/batcher.js';
import { SpmTokenizer } from './tokenizer/spm.js';
import { generate, sharedPrefix, validateGenerateOptions, type GenerateOptions, type GenerationStats, type GeneratedChunk } from './generate/generate.js';
import { textGeneration, type Generation } from './generate/generation.js';
import { renderChat, renderChatSegments, type ChatMessage, type ChatSegment } from './generate/chat.js';
import { PHI4_CHAT_TEMPLATE } from './generate/phi3-template.js';
import type { TemplateRenderer } from './generate/templates.js';
import { ToolsUnsupportedError, toolFormat, toolRequest, toolsForTemplate, validateTools, withToolCalls, type FunctionTool, type SentToolCall, type ToolChoice, type ToolFormat } from './generate/tools.js';

/** what turns an image into a vision model's input embeddings (Node: vision/encoder.ts) */
export interface ImageEncoder {
  /** the text model's width: each embedding row's length */
  readonly dim: number;
  /** an image file's bytes, from a path */
  read(path: string): Uint8Array;
  /** an image file's bytes → its rows (count × dim) */
  encode(bytes: Uint8Array, what: string): { rows: Float32Array; count: number; seconds: number };
  /** the same, giving the event loop turns while it runs (what servers and chat() use) */
  encodeAsync(bytes: Uint8Array, what: string): Promise<{ rows: Float32Array; count: number; seconds: number }>;
  /** stop its worker threads (Model.close calls it) */
  close(): Promise<void>;
}

/** a part of a message's content: text, or an image (a file's bytes, or its path) for a vision model */
export type ChatContentPart = { type: 'text'; text: string } | { type: 'image'; image: Uint8Array | string };

/** a chat message as callers give it: content text, or parts with images (Phi-3.5-vision) */
export type ChatInput = Omit<ChatMessage, 'content'> & { content: string | ChatContentPart[] };

/** some message has an image part */
function hasImages(messages: (ChatMessage | ChatInput)[]): boolean {
  return Array.isArray(messages) && messages.some((m) => m && Array.isArray(m.content) && (m.content as ChatContentPart[]).some((p) => p?.type === 'image'));
}

/** Model.chat's options: generation, and tools the model may call */
export interface ChatOptions extends GenerateOptions {
  /** parse special-token text inside message content (unsafe: users can forge turns) */
  parseSpecialInContent?: boolean;
  /** functions the model may call (OpenAI's shape); the calls come back in Generation.toolCalls */
  tools?: FunctionTool[];
  /** auto (default), none, required, or {type: 'function', function: {name}} */
  toolChoice?: ToolChoice;
  /** several calls in one turn (default true) */
  parallelToolCalls?: boolean;
}
export { TemplateError } from './generate/templates.js';
export { NonFiniteLogitsError } from './generate/generate.js';

export { ContextLengthError } from './model/phi3.js';
export { GgufError } from './gguf/types.js';
export { UnsupportedModelError, type Phi3Config, type ConfigWarning } from './model/config.js';
export { TokenizerError } from './tokenizer/spm.js';
export { CrewError } from './backend/wasm/crew.js';
export type { GenerateOptions, GenerationStats, GeneratedChunk, FinishReason } from './generate/generate.js';
export type { Generation } from './generate/generation.js';
export type { SamplingOptions } from './generate/sampler.js';
export type { ChatMessage } from './generate/chat.js';

/** one sequence of the model and the tokens its KV cache holds, in order */
interface Slot {
  seq: Sequence;
  history: number[];
  busy: boolean;
  /** when it was last given out (an idle slot with no shared prefix goes to the least recently used) */
  used: number;
}

/** a slot's KV cache and its record of it start over */
function forget(slot: Slot): void {
  slot.seq.nPast = 0;
  slot.history = [];
}

/** a slot's cache is reused when it shares at least this share of the prompt */
const SIMILAR = 0.5;

/**
 * Who runs on the model, first come first served: each call takes one free slot — the idle one
 * whose cached tokens share the longest prefix with its prompt (prompt-cache reuse), else the least
 * recently used — and gives it back when it ends.
 */
class Slots {
  private readonly waiting: { ids: readonly number[]; grant: (s: Slot) => void }[] = [];
  private clock = 0;
  constructor(readonly slots: Slot[]) {}

  take(ids: readonly number[]): Promise<Slot> {
    return new Promise((grant) => (this.waiting.push({ ids, grant }), this.pump()));
  }
  release(slot: Slot): void {
    slot.busy = false;
    this.pump();
  }

  private pump(): void {
    while (this.waiting.length) {
      const head = this.waiting[0]!;
      const free = this.slots.filter((s) => !s.busy);
      if (free.length === 0) return;
      this.waiting.shift();
      // the slot sharing the longest prefix, when that is at least half the prompt (llama-server's
      // slot_prompt_similarity); else the least recently used, so that one conversation does not
      // evict another's cache for the sake of a shared BOS
      let best = free[0]!, bestShared = -1;
      for (const s of free) {
        const n = sharedPrefix(s.history, head.ids);
        if (n > bestShared || (n === bestShared && s.used < best.used)) (best = s), (bestShared = n);
      }
      if (bestShared < SIMILAR * head.ids.length) best = free.reduce((a, b) => (b.used < a.used ? b : a));
      best.busy = true;
      best.used = ++this.clock;
      head.grant(best);
    }
  }
}

/** a generation abandoned mid-way (never finished, never returned) gives the model back when collected */
const abandoned = new FinalizationRegistry<{ release?: () => void }>((t) => t.release?.());

export type BackendName = 'wasm' | 'ref';

export interface LoadOptions {
  /** context length in tokens (default: the model's trained context) */
  ctx?: number;
  backend?: BackendName;
  /** what the ref backend rounds (default 'exact'; 'ggml' emulates llama.cpp's CPU defaults): see src/backend/numerics.ts.
   *  The wasm backend has one numerics of its own, 'fast' (f16 KV, ggml's activation rounding, q·k in f32) */
  numerics?: NumericsName;
  /** worker threads for the wasm backend (default: available cores) */
  threads?: number;
  /** apply the file's attention.sliding_window (llama.cpp ignores it for Phi; so does the default) */
  swa?: boolean;
  /** called as tensor bytes load */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  /** scan the weights for Inf/NaN before loading (default: files up to 1 GiB; bigger ones on request) */
  checkWeights?: boolean;
  /** called for each metadata key that neither llama.cpp nor phi3-ts reads (default: ignored) */
  onWarning?: (w: ConfigWarning) => void;
  signal?: AbortSignal;
  /** the wasm backend's KV cache type (llama.cpp's -ctk/-ctv): 'f16' (default, as llama.cpp), 'f32'
   *  (twice the memory; K and V not rounded) or 'q8_0' (0.53×; blocks of 32, head size a multiple of 32).
   *  The ref backend's follows its numerics */
  kvType?: KvType;
  /** sequences that generate at once (continuous batching: each forward pass carries one step of
   *  every running generation), each with a KV cache of `ctx` positions (default 1) */
  parallel?: number;
  /** a Hugging Face folder is converted once to a GGUF of this type (default 'auto': as stored) */
  type?: string;
  /** where converted Hugging Face folders are kept (default $XDG_CACHE_HOME/phi3-ts or ~/.cache/phi3-ts) */
  cacheDir?: string;
  /** a vision model's encoder matrices on the WASM kernels: 'Q8_0' (default; ≈ 7× faster, image embeddings within
   *  ≈ 1.3e-2 × scale of float64) or 'F16' (within 5e-4). The ref backend runs the exact float64 encoder */
  visionType?: 'Q8_0' | 'F16';
}

const LOAD_KEYS = new Set(['ctx', 'parallel', 'backend', 'numerics', 'threads', 'swa', 'checkWeights', 'onProgress', 'onWarning', 'signal', 'type', 'cacheDir', 'kvType', 'visionType']);

export function validateLoadOptions(o: LoadOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object');
  for (const k of Object.keys(o)) if (!LOAD_KEYS.has(k) && (o as Record<string, unknown>)[k] !== undefined) throw new TypeError(`unknown option '${k}'`);
  const posInt = (k: 'ctx' | 'threads' | 'parallel') => {
    const v = o[k];
    if (v === undefined) return;
    if (typeof v !== 'number') throw new TypeError(`${k} must be a number, got ${typeof v} ${JSON.stringify(v)}`);
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`);
  };
  posInt('ctx');
  posInt('threads');
  posInt('parallel');
  if (o.visionType !== undefined && o.visionType !== 'Q8_0' && o.visionType !== 'F16') throw new RangeError(`visionType must be 'Q8_0' or 'F16', got ${JSON.stringify(o.visionType)}`);
  if (o.backend !== undefined && o.backend !== 'wasm' && o.backend !== 'ref') throw new RangeError(`backend must be 'wasm' or 'ref', got ${JSON.stringify(o.backend)}`);
  if (o.numerics !== undefined) {
    numericsByName(o.numerics);
    if ((o.backend ?? 'wasm') !== 'ref') throw new RangeError(`numerics '${o.numerics}' is a mode of the ref backend (backend: 'ref'); the wasm backend computes its own 'fast' numerics`);
  }
  for (const k of ['onProgress', 'onWarning'] as const) if (o[k] !== undefined && typeof o[k] !== 'function') throw new TypeError(`${k} must be a function`);
  for (const k of ['swa', 'checkWeights'] as const) if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new TypeError(`${k} must be a boolean`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  if (o.kvType !== undefined) {
    if (!KV_TYPES.includes(o.kvType)) throw new RangeError(`kvType must be one of ${KV_TYPES.join(', ')}, got ${JSON.stringify(o.kvType)}`);
    if ((o.backend ?? 'wasm') !== 'wasm') throw new RangeError(`kvType '${o.kvType}' is the wasm backend's; the ref backend's KV cache follows its numerics (exact: f32, ggml: f16)`);
  }
}

export interface LoadStats {
  loadSeconds: number;
  weightsBytes: number;
}

export class Model {
  /** the sequences (LoadOptions.parallel) and the batcher that steps them together */
  private readonly slots: Slots;
  private readonly batcher: Batcher;
  private closed = false;

  /** a vision model's image side (Phi-3.5-vision loaded from its folder); undefined for text models */
  vision: ImageEncoder | undefined;
  /** the chat template in use: tokenizer.chat_template of the file, or Phi-4's format (undefined: Phi-3's) */
  chatTemplate: string | undefined;
  constructor(
    readonly path: string,
    readonly config: Phi3Config,
    readonly tokenizer: SpmTokenizer,
    readonly phi3: Phi3,
    readonly loadStats: LoadStats,
    private readonly file: GGUFFile,
    /** renders templates for requests (Node: in a worker, under time, heap and size limits) */
    readonly templates: TemplateRenderer,
  ) {
    // the file's template; without one, Phi-4's format where the vocabulary has its tokens, else Phi-3's
    this.chatTemplate =
      file.optString('tokenizer.chat_template') ??
      (tokenizer.tokenId('<|im_start|>') !== undefined && tokenizer.tokenId('<|im_sep|>') !== undefined ? PHI4_CHAT_TEMPLATE : undefined);
    this.slots = new Slots(phi3.sequences.map((seq) => ({ seq, history: [], busy: false, used: 0 })));
    this.batcher = new Batcher(phi3);
  }

  /** sequences that generate at once, batched (LoadOptions.parallel) */
  get parallel(): number {
    return this.phi3.sequences.length;
  }

  /** continuous batching so far: forward passes, tokens they carried, the most sequences one carried, when the last ended (Date.now()) */
  get batching(): { ticks: number; tokens: number; widest: number; lastPassAt: number } {
    return { ticks: this.batcher.ticks, tokens: this.batcher.tokens, widest: this.batcher.widest, lastPassAt: this.batcher.lastPassAt };
  }

  /** each sequence (slot): whether a generation runs in it, and how many tokens its cache holds */
  slotStates(): { id: number; busy: boolean; cachedTokens: number }[] {
    return this.slots.slots.map((s) => ({ id: s.seq.index, busy: s.busy, cachedTokens: s.history.length }));
  }

  /** forget every sequence's cached tokens (their KV caches start over) */
  private forgetAll(): void {
    this.slots.slots.forEach(forget);
  }

  /** what the backend rounds: 'exact' or 'ggml' (ref backend), 'fast' (wasm) — see src/backend/numerics.ts */
  get numerics(): string {
    const ops = this.phi3.ops as unknown;
    return ops instanceof RefOps ? ops.numerics.name : 'fast';
  }

  get ctx(): number {
    return this.phi3.ctx;
  }

  tokenize(text: string, opts: { addBos?: boolean; special?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { addSpecial: opts.addBos ?? true, parseSpecial: opts.special ?? false });
  }

  /** tokenize() that gives the event loop a turn every 10 ms of work (a server's megabyte prompts); stops when `signal` aborts */
  tokenizeAsync(text: string, opts: { addBos?: boolean; special?: boolean; signal?: AbortSignal } = {}): Promise<number[]> {
    return this.tokenizer.encodeSegmentsAsync([{ text, parseSpecial: opts.special ?? false }], { addSpecial: opts.addBos ?? true, signal: opts.signal });
  }

  detokenize(ids: number[], opts: { special?: boolean } = {}): string {
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.tokenizer.vocabSize - 1})`);
    return this.tokenizer.decode(ids, { special: opts.special });
  }

  private restarting: Promise<void> | undefined;
  /** crew restarts after a failure, since load */
  crewRestarts = 0;

  /** whether the model can run: false while a failed worker crew is being replaced */
  get healthy(): boolean {
    const ops = this.phi3.ops;
    return !(ops instanceof WasmOps && ops.crewFailed) && !this.restarting;
  }

  /**
   * A failed worker crew is torn down and a fresh one started on the same weights; the KV cache
   * (in an unknown state after a failed op) starts over. Called after a failure and before each call.
   */
  private recover(): Promise<void> {
    const ops = this.phi3.ops;
    if (this.restarting || !(ops instanceof WasmOps) || !ops.crewFailed || this.closed) return this.restarting ?? Promise.resolve();
    this.restarting = ops.restartCrew().then(() => {
      this.crewRestarts++;
      this.forgetAll();
      this.restarting = undefined;
    });
    return this.restarting;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the model is closed');
  }

  /** every id in the vocabulary, or (with `images`) one of the images' places: −1 − k for image k */
  private checkTokens(ids: readonly number[], images = 0): void {
    for (const id of ids) {
      if (Number.isInteger(id) && id >= -images && id < this.config.vocabSize) continue;
      const image = Number.isInteger(id) && id < 0; // −1 − k: image k (the (−id)th image)
      throw new RangeError(image ? `token id ${id} stands for image ${-id}, but ${images} image${images === 1 ? ' is' : 's are'} given` : `token id ${id} is outside the vocabulary (0..${this.config.vocabSize - 1})`);
    }
  }

  /** phimoe: the smallest top-k routing margin of the last logits() call (see moe.ts); Infinity for dense models */
  routingMargin = Infinity;

  /**
   * Logits after each token (all = every position, else only the last), computed from a fresh cache
   * in one free sequence (its cached tokens are forgotten); queues behind other calls when every
   * sequence is busy.
   */
  async logits(tokens: number[], opts: { all?: boolean; batch?: number } = {}): Promise<Float32Array[]> {
    this.checkOpen();
    if (!Array.isArray(tokens) || tokens.length === 0) throw new RangeError('no tokens');
    const batch = opts.batch ?? tokens.length;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
    this.checkTokens(tokens);
    if (tokens.length > this.ctx) throw new ContextLengthError(tokens.length, this.ctx, 'the tokens');
    const slot = await this.slots.take([]);
    try {
      await this.recover();
      forget(slot);
      // in calls of `batch` tokens through the KV cache (llama.cpp's n_batch): the same logits
      const rows: Float32Array[] = [];
      let margin = Infinity;
      for (let s = 0; s < tokens.length; s += batch) {
        const part = this.phi3.forward(tokens.slice(s, s + batch), { allLogits: opts.all ?? false, seq: slot.seq });
        margin = Math.min(margin, this.phi3.routingMargin);
        if (opts.all || s + batch >= tokens.length) rows.push(...part);
      }
      this.routingMargin = margin;
      return rows;
    } finally {
      forget(slot);
      void this.recover();
      this.slots.release(slot);
    }
  }

  /**
   * Stream generated tokens for a prompt (text or token ids), with their text and, when asked,
   * log-probabilities. Text prompts get BOS per the vocabulary and special tokens parsed (so chat
   * markup works). The KV cache is kept between calls: only tokens after the prefix shared with
   * the previous call are computed. Options are checked now; a sequence is taken at the first
   * `next()` — with `parallel` > 1 several generations run at once, batched into each forward pass,
   * and a prompt goes to the idle sequence whose cache shares the longest prefix with it.
   */
  stream(prompt: string | number[], opts: GenerateOptions = {}, onEnd?: (s: GenerationStats) => void): AsyncGenerator<GeneratedChunk, GenerationStats> {
    return this.streamIn(undefined, prompt, opts, onEnd);
  }

  /**
   * A sequence kept for one caller — a conversation — until `dispose()`: its calls run one at a time
   * in it and keep its KV cache between them, batched with the model's other generations. It holds
   * one of the `parallel` slots meanwhile (waiting for one to be free).
   */
  async createSequence(): Promise<ModelSequence> {
    this.checkOpen();
    const slot = await this.slots.take([]);
    forget(slot);
    return new ModelSequence(this, slot, (prompt, opts, onEnd, turn) => this.streamIn({ slot, turn }, prompt, opts, onEnd), () => this.slots.release(slot));
  }

  private streamIn(pinned: { slot: Slot; turn: () => Promise<() => void> } | undefined, prompt: string | number[], opts: GenerateOptions, onEnd?: (s: GenerationStats) => void): AsyncGenerator<GeneratedChunk, GenerationStats> {
    this.checkOpen();
    if (typeof prompt !== 'string' && !Array.isArray(prompt)) throw new TypeError('the prompt must be a string or an array of token ids');
    validateGenerateOptions(opts, this.config.vocabSize);
    const ids = typeof prompt === 'string' ? this.tokenize(prompt, { special: true }) : prompt;
    this.checkTokens(ids, opts.images?.length ?? 0);
    if (ids.length === 0) throw new RangeError('the prompt is empty');
    const maxTokens = opts.maxTokens ?? this.ctx - ids.length;
    if (ids.length >= this.ctx || ids.length + maxTokens > this.ctx)
      throw new ContextLengthError(ids.length + Math.max(maxTokens, 1), this.ctx, `prompt (${ids.length} tokens) plus max_tokens (${Math.max(maxTokens, 1)})`);
    const self = this;
    const token: { release?: () => void } = {};
    async function* run(): AsyncGenerator<GeneratedChunk, GenerationStats> {
      // a sequence of its own (the idle one whose cache shares the longest prefix with the prompt),
      // or the caller's (createSequence), in turn
      const giveTurn = pinned ? await pinned.turn() : undefined;
      const slot = pinned?.slot ?? (await self.slots.take(ids));
      const seq = self.batcher.sequence(slot.seq);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        seq.close();
        if (giveTurn) giveTurn();
        else self.slots.release(slot);
      };
      token.release = release;
      try {
        await self.recover();
        self.checkOpen();
        return yield* generate(seq, self.tokenizer, ids, slot.history, { ...opts, reuseCache: opts.reuseCache ?? true }, onEnd);
      } catch (e) {
        // a failed step leaves the cache in an unknown state: start over next time (and a failed
        // crew is replaced now, so that the next call finds a working one)
        forget(slot);
        void self.recover();
        throw e;
      } finally {
        token.release = undefined;
        release();
      }
    }
    const g = run();
    abandoned.register(g, token);
    return g;
  }

  /** Stream text (see stream()); `stats` resolves when generation ends, however it ends. */
  generate(prompt: string | number[], opts: GenerateOptions = {}): Generation {
    return textGeneration((onEnd) => this.stream(prompt, opts, onEnd));
  }

  private templateTokens(): { template: string | undefined; bosToken: string; eosToken: string; addGenerationPrompt: boolean } {
    const t = this.tokenizer;
    return {
      template: this.chatTemplate,
      bosToken: t.bos >= 0 ? t.decode([t.bos], { special: true }) : '',
      eosToken: t.eos >= 0 ? t.decode([t.eos], { special: true }) : '',
      addGenerationPrompt: true,
    };
  }

  /** how this model takes tools and writes calls, or a ToolsUnsupportedError that says why it cannot */
  toolFormat(): ToolFormat {
    return toolFormat(this.tokenizer, this.chatTemplate);
  }

  /** the chat prompt for messages: the file's chat template (or Phi-3's), ending with the assistant's turn */
  chatPrompt(messages: ChatMessage[]): string {
    return renderChat(messages, this.templateTokens());
  }

  /**
   * The chat prompt's token ids. The template's markup is parsed for special tokens; message content
   * is tokenized as text, so special-token text a user writes (`<|end|><|system|>`) stays text and
   * cannot forge a turn — unless `parseSpecialInContent` asks for the old behaviour.
   */
  chatTokens(messages: ChatMessage[], opts: { parseSpecialInContent?: boolean; tools?: FunctionTool[] } = {}): number[] {
    const o = { ...this.templateTokens(), tools: opts.tools };
    if (opts.parseSpecialInContent) return this.tokenize(renderChat(messages, o), { special: true, addBos: false });
    const segs = renderChatSegments(messages, o);
    if (segs.some((s) => s.image)) return this.segmentIds(segs);
    return this.tokenizer.encodeSegments(segs.map((s) => ({ text: s.text, parseSpecial: s.markup })), { addSpecial: false });
  }

  /**
   * chatTokens with the template run in a worker under limits (TemplateRunner): what a server uses,
   * since a template is code from the model file. A template past its limits is a TemplateError.
   */
  async chatTokensLimited(messages: ChatMessage[], opts: { parseSpecialInContent?: boolean; signal?: AbortSignal; tools?: FunctionTool[] } = {}): Promise<number[]> {
    const task = { messages, ...this.templateTokens(), tools: opts.tools };
    const { signal } = opts;
    if (opts.parseSpecialInContent) return this.tokenizeAsync(await this.templates.render({ ...task, mode: 'text' }), { special: true, addBos: false, signal });
    const segs = await this.templates.render({ ...task, mode: 'segments' });
    if (segs.some((s) => s.image)) return this.segmentIds(segs);
    return this.tokenizer.encodeSegmentsAsync(segs.map((s) => ({ text: s.text, parseSpecial: s.markup })), { addSpecial: false, signal });
  }

  /**
   * Render the file's template on a probe conversation in the worker; a template that fails or goes
   * past the limits is replaced by the built-in one (returned: why, or undefined when it is fine).
   */
  async probeTemplate(): Promise<string | undefined> {
    if (this.chatTemplate === undefined) return undefined;
    const probe: ChatMessage[] = [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Hello!' },
      { role: 'assistant', content: 'Hi. How can I help?' },
      { role: 'user', content: 'Tell me a story.' },
    ];
    try {
      await this.templates.render({ messages: probe, ...this.templateTokens(), mode: 'segments' });
      return undefined;
    } catch (e) {
      this.chatTemplate = undefined;
      return (e as Error).message;
    }
  }

  /** Stream an assistant reply to messages; `<|end|>` (an end-of-generation token) ends the turn. */
  chat(messages: (ChatMessage | ChatInput)[], opts: ChatOptions = {}): Generation {
    if (!hasImages(messages)) {
      const { ids, gen } = this.chatRequest(messages, opts);
      return this.generate(ids, gen);
    }
    // images: encoded when the generation is first read, the event loop turning meanwhile
    const self = this;
    return textGeneration((onEnd) =>
      (async function* () {
        const p = await self.prepareChatAsync(messages, opts);
        return yield* self.stream(self.chatTokens(p.messages, { parseSpecialInContent: opts.parseSpecialInContent, tools: p.tools }), p.gen, onEnd);
      })(),
    );
  }

  /**
   * A chat's prompt ids and generation options. With `tools`, the template is told the tools and the
   * generation may call them (`toolChoice`: auto, none, required or a named function; tools.ts);
   * assistant messages that carry `tool_calls` (arguments as JSON text) are written as the model writes them.
   */
  chatRequest(messages: (ChatMessage | ChatInput)[], opts: ChatOptions = {}): { ids: number[]; gen: GenerateOptions } {
    const p = this.prepareChat(messages, opts);
    return { ids: this.chatTokens(p.messages, { parseSpecialInContent: opts.parseSpecialInContent, tools: p.tools }), gen: p.gen };
  }

  /**
   * Messages whose content has image parts, as the template takes them: each image's placeholder
   * `<|image_N|>` and a newline before the text (Phi-3.5-vision's prompt format), the placeholder a
   * segment that stands for the image's embedding rows; the images encoded, in order.
   */
  private imageMessages(input: (ChatMessage | ChatInput)[], encoded?: Map<ChatContentPart, { rows: Float32Array; count: number }>): { messages: ChatMessage[]; images: Float32Array[] } {
    if (!Array.isArray(input)) throw new TypeError('messages must be an array');
    const images: Float32Array[] = [];
    const messages = input.map((m, i): ChatMessage => {
      if (!m || typeof m !== 'object' || !Array.isArray(m.content)) return m as ChatMessage;
      const parts: ChatSegment[] = [];
      for (const [j, p] of (m.content as ChatContentPart[]).entries()) {
        const at = `messages[${i}].content[${j}]`;
        if (p?.type === 'text' && typeof p.text === 'string') parts.push({ text: p.text, markup: false });
        else if (p?.type === 'image') {
          if (!this.vision) throw new TypeError(`${at}: this model takes no images (it has no vision tower; Phi-3.5-vision-instruct, loaded from its folder, does)`);
          const e = encoded?.get(p) ?? this.vision.encode(this.imageBytes(p, at), typeof p.image === 'string' ? p.image : at);
          images.push(e.rows);
          parts.push({ text: `<|image_${images.length}|>`, markup: false, image: { index: images.length - 1, count: e.count } }, { text: '\n', markup: false });
        } else throw new TypeError(`${at} must be {type: 'text', text} or {type: 'image', image}`);
      }
      return { ...m, content: parts.map((p) => p.text).join(''), contentParts: parts } as ChatMessage;
    });
    return { messages, images };
  }

  private imageBytes(p: { image: Uint8Array | string }, at: string): Uint8Array {
    const bytes = typeof p.image === 'string' ? this.vision!.read(p.image) : p.image;
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`${at}.image must be a file's bytes (Uint8Array) or its path`);
    return bytes;
  }

  /** prepareChat with the images encoded first, the event loop turning meanwhile (servers, chat()) */
  async prepareChatAsync(input: (ChatMessage | ChatInput)[], opts: ChatOptions = {}): Promise<{ messages: ChatMessage[]; tools?: FunctionTool[]; gen: GenerateOptions }> {
    const encoded = new Map<ChatContentPart, { rows: Float32Array; count: number }>();
    if (this.vision && Array.isArray(input))
      for (const [i, m] of input.entries())
        if (m && Array.isArray(m.content))
          for (const [j, p] of (m.content as ChatContentPart[]).entries())
            if (p?.type === 'image') encoded.set(p, await this.vision.encodeAsync(this.imageBytes(p, `messages[${i}].content[${j}]`), typeof p.image === 'string' ? p.image : `messages[${i}].content[${j}]`));
    return this.prepareChat(input, opts, encoded);
  }

  /** a chat prompt's segments as token ids: text runs tokenized one by one, each image as its rows' ids (−1 − index) */
  private segmentIds(segs: ChatSegment[]): number[] {
    const out: number[] = [];
    let run: ChatSegment[] = [];
    const flush = () => {
      if (run.length) out.push(...this.tokenizer.encodeSegments(run.map((s) => ({ text: s.text, parseSpecial: s.markup })), { addSpecial: false }));
      run = [];
    };
    for (const s of segs) {
      if (!s.image) run.push(s);
      else {
        flush();
        for (let k = 0; k < s.image.count; k++) out.push(-1 - s.image.index);
      }
    }
    flush();
    return out;
  }

  /** chatRequest before tokenizing: the messages and tools for the template, and the generation's options */
  prepareChat(input: (ChatMessage | ChatInput)[], opts: ChatOptions = {}, encoded?: Map<ChatContentPart, { rows: Float32Array; count: number }>): { messages: ChatMessage[]; tools?: FunctionTool[]; gen: GenerateOptions } {
    const { parseSpecialInContent: _, tools, toolChoice, parallelToolCalls, ...rest } = opts;
    const { messages, images } = this.imageMessages(input, encoded);
    const gen: GenerateOptions = images.length ? { ...rest, images } : rest;
    const calls = messages.some((m) => m.role === 'assistant' && m.tool_calls !== undefined);
    if (tools === undefined && toolChoice === undefined && !calls) return { messages, gen };
    if (tools === undefined && toolChoice !== undefined) throw new TypeError('tool_choice needs tools');
    let f: ToolFormat;
    try {
      f = this.toolFormat();
    } catch (e) {
      if (tools !== undefined || !(e instanceof ToolsUnsupportedError)) throw e;
      throw new ToolsUnsupportedError(`messages[${messages.findIndex((m) => m.tool_calls !== undefined)}].tool_calls: ${e.message}`);
    }
    const msgs = messages.map((m, i) => (m.role === 'assistant' && m.tool_calls ? withToolCalls({ ...m, tool_calls: undefined }, m.tool_calls as SentToolCall[], f, `messages[${i}].tool_calls`) : m));
    if (tools === undefined) return { messages: msgs, gen };
    const v = validateTools(tools, toolChoice);
    const req = toolRequest(f, v.tools, v.choice, parallelToolCalls ?? true);
    if (gen.grammar !== undefined && req.toolCalls) throw new TypeError('give a grammar or tools, not both');
    const logitBias = req.ban === undefined ? gen.logitBias : { ...Object.fromEntries(gen.logitBias instanceof Map ? gen.logitBias : Object.entries(gen.logitBias ?? {})), [req.ban]: -Infinity };
    return { messages: toolsForTemplate(msgs, v.tools, f), tools: req.templateTools, gen: { ...gen, logitBias, toolCalls: req.toolCalls } };
  }

  /** release the weights, stop worker threads, close the file */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    void this.templates.close();
    void this.vision?.close();
    this.phi3.ops.dispose();
    this.file.close();
  }

  /** dispose and wait until worker threads have exited */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.templates.close();
    await this.vision?.close();
    const ops = this.phi3.ops as { close?: () => Promise<void> };
    this.file.close();
    if (ops.close) await ops.close();
    else this.phi3.ops.dispose();
  }

  /** `await using model = await loadModel(…)` closes it at the end of the scope */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A FIFO lock: a sequence's calls run in turn. */
class Turns {
  private held = false;
  private readonly waiting: (() => void)[] = [];
  async take(): Promise<() => void> {
    if (this.held) await new Promise<void>((r) => this.waiting.push(r));
    this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.held = false;
    };
  }
}

type StreamIn = (prompt: string | number[], opts: GenerateOptions, onEnd: ((s: GenerationStats) => void) | undefined, turn: () => Promise<() => void>) => AsyncGenerator<GeneratedChunk, GenerationStats>;

/** one sequence of a Model, kept for a caller (Model.createSequence) */
export class ModelSequence {
  private readonly turns = new Turns();
  private disposed = false;
  constructor(
    readonly model: Model,
    private readonly slot: Slot,
    private readonly run: StreamIn,
    private readonly giveBack: () => void,
  ) {}

  /** the tokens its KV cache holds */
  get cachedTokens(): number {
    return this.slot.history.length;
  }

  /** as Model.stream, in this sequence: only the tokens after the prefix shared with its cache are computed */
  stream(prompt: string | number[], opts: GenerateOptions = {}, onEnd?: (s: GenerationStats) => void): AsyncGenerator<GeneratedChunk, GenerationStats> {
    if (this.disposed) throw new Error('the sequence is disposed');
    return this.run(prompt, opts, onEnd, () => this.turns.take());
  }

  generate(prompt: string | number[], opts: GenerateOptions = {}): Generation {
    return textGeneration((onEnd) => this.stream(prompt, opts, onEnd));
  }

  chat(messages: (ChatMessage | ChatInput)[], opts: ChatOptions = {}): Generation {
    const { ids, gen } = this.model.chatRequest(messages, opts);
    return this.generate(ids, gen);
  }

  /** give the slot back (after its running call, if any, ends) */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const done = await this.turns.take();
    done();
    this.giveBack();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/** largest batch of prompt tokens one forward pass processes */
const MAX_BATCH = 64;

function makeOps(backend: BackendName, config: Phi3Config, ctx: number, threads: number, numerics: Numerics, wasm: WasmHost, kvType?: KvType): Ops<unknown> {
  switch (backend) {
    case 'ref':
      return new RefOps(numerics) as Ops<unknown>;
    case 'wasm':
      return new WasmOps(planFor(config, ctx, MAX_BATCH, threads, kvType), wasm) as Ops<unknown>;
    default:
      throw new RangeError(`unknown backend '${backend as string}' (expected wasm or ref)`);
  }
}

/** the model will not fit in this machine's memory */
export class OutOfMemoryError extends Error {
  override name = 'OutOfMemoryError';
}

/** a memory the engine refused (WebAssembly.Memory beyond its limits, a bank's reserve) as an OutOfMemoryError */
function asOutOfMemory(e: unknown, path: string, ctx: number): unknown {
  const m = (e as Error)?.message ?? '';
  if (e instanceof RangeError && /WebAssembly\.Memory|Array buffer allocation|reserve exhausted|does not fit in a 4 GiB|more than one 4 GiB/.test(m))
    return new OutOfMemoryError(`${path}: the activations, KV cache or a tensor at ctx ${ctx} do not fit in WebAssembly memory (${m}); try a smaller --ctx`);
  return e;
}

/** what openModel needs of its platform */
export interface ModelHost {
  wasm: WasmHost;
  /** threads to use when none are asked for, and the most there may be */
  cores: number;
  /** the machine's memory in bytes, when it is known (a model that needs more is refused) */
  memoryBytes?: number;
  templates: TemplateRenderer;
}

/**
 * Build a Model from a parsed GGUF (options already validated): configuration, tokenizer, backend,
 * weights. `t0` is when loading began. The file is closed if this fails.
 */
export async function openModel(file: GGUFFile, opts: LoadOptions, host: ModelHost, t0 = performance.now()): Promise<Model> {
  const path = file.path;
  try {
    const warnings: ConfigWarning[] = [];
    const config = configFromGguf(file, warnings);
    for (const w of warnings) opts.onWarning?.(w);
    const tokenizer = new SpmTokenizer(file);
    if (opts.kvType === 'q8_0' && config.headDim % 32) throw new UnsupportedModelError(`${path}: a q8_0 KV cache needs a head size that is a multiple of 32 (blocks of 32); this model's is ${config.headDim}`);
    const ctx = opts.ctx ?? config.contextLength;
    if (!Number.isInteger(ctx) || ctx < 1) throw new RangeError(`ctx must be a positive integer, got ${ctx}`);
    const total = file.tensors.reduce((a, t) => a + t.byteSize, 0);
    if (opts.checkWeights ?? total <= 2 ** 30) {
      validateTensors(file, config);
      checkWeights(file);
    }
    const backend = opts.backend ?? 'wasm';
    const numerics = numericsByName(opts.numerics ?? 'exact');
    const parallel = opts.parallel ?? 1;
    const est = estimateMemory(config, total, ctx * parallel, undefined, backend === 'ref' ? (numerics.kv === 'f32' ? 4 : 2) : kvTypeBytes(opts.kvType));
    if (host.memoryBytes !== undefined && est.totalBytes > host.memoryBytes)
      throw new OutOfMemoryError(
        `${path}: running at ctx ${ctx} needs about ${(est.totalBytes / 2 ** 30).toFixed(2)} GiB (weights ${(est.weightsBytes / 2 ** 30).toFixed(2)} + KV cache ${(est.kvCacheBytes / 2 ** 30).toFixed(2)} + scratch), but this machine has ${(host.memoryBytes / 2 ** 30).toFixed(2)} GiB; try a smaller --ctx or a smaller quantization`,
      );
    let threads = opts.threads ?? host.cores;
    if (threads > host.cores) {
      opts.onWarning?.({ key: 'threads', message: `threads ${threads} is more than the ${host.cores} cores here: using ${host.cores}` });
      threads = host.cores;
    }
    let loaded = 0;
    let ops: Ops<unknown>;
    try {
      ops = makeOps(backend, config, ctx * parallel, threads, numerics, host.wasm, opts.kvType);
    } catch (e) {
      throw asOutOfMemory(e, path, ctx);
    }
    let phi3: Phi3<unknown>;
    try {
      // the banks the weights need are opened and the crew starts over them, so that it reads the
      // weights with the main thread; starting it again after is a no-op unless loading opened more
      if (ops instanceof WasmOps) {
        ops.planBanks(file.tensors);
        await ops.start();
      }
      phi3 = Phi3.load(file, ops, {
        ctx,
        maxBatch: MAX_BATCH,
        sequences: parallel,
        swa: opts.swa,
        onTensor: (b) => {
          loaded += b;
          opts.signal?.throwIfAborted();
          opts.onProgress?.(loaded, total);
        },
      });
      if (ops instanceof WasmOps) await ops.start();
    } catch (e) {
      ops.dispose();
      throw asOutOfMemory(e, path, ctx);
    }
    const model = new Model(path, config, tokenizer, phi3, { loadSeconds: (performance.now() - t0) / 1000, weightsBytes: total }, file, host.templates);
    const why = await model.probeTemplate();
    if (why) opts.onWarning?.({ key: 'tokenizer.chat_template', message: `the file's chat template cannot be used (${why}); using the built-in Phi-3 template` });
    return model;
  } catch (e) {
    file.close();
    void host.templates.close();
    throw e;
  }
}
