/**
 * The generation loop: prefill the prompt, then sample one token at a time until max tokens, an
 * end-of-generation token (EOS, <|end|>, <|endoftext|>) or a stop string; stream text as it forms.
 *
 * Text is streamed through the UTF-8-aware StreamDecoder, and held back while it could still be
 * the start of a stop string, so a stop string never leaks into the output.
 */
import { ContextLengthError, type EmbedRange } from '../model/phi3.js';
import type { TokenSequence } from './batcher.js';
import type { SpmTokenizer } from '../tokenizer/spm.js';
import { StreamDecoder } from '../tokenizer/spm.js';
import { TokenConstraint, compileGrammar } from '../grammar/constrain.js';
import { Sampler, logSoftmax, validateSampling, type OptionNames, type SamplingOptions } from './sampler.js';

export interface GenerateOptions extends SamplingOptions {
  /** tokens to generate at most (default: until the context is full or an end-of-generation token) */
  maxTokens?: number;
  /** stop strings (one or several): generation ends before the first one, which is not output */
  stop?: string | string[];
  /** stop at end-of-generation tokens (default true) */
  stopAtEog?: boolean;
  signal?: AbortSignal;
  /** top log-probabilities to report per generated token (0 = none) */
  topLogprobs?: number;
  /** keep the KV cache of earlier calls and only process the new tokens after the shared prefix */
  reuseCache?: boolean;
  /** a GBNF grammar (llama.cpp's syntax; jsonSchemaGrammar / jsonObjectGrammar make them from JSON
   *  Schema): only text the grammar allows is generated, and generation ends when nothing may follow */
  grammar?: string;
  /** tool calls (tools.ts): sampled freely until `open` is drawn (or `open` first, when `force`), then
   *  only text of `grammar` until `close` or an end-of-generation token ends the call and the generation */
  toolCalls?: { open: number; close: number; grammar: string; force: boolean };
  /** input embeddings of images (vision/phi3v.ts), row after row: prompt id −1 − k stands for the next row of images[k] */
  images?: Float32Array[];
}

/** 'tool_calls': the model called tools (GenerateOptions.toolCalls) */
export type FinishReason = 'stop' | 'length' | 'abort' | 'tool_calls';

export interface GenerationStats {
  promptTokens: number;
  /** prompt tokens actually computed (fewer when the cache held a shared prefix) */
  promptTokensEvaluated: number;
  generatedTokens: number;
  promptSeconds: number;
  decodeSeconds: number;
  promptTokPerSec: number;
  decodeTokPerSec: number;
  finishReason: FinishReason;
}

export interface GeneratedChunk {
  /** text made complete by this token (may be empty) */
  text: string;
  token: number;
  logprob?: number;
  topLogprobs?: { token: number; logprob: number }[];
  /** part of a tool call (after `<|tool_call|>`): the text is the calls' JSON, not content */
  toolCall?: boolean;
}

const GENERATE_KEYS = new Set([
  'maxTokens', 'stop', 'stopAtEog', 'signal', 'topLogprobs', 'reuseCache', 'grammar', 'toolCalls', 'images',
  'temperature', 'topK', 'topP', 'minP', 'repeatPenalty', 'frequencyPenalty', 'presencePenalty', 'penaltyLastN', 'seed', 'logitBias',
]);

/**
 * Check generation options before anything runs: unknown options, wrong types (TypeError) and values
 * out of range (RangeError) are errors that name the option (as `name` spells it for the caller).
 */
