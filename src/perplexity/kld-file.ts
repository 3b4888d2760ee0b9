/**
 * llama-perplexity's KL-divergence base file (`--kl-divergence-base f`), read and written in its own
 * layout so that either program can be the base of the other:
 *
 *   "_logits_"                       8 bytes
 *   n_ctx, n_vocab, n_chunk          int32 each
 *   tokens                           int32 × n_chunk·n_ctx (the text's tokens, before BOS replaces a chunk's first)
 *   per chunk, per scored position   nv = 2·⌈n_vocab/2⌉ + 4 uint16: f32 scale, f32 min_log_prob, then n_vocab
 *   (j = n_ctx/2 … n_ctx−2)          uint16 q with log p ≈ scale·q + min_log_prob; q = 0 for logits more than
 *                                    16 below the row's max (their log p is only bounded above)
 *
 * The reader checks the header against the file's size before reading or allocating anything.
 */
import * as fs from 'node:fs';

export class KldFileError extends Error {
  override name = 'KldFileError';
}

export const KLD_MAGIC = '_logits_';
const HEADER = 8 + 12;

/** uint16 words per stored row */
export const kldRowWords = (nVocab: number) => 2 * Math.ceil(nVocab / 2) + 4;
/** scored positions per chunk (llama-perplexity's n_ctx − 1 − n_ctx/2) */
export const kldRowsPerChunk = (nCtx: number) => nCtx - 1 - (nCtx >> 1);

const f = Math.fround;
/** ggml's nearest_int: round half to even through the f32 magic number 1.5·2^23 */
const nearestInt = (x: number) => f(f(x) + 12582912) - 12582912;

/** one row's quantized log-probabilities, as llama-perplexity's log_softmax writes them (f32 steps) */
export function quantizeLogProbs(logits: Float32Array, out: Uint16Array): void {
  const n = logits.length;
  let max = logits[0]!, min = logits[0]!;
  for (let i = 1; i < n; i++) {
    if (logits[i]! > max) max = logits[i]!;
    if (logits[i]! < min) min = logits[i]!;
  }
  min = Math.max(min, f(max - 16));
  let sum = 0;
  for (let i = 0; i < n; i++) sum += f(Math.exp(f(logits[i]! - max)));
  const lse = f(Math.log(sum));
  const minLogProb = f(f(min - max) - lse);
  const scale = f(f(max - min) / 65535);
  const head = new Float32Array(out.buffer, out.byteOffset, 2);
  head[0] = scale;
  head[1] = minLogProb;
  const q = out.subarray(4);
  if (scale) {
    const inv = f(1 / scale);
    for (let i = 0; i < n; i++) q[i] = logits[i]! > min ? nearestInt(f(inv * f(logits[i]! - min))) : 0;
  } else q.fill(0);
}

