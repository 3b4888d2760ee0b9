/**
 * The generation loop: prefill the prompt, then sample one token at a time until max tokens, an
 * end-of-generation token (EOS, <|end|>, <|endoftext|>) or a stop string; stream text as it forms.
 *
 * Text is streamed through the UTF-8-aware StreamDecoder, and held back while it could still be
 * the start of a stop string, so a stop string never leaks into the output.
 */
import type { Phi3 } from '../model/phi3.js';
import { ContextLengthError } from '../model/phi3.js';
import type { SpmTokenizer } from '../tokenizer/spm.js';
import { StreamDecoder } from '../tokenizer/spm.js';
import { Sampler, logSoftmax, type SamplingOptions } from './sampler.js';

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;
  stop?: string[];
  /** stop at end-of-generation tokens (default true) */
  stopAtEog?: boolean;
  signal?: AbortSignal;
  /** top log-probabilities to report per generated token (0 = none) */
  topLogprobs?: number;
  /** keep the KV cache of earlier calls and only process the new tokens after the shared prefix */
  reuseCache?: boolean;
}

export type FinishReason = 'stop' | 'length' | 'abort';

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
}

/** tokens in common at the start of two sequences */
function sharedPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * Generate from prompt ids. Yields chunks; returns stats. `history` (the model's cached tokens)
 * is read and updated so callers can keep a conversation's cache.
 */
export async function* generate(
  model: Phi3,
  tok: SpmTokenizer,
  prompt: readonly number[],
  history: number[],
  o: GenerateOptions = {},
): AsyncGenerator<GeneratedChunk, GenerationStats> {
  const maxTokens = o.maxTokens ?? 256;
  if (prompt.length === 0) throw new RangeError('the prompt is empty');
  if (prompt.length + maxTokens > model.ctx) throw new ContextLengthError(prompt.length + maxTokens, model.ctx, `prompt (${prompt.length} tokens) plus max_tokens (${maxTokens})`);
  const sampler = new Sampler(o);

  // prefill: reuse the cached prefix when asked (always recompute at least the last prompt token)
  let keep = o.reuseCache ? Math.min(sharedPrefix(history, prompt), prompt.length - 1) : 0;
  keep = Math.min(keep, model.nPast);
  model.truncate(keep);
  history.length = keep;
  const t0 = performance.now();
  let logits = model.forward(prompt.slice(keep))[0]!;
  history.push(...prompt.slice(keep));
  const t1 = performance.now();

  const stops = (o.stop ?? []).filter((s) => s.length > 0);
  const decoder = new StreamDecoder(tok);
  let pending = ''; // text held back while it may begin a stop string
  let generated = 0;
  let finishReason: FinishReason = 'length';
  const generatedIds: number[] = [];

  while (generated < maxTokens) {
    if (o.signal?.aborted) {
      finishReason = 'abort';
      break;
    }
    const id = sampler.sample(logits, generatedIds);
    generated++;
    if ((o.stopAtEog ?? true) && tok.eog.has(id)) {
      finishReason = 'stop';
      break;
    }
    generatedIds.push(id);
    let chunk: GeneratedChunk = { text: '', token: id };
    if (o.topLogprobs !== undefined) {
      const lp = logSoftmax(logits);
      chunk.logprob = lp[id]!;
      if (o.topLogprobs > 0) {
        const top = Array.from(lp.keys()).sort((a, b) => lp[b]! - lp[a]!).slice(0, o.topLogprobs);
        chunk.topLogprobs = top.map((t) => ({ token: t, logprob: lp[t]! }));
      }
    }
    pending += decoder.push(id);
    // a stop string anywhere in the pending text ends generation before it
    const hit = stops.map((s) => pending.indexOf(s)).filter((i) => i >= 0);
    if (hit.length) {
      chunk = { ...chunk, text: pending.slice(0, Math.min(...hit)) };
      yield chunk;
      finishReason = 'stop';
      pending = '';
      break;
    }
    // emit all but the longest tail that is a proper prefix of some stop string
    let hold = 0;
    for (const s of stops) for (let k = Math.min(s.length - 1, pending.length); k > hold; k--) if (s.startsWith(pending.slice(-k))) hold = k;
    chunk.text = pending.slice(0, pending.length - hold);
    pending = pending.slice(pending.length - hold);
    yield chunk;

    if (generated >= maxTokens) break;
    if (o.signal?.aborted) {
      finishReason = 'abort';
      break;
    }
    logits = model.forward([id])[0]!;
    history.push(id);
  }
  if (finishReason !== 'stop') {
    const rest = pending + decoder.flush();
    if (rest) yield { text: rest, token: -1 };
  }
  const t2 = performance.now();
  const promptSeconds = (t1 - t0) / 1000;
  const decodeSeconds = (t2 - t1) / 1000;
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
}