export function validateGenerateOptions(o: GenerateOptions, vocabSize?: number, name: OptionNames = (k) => k): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object');
  for (const k of Object.keys(o)) if (!GENERATE_KEYS.has(k) && (o as Record<string, unknown>)[k] !== undefined) throw new TypeError(`unknown option '${k}'`);
  validateSampling(o, name, vocabSize);
  if (o.maxTokens !== undefined && (typeof o.maxTokens !== 'number' || !Number.isInteger(o.maxTokens) || o.maxTokens < 1))
    throw (typeof o.maxTokens !== 'number' ? TypeError : RangeError)(`${name('maxTokens')} must be a positive integer, got ${JSON.stringify(o.maxTokens)}`);
  if (o.stop !== undefined && typeof o.stop !== 'string' && !(Array.isArray(o.stop) && o.stop.every((s) => typeof s === 'string')))
    throw new TypeError(`${name('stop')} must be a string or an array of strings, got ${JSON.stringify(o.stop)}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError(`${name('signal')} must be an AbortSignal`);
  if (o.topLogprobs !== undefined && (!Number.isInteger(o.topLogprobs) || o.topLogprobs < 0 || o.topLogprobs > 20))
    throw new RangeError(`${name('topLogprobs')} must be an integer in [0, 20], got ${JSON.stringify(o.topLogprobs)}`);
  for (const k of ['stopAtEog', 'reuseCache'] as const)
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new TypeError(`${name(k)} must be a boolean, got ${JSON.stringify(o[k])}`);
  if (o.grammar !== undefined) {
    if (typeof o.grammar !== 'string') throw new TypeError(`${name('grammar')} must be a GBNF string`);
    compileGrammar(o.grammar); // a GrammarError names the line and offset now, before anything runs
  }
  if (o.images !== undefined && (!Array.isArray(o.images) || !o.images.every((x) => x instanceof Float32Array)))
    throw new TypeError(`${name('images')} must be an array of Float32Array (each image's embedding rows)`);
  if (o.toolCalls !== undefined) {
    const t = o.toolCalls;
    if (typeof t !== 'object' || t === null || !Number.isInteger(t.open) || !Number.isInteger(t.close) || typeof t.grammar !== 'string' || typeof t.force !== 'boolean')
      throw new TypeError(`${name('toolCalls')} must be {open, close: token ids, grammar: GBNF, force: boolean}`);
    if (o.grammar !== undefined) throw new TypeError(`give ${name('grammar')} or ${name('toolCalls')}, not both`);
    compileGrammar(t.grammar);
  }
}

/** The forward pass gave a NaN or +Inf logit: the weights or the activations are not finite. */
export class NonFiniteLogitsError extends Error {
  override name = 'NonFiniteLogitsError';
}

/** sampling from NaN logits would pick a token anyway (a plausible, wrong answer): refuse instead */
function checkFinite(logits: Float32Array, position: number): void {
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v !== v || v === Infinity)
      throw new NonFiniteLogitsError(`the logit of token ${i} after position ${position} is ${v}: the model's weights or activations are not finite (load with checkWeights / --check-weights to find the tensor)`);
  }
}

/**
 * One turn of the event loop (timers, I/O, signals, messages), between tokens and between prefill
 * chunks: setImmediate in Node; a message to itself elsewhere (a browser's setTimeout waits ≥ 4 ms
 * once nested).
 */
export const yieldToEventLoop: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((r) => setImmediate(r))
    : (() => {
        const ch = new MessageChannel();
        const waiting: (() => void)[] = [];
        ch.port1.onmessage = () => waiting.shift()?.();
        return () => new Promise<void>((r) => (waiting.push(r), ch.port2.postMessage(0)));
      })();

/** tokens in common at the start of two sequences (an image's rows, id < 0, are never in common: two images share an id) */
export function sharedPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n] && a[n]! >= 0) n++;
  return n;
}

/**
 * The input-embedding ranges of prompt[from, to): each run of one image's ids (−1 − k) takes that
 * image's next rows, counted from the prompt's start. Checks that every image's rows match its ids.
 */
