/**
 * Perplexity by llama-perplexity's method (tools/perplexity): the text's tokens (BOS per the
 * vocabulary) cut into chunks of `ctx` tokens; each chunk runs from an empty cache with its first token
 * replaced by BOS (when the vocabulary adds one), and only the second half of each chunk is scored —
 * token j+1 by the logits at j, for j from ctx/2 to ctx−2 — so every scored token has at least ctx/2 of
 * context. PPL = exp(mean NLL); its error is PPL · √(var(NLL) / (n − 1)), as llama.cpp prints it.
 */
import type { Model } from '../api.js';
import { KldBaseWriter, kldAt, readKldBase, summarizeKld, type KldPosition, type KldSummary } from './kld-file.js';

export interface PerplexityOptions {
  /** tokens per chunk (llama-perplexity's -c; default 512; with klBase: the base file's) */
  ctx?: number;
  /** tokens per forward call within a chunk (llama-perplexity's -b; default the whole chunk): the same result */
  batch?: number;
  /** write every scored position's log-probabilities as llama-perplexity's --kl-divergence-base file */
  saveLogits?: string;
  /** compare with this base file (ours or llama-perplexity's): its tokens and chunks are used, the text is not */
  klBase?: string;
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
  /** with klBase: KL(base ‖ this model) and the other figures llama-perplexity --kl-divergence prints */
  kld?: KldSummary;
}

function logSoftmaxAt(row: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - max);
  return row[id]! - max - Math.log(s);
}

export async function perplexity(model: Model, text: string | undefined, o: PerplexityOptions = {}): Promise<PerplexityResult> {
  const base = o.klBase !== undefined ? readKldBase(o.klBase) : undefined;
  if (base && o.ctx !== undefined && o.ctx !== base.nCtx) throw new RangeError(`ctx ${o.ctx} differs from the KL base file's n_ctx ${base.nCtx} (${base.path})`);
  if (base && base.nVocab !== model.config.vocabSize) throw new RangeError(`the KL base file ${base.path} has n_vocab ${base.nVocab}; this model has ${model.config.vocabSize}`);
  const ctx = base?.nCtx ?? o.ctx ?? 512;
  if (!Number.isInteger(ctx) || ctx < 4) throw new RangeError(`ctx must be a whole number ≥ 4, got ${ctx}`);
  if (ctx > model.ctx) throw new RangeError(`ctx ${ctx} is above the model's loaded context ${model.ctx}`);
  let tokens: number[];
  if (base) tokens = Array.from(base.tokens);
  else {
    if (text === undefined) throw new RangeError('no text (and no KL base file to take the tokens from)');
    tokens = model.tokenizer.encode(text, { addSpecial: true });
    if (tokens.length < 2 * ctx) throw new RangeError(`the text is ${tokens.length} tokens; perplexity at ctx ${ctx} needs at least ${2 * ctx} (as llama-perplexity)`);
  }
  const bos = model.tokenizer.addBos ? model.tokenizer.bos : undefined;
  const nChunks = base?.nChunk ?? Math.floor(tokens.length / ctx);
  const first = ctx >> 1;
  const writer = o.saveLogits !== undefined ? new KldBaseWriter(o.saveLogits, ctx, model.config.vocabSize, nChunks, tokens) : undefined;
  const klds: KldPosition[] = [];
  let nll = 0, nll2 = 0, count = 0;
  const chunks: number[] = [];
  try {
    for (let c = 0; c < nChunks; c++) {
      const ids = tokens.slice(c * ctx, (c + 1) * ctx);
      if (bos !== undefined) ids[0] = bos;
      const rows = await model.logits(ids, { all: true, batch: o.batch });
      let chunkNll = 0;
      for (let j = first; j < ctx - 1; j++) {
        const next = tokens[c * ctx + j + 1]!;
        const v = -logSoftmaxAt(rows[j]!, next);
        nll += v;
        nll2 += v * v;
        chunkNll += v;
        writer?.write(rows[j]!);
        if (base) klds.push(kldAt(rows[j]!, base.row(c, j - first), next));
      }
      count += ctx - 1 - first;
      chunks.push(Math.exp(nll / count));
      o.onChunk?.({ chunk: c + 1, nChunks, ppl: Math.exp(nll / count), chunkPpl: Math.exp(chunkNll / (ctx - 1 - first)) });
    }
  } finally {
    writer?.close();
  }
  const mean = nll / count;
  const ppl = Math.exp(mean);
  const variance = nll2 / count - mean * mean;
  const stderr = variance > 0 ? ppl * Math.sqrt(variance / (count - 1)) : 0;
  return { ppl, stderr, chunks, nTokens: tokens.length, scored: count, ctx, ...(base ? { kld: summarizeKld(klds) } : {}) };
}
