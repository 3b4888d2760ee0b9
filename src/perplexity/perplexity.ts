/**
 * Perplexity by llama-perplexity's method (tools/perplexity): the text's tokens (BOS per the
 * vocabulary) cut into chunks of `ctx` tokens; each chunk runs from an empty cache with its first token
 * replaced by BOS (when the vocabulary adds one), and only the second half of each chunk is scored —
 * token j+1 by the logits at j, for j from ctx/2 to ctx−2 — so every scored token has at least ctx/2 of
 * context. PPL = exp(mean NLL); its error is PPL · √(var(NLL) / (n − 1)), as llama.cpp prints it.
 */
import type { Model } from '../api.js';

export interface PerplexityOptions {
  /** tokens per chunk (llama-perplexity's -c; default 512) */
  ctx?: number;
  /** called after each chunk with the running figures */
  onChunk?: (c: PerplexityChunk) => void;
}

export interface PerplexityChunk {
  chunk: number;
  nChunks: number;
  /** PPL over the tokens scored so far */
  ppl: number;
  /** this chunk's own PPL */
  chunkPpl: number;
}

export interface PerplexityResult {
  ppl: number;
  /** llama.cpp's ± figure */
  stderr: number;
  /** running PPL after each chunk (llama.cpp's [1]…,[2]… line) */
  chunks: number[];
  nTokens: number;
  scored: number;
  ctx: number;
}

function logSoftmaxAt(row: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - max);
  return row[id]! - max - Math.log(s);
}

export async function perplexity(model: Model, text: string, o: PerplexityOptions = {}): Promise<PerplexityResult> {
  const ctx = o.ctx ?? 512;
  if (!Number.isInteger(ctx) || ctx < 4) throw new RangeError(`ctx must be a whole number ≥ 4, got ${ctx}`);
  if (ctx > model.ctx) throw new RangeError(`ctx ${ctx} is above the model's loaded context ${model.ctx}`);
  const tokens = model.tokenizer.encode(text, { addSpecial: true });
  if (tokens.length < 2 * ctx) throw new RangeError(`the text is ${tokens.length} tokens; perplexity at ctx ${ctx} needs at least ${2 * ctx} (as llama-perplexity)`);
  const bos = model.tokenizer.addBos ? model.tokenizer.bos : undefined;
  const nChunks = Math.floor(tokens.length / ctx);
  const first = ctx >> 1;
  let nll = 0, nll2 = 0, count = 0;
  const chunks: number[] = [];
  for (let c = 0; c < nChunks; c++) {
    const ids = tokens.slice(c * ctx, (c + 1) * ctx);
    if (bos !== undefined) ids[0] = bos;
    const rows = await model.logits(ids, { all: true });
    let chunkNll = 0;
    for (let j = first; j < ctx - 1; j++) {
      const v = -logSoftmaxAt(rows[j]!, tokens[c * ctx + j + 1]!);
      nll += v;
      nll2 += v * v;
      chunkNll += v;
    }
    count += ctx - 1 - first;
    chunks.push(Math.exp(nll / count));
    o.onChunk?.({ chunk: c + 1, nChunks, ppl: Math.exp(nll / count), chunkPpl: Math.exp(chunkNll / (ctx - 1 - first)) });
  }
  const mean = nll / count;
  const ppl = Math.exp(mean);
  const variance = nll2 / count - mean * mean;
  const stderr = variance > 0 ? ppl * Math.sqrt(variance / (count - 1)) : 0;
  return { ppl, stderr, chunks, nTokens: tokens.length, scored: count, ctx };
}