export function imageRanges(prompt: readonly number[], images: readonly Float32Array[] | undefined, from: number, to: number): EmbedRange[] | undefined {
  if (!images?.length) return undefined;
  const counts = images.map(() => 0);
  for (const id of prompt) if (id < 0) counts[-1 - id] = (counts[-1 - id] ?? 0) + 1;
  const dim = images[0]!.length / Math.max(counts[0]!, 1);
  images.forEach((im, k) => {
    if (counts[k] === undefined || counts[k] * dim !== im.length) throw new RangeError(`image ${k + 1} has ${im.length / dim} embedding rows, but the prompt has ${counts[k] ?? 0} places for it`);
  });
  const seen = images.map(() => 0), runs: { k: number; row: number; at: number; n: number }[] = [];
  for (let p = 0; p < to; p++) {
    const id = prompt[p]!;
    if (id >= 0) continue;
    const k = -1 - id, row = seen[k]!;
    seen[k] = row + 1;
    if (p < from) continue;
    const last = runs.at(-1);
    if (last && last.k === k && last.at + last.n === p - from) last.n++;
    else runs.push({ k, row, at: p - from, n: 1 });
  }
  return runs.map((r) => ({ at: r.at, rows: images[r.k]!.subarray(r.row * dim, (r.row + r.n) * dim) }));
}

/**
 * Generate from prompt ids through one sequence of a model (batcher.ts: alone, or batched with
 * others). Yields chunks; returns stats. `history` (the sequence's cached tokens) is read and updated
 * so callers can keep a conversation's cache. Each step is a turn of the event loop at least.
 */