export class KldBaseWriter {
  private readonly fd: number;
  private readonly row: Uint16Array;
  constructor(
    readonly path: string,
    nCtx: number,
    readonly nVocab: number,
    nChunk: number,
    tokens: ArrayLike<number>,
  ) {
    this.fd = fs.openSync(path, 'w');
    const head = Buffer.alloc(HEADER + 4 * nChunk * nCtx);
    head.write(KLD_MAGIC, 0, 'latin1');
    head.writeInt32LE(nCtx, 8);
    head.writeInt32LE(nVocab, 12);
    head.writeInt32LE(nChunk, 16);
    for (let i = 0; i < nChunk * nCtx; i++) head.writeInt32LE(tokens[i]!, HEADER + 4 * i);
    fs.writeSync(this.fd, head);
    this.row = new Uint16Array(kldRowWords(nVocab));
  }
  /** the logits at the next scored position */
  write(logits: Float32Array): void {
    this.row.fill(0);
    quantizeLogProbs(logits, this.row);
    fs.writeSync(this.fd, new Uint8Array(this.row.buffer));
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

export interface KldBase {
  path: string;
  nCtx: number;
  nVocab: number;
  nChunk: number;
  tokens: Int32Array;
  /** scored row k of chunk c: scale, min_log_prob and the n_vocab q values */
  row(c: number, k: number): { scale: number; minLogProb: number; q: Uint16Array };
}

export function readKldBase(path: string): KldBase {
  const buf = fs.readFileSync(path);
  const fail = (msg: string, at: number): never => {
    throw new KldFileError(`${path}: offset ${at}: ${msg}`);
  };
  if (buf.length < HEADER || buf.toString('latin1', 0, 8) !== KLD_MAGIC) fail(`not a llama-perplexity logits file (no "${KLD_MAGIC}" magic)`, 0);
  const nCtx = buf.readInt32LE(8), nVocab = buf.readInt32LE(12), nChunk = buf.readInt32LE(16);
  if (nCtx < 4 || nCtx > 1 << 24) fail(`n_ctx ${nCtx} is out of range (4 … 2^24)`, 8);
  if (nVocab < 1 || nVocab > 1 << 24) fail(`n_vocab ${nVocab} is out of range (1 … 2^24)`, 12);
  if (nChunk < 1) fail(`n_chunk ${nChunk} is not positive`, 16);
  const nv = kldRowWords(nVocab), perChunk = kldRowsPerChunk(nCtx);
  const want = HEADER + 4 * nChunk * nCtx + 2 * nChunk * perChunk * nv;
  if (buf.length !== want)
    fail(`${buf.length} bytes, but n_ctx ${nCtx}, n_vocab ${nVocab} and n_chunk ${nChunk} need ${want} (${buf.length < want ? 'truncated' : 'trailing bytes'})`, Math.min(buf.length, want));
  const tokens = new Int32Array(nChunk * nCtx);
  for (let i = 0; i < tokens.length; i++) {
    tokens[i] = buf.readInt32LE(HEADER + 4 * i);
    if (tokens[i]! < 0 || tokens[i]! >= nVocab) fail(`token ${i} is ${tokens[i]}, outside the vocabulary of ${nVocab}`, HEADER + 4 * i);
  }
  const rows0 = HEADER + 4 * nChunk * nCtx;
  const copy = new Uint8Array(buf.length - rows0);
  copy.set(buf.subarray(rows0));
  const words = new Uint16Array(copy.buffer);
  const floats = new Float32Array(copy.buffer);
  return {
    path, nCtx, nVocab, nChunk, tokens,
    row(c, k) {
      if (c < 0 || c >= nChunk || k < 0 || k >= perChunk) throw new RangeError(`row ${c}/${k} is outside ${nChunk} chunks of ${perChunk} rows`);
      const at = (c * perChunk + k) * nv;
      return { scale: floats[at / 2]!, minLogProb: floats[at / 2 + 1]!, q: words.subarray(at + 4, at + 4 + nVocab) };
    },
  };
}

/** one position's KL figures against a base row, as llama-perplexity's kl_divergence computes them */
export interface KldPosition {
  kld: number;
  nll: number;
  nllBase: number;
  sameTop: boolean;
  pDiff: number;
}

export function kldAt(logits: Float32Array, base: { scale: number; minLogProb: number; q: Uint16Array }, tok: number): KldPosition {
  const n = logits.length;
  let max = logits[0]!, imax = 0;
  for (let i = 1; i < n; i++) if (logits[i]! > max) (max = logits[i]!), (imax = i);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const nll = lse - logits[tok]!;
  const nllBase = -(base.scale * base.q[tok]! + base.minLogProb);
  let kld = 0, ibase = 0, pmax = -Infinity;
  for (let i = 0; i < n; i++) {
    const lp = base.scale * base.q[i]! + base.minLogProb;
    if (lp > pmax) (pmax = lp), (ibase = i);
    if (lp > -16) kld += Math.exp(lp) * (lp - (logits[i]! - lse));
  }
  return { kld, nll, nllBase, sameTop: imax === ibase, pDiff: Math.exp(-nll) - Math.exp(-nllBase) };
}

export interface KldSummary {
  count: number;
  pplQ: number;
  pplBase: number;
  /** exp(mean ln(PPL(Q)/PPL(base))) */
  pplRatio: number;
  klMean: number;
  klStderr: number;
  klMax: number;
  klP99: number;
  klP90: number;
  klMedian: number;
  sameTop: number;
  rmsDp: number;
  maxDp: number;
}

export function summarizeKld(ps: KldPosition[]): KldSummary {
  const n = ps.length;
  const mean = (f: (p: KldPosition) => number) => ps.reduce((a, p) => a + f(p), 0) / n;
  const kl = ps.map((p) => p.kld).sort((a, b) => a - b);
  const q = (x: number) => kl[Math.min(n - 1, Math.max(0, Math.round(x * (n - 1))))]!;
  const klMean = mean((p) => p.kld);
  const klVar = mean((p) => p.kld * p.kld) - klMean * klMean;
  const nllQ = mean((p) => p.nll), nllB = mean((p) => p.nllBase);
  return {
    count: n,
    pplQ: Math.exp(nllQ),
    pplBase: Math.exp(nllB),
    pplRatio: Math.exp(nllQ - nllB),
    klMean,
    klStderr: n > 1 && klVar > 0 ? Math.sqrt(klVar / (n - 1)) : 0,
    klMax: kl[n - 1]!,
    klP99: q(0.99),
    klP90: q(0.9),
    klMedian: q(0.5),
    sameTop: ps.filter((p) => p.sameTop).length / n,
    rmsDp: Math.sqrt(mean((p) => p.pDiff * p.pDiff)),
    maxDp: ps.reduce((m, p) => Math.max(m, Math.abs(p.pDiff)), 0),
  };
}