export async function* generate(
  model: TokenSequence,
  tok: SpmTokenizer,
  prompt: readonly number[],
  history: number[],
  o: GenerateOptions = {},
  /** called once when generation ends, however it ends (done, error, break out of the loop) */
  onEnd?: (stats: GenerationStats) => void,
): AsyncGenerator<GeneratedChunk, GenerationStats> {
  if (prompt.length === 0) throw new RangeError('the prompt is empty');
  if (prompt.length >= model.ctx) throw new ContextLengthError(prompt.length + 1, model.ctx, `the prompt (${prompt.length} tokens) plus one generated token`);
  const maxTokens = o.maxTokens ?? model.ctx - prompt.length;
  if (prompt.length + maxTokens > model.ctx) throw new ContextLengthError(prompt.length + maxTokens, model.ctx, `prompt (${prompt.length} tokens) plus max_tokens (${maxTokens})`);
  const sampler = new Sampler(o);
  let constraint = o.grammar !== undefined ? new TokenConstraint(tok, o.grammar) : undefined;
  const tools = o.toolCalls;
  let inCall = false; // past the tool-call token: the text is the calls' JSON
  const stops = (typeof o.stop === 'string' ? [o.stop] : (o.stop ?? [])).filter((s) => s.length > 0);

  let keep = 0, generated = 0;
  let finishReason: FinishReason = 'abort'; // until the loop says otherwise (a break out of it is an abort)
  const generatedIds: number[] = [];
  const t0 = performance.now();
  let t1 = t0;
  const stats = (): GenerationStats => {
    const t2 = performance.now();
    const promptSeconds = (t1 - t0) / 1000, decodeSeconds = (t2 - t1) / 1000;
    return {
      promptTokens: prompt.length,
      promptTokensEvaluated: prompt.length - keep,
      generatedTokens: generatedIds.length,
      promptSeconds,
      decodeSeconds,
      promptTokPerSec: (prompt.length - keep) / Math.max(promptSeconds, 1e-9),
      decodeTokPerSec: Math.max(generatedIds.length - 1, 0) / Math.max(decodeSeconds, 1e-9),
      finishReason,
    };
  };
  try {
    if (o.signal?.aborted) return stats(); // an aborted signal runs nothing
    // prefill: reuse the cached prefix when asked (always recompute at least the last prompt token),
    // a chunk at a time with a turn of the event loop between chunks
    keep = o.reuseCache ? Math.min(sharedPrefix(history, prompt), prompt.length - 1) : 0;
    keep = Math.min(keep, model.nPast);
    model.truncate(keep);
    history.length = keep;
    let logits: Float32Array | undefined;
    for (let i = keep; i < prompt.length; i += model.maxBatch) {
      const end = Math.min(i + model.maxBatch, prompt.length);
      const chunk = prompt.slice(i, end);
      logits = await model.step(chunk, imageRanges(prompt, o.images, i, end));
      history.push(...chunk);
      if (i + model.maxBatch < prompt.length && o.signal?.aborted) return stats();
    }
    t1 = performance.now();

    const decoder = new StreamDecoder(tok);
    let pending = ''; // text held back while it may begin a stop string
    let ended = false;
    while (generated < maxTokens) {
      if (o.signal?.aborted) break;
      checkFinite(logits!, history.length);
      let id: number;
      if (tools && !inCall) {
        id = tools.force ? tools.open : sampler.sample(logits!, generatedIds);
        if (id === tools.open) {
          // the call starts (forced first, or drawn): from here on only the calls' grammar
          inCall = true;
          constraint = new TokenConstraint(tok, tools.grammar, [tools.close]);
          // text held back for a stop string is content: it goes out before the call
          const rest = pending + decoder.flush();
          pending = '';
          if (rest) yield { text: rest, token: -1 };
        }
      } else if (constraint) {
        // the sampler's own choice when the grammar allows it, else a draw among the tokens it allows
        id = constraint.final ? constraint.endToken : sampler.sample(logits!, generatedIds);
        if (!constraint.final && !constraint.allows(id)) id = sampler.sample(constraint.mask(logits!), generatedIds);
        constraint.advance(id);
      } else id = sampler.sample(logits!, generatedIds);
      generated++;
      if (inCall && (id === tools!.close || tok.eog.has(id))) {
        finishReason = 'tool_calls';
        ended = true;
        break;
      }
      if (((o.stopAtEog ?? true) || constraint) && tok.eog.has(id)) {
        finishReason = 'stop';
        ended = true;
        break;
      }
      generatedIds.push(id);
      let chunk: GeneratedChunk = inCall ? { text: '', token: id, toolCall: true } : { text: '', token: id };
      if (o.topLogprobs !== undefined) {
        const lp = logSoftmax(logits!);
        chunk.logprob = lp[id]!;
        if (o.topLogprobs > 0) {
          const top = Array.from(lp.keys()).sort((a, b) => lp[b]! - lp[a]!).slice(0, o.topLogprobs);
          chunk.topLogprobs = top.map((t) => ({ token: t, logprob: lp[t]! }));
        }
      }
      pending += decoder.push(id);
      if (inCall) {
        // the calls' JSON: no stop strings in it
        chunk.text = pending;
        pending = '';
        yield chunk;
        if (generated >= maxTokens || o.signal?.aborted) break;
        logits = await model.step([id]);
        history.push(id);
        continue;
      }
      // a stop string anywhere in the pending text ends generation before it
      const hit = stops.map((s) => pending.indexOf(s)).filter((i) => i >= 0);
      if (hit.length) {
        chunk = { ...chunk, text: pending.slice(0, Math.min(...hit)) };
        finishReason = 'stop';
        ended = true;
        pending = '';
        yield chunk;
        break;
      }
      // emit all but the longest tail that is a proper prefix of some stop string
      let hold = 0;
      for (const s of stops) for (let k = Math.min(s.length - 1, pending.length); k > hold; k--) if (s.startsWith(pending.slice(-k))) hold = k;
      chunk.text = pending.slice(0, pending.length - hold);
      pending = pending.slice(pending.length - hold);
      yield chunk;

      if (generated >= maxTokens) break;
      if (o.signal?.aborted) break;
      logits = await model.step([id]); // timers, signals and I/O run at least once per token
      history.push(id);
    }
    if (!ended) finishReason = o.signal?.aborted ? 'abort' : 'length';
    if (finishReason !== 'stop') {
      const rest = pending + decoder.flush();
      if (rest) yield inCall ? { text: rest, token: -1, toolCall: true } : { text: rest, token: -1 };
    }
    return stats();
  } finally {
    onEnd?.(stats());
  }
}
