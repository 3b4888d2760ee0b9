/**
 * Next-token sampling from logits: greedy, or penalties → top-k → top-p → min-p → temperature →
 * a draw from a seedable PRNG (same seed, same logits → same token).
 *
 * The chain order follows llama.cpp's default sampler chain (common/sampling.cpp). Penalties follow
 * llama_sampler_penalties: repeat (divide positive / multiply negative logits), then OpenAI's
 * frequency and presence penalties, over the last `penaltyLastN` tokens.
 */
import { Rng } from '../util/rng.js';

export interface SamplingOptions {
  /** 0 (or less) = greedy */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** how many recent tokens the penalties look at (default 64) */
  penaltyLastN?: number;
  seed?: number;
  /** added to the logit of each token id before sampling (OpenAI's logit_bias; -Infinity bans a token) */
  logitBias?: Record<number, number> | Map<number, number>;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** the names an option goes by in errors: the library's own by default (the CLI and server pass theirs) */
export type OptionNames = (option: string) => string;

/** Check sampling options up front: TypeError for a wrong type, RangeError for a value out of range, naming the option. */
export function validateSampling(o: SamplingOptions, name: OptionNames = (k) => k, vocabSize?: number): void {
  const check = (key: keyof SamplingOptions, ok: (v: number) => boolean, want: string, integer = false) => {
    const v = o[key];
    if (v === undefined) return;
    if (typeof v !== 'number') throw new TypeError(`${name(key)} must be a number, got ${typeof v} ${JSON.stringify(v)}`);
    if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || !ok(v)) throw new RangeError(`${name(key)} must be ${want}, got ${v}`);
  };
  check('temperature', (v) => v >= 0, '≥ 0');
  check('topK', (v) => v >= 0, 'a non-negative integer', true);
  check('topP', (v) => v > 0 && v <= 1, 'in (0, 1]');
  check('minP', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  check('repeatPenalty', (v) => v > 0, '> 0');
  check('frequencyPenalty', (v) => v >= -2 && v <= 2, 'in [-2, 2]');
  check('presencePenalty', (v) => v >= -2 && v <= 2, 'in [-2, 2]');
  check('penaltyLastN', (v) => v >= 0, 'a non-negative integer', true);
  check('seed', (v) => Math.abs(v) <= Number.MAX_SAFE_INTEGER, 'an integer', true);
  if (o.logitBias !== undefined) {
    if (typeof o.logitBias !== 'object' || o.logitBias === null) throw new TypeError(`${name('logitBias')} must be an object of token id → bias`);
    for (const [k, b] of o.logitBias instanceof Map ? o.logitBias : Object.entries(o.logitBias)) {
      const id = Number(k);
      if (!Number.isInteger(id) || id < 0 || (vocabSize !== undefined && id >= vocabSize))
        throw new RangeError(`${name('logitBias')}: token id ${k} is outside the vocabulary${vocabSize ? ` (0..${vocabSize - 1})` : ''}`);
      if (typeof b !== 'number' || Number.isNaN(b) || b === Infinity) throw new RangeError(`${name('logitBias')}: the bias of token ${k} must be a number (or -Infinity), got ${b}`);
    }
  }
}

/**
 * The k highest logits' ids in order (logit descending, then id ascending), as a full sort would give
 * them; k ≤ 0 or ≥ the vocabulary: all of them. One pass with a sorted list of k, so that top-k 40 over
 * 32064 (Phi-3) or 200064 (Phi-4-mini) ids costs a scan, not a sort.
 */
export function topCandidates(l: Float32Array, k: number): number[] {
  const n = l.length;
  if (k <= 0 || k >= n) return Array.from(l.keys()).sort((a, b) => l[b]! - l[a]! || a - b);
  if (k > 128) return topByThreshold(l, k);
  const top: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = l[i]!;
    if (top.length === k) {
      if (!(v > l[top[k - 1]!]!)) continue; // an equal logit with a higher id stays out, as in the sort
      top.pop();
    }
    let j = top.length;
    while (j > 0 && l[top[j - 1]!]! < v) j--;
    top.splice(j, 0, i);
  }
  return top;
}

/** large k: the k-th largest logit by quickselect, the ids above it (and the lowest ids equal to it), sorted */
function topByThreshold(l: Float32Array, k: number): number[] {
  const v = Float32Array.from(l);
  let lo = 0, hi = v.length - 1;
  const want = k - 1; // the (k-1)-th position in descending order
  while (lo < hi) {
    const pivot = v[(lo + hi) >> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (v[i]! > pivot) i++;
      while (v[j]! < pivot) j--;
      if (i <= j) {
        const t = v[i]!;
        v[i++] = v[j]!;
        v[j--] = t;
      }
    }
    if (want <= j) hi = j;
    else if (want >= i) lo = i;
    else break;
  }
  const thr = v[want]!;
  const out: number[] = [];
  for (let i = 0; i < l.length; i++) if (l[i]! > thr) out.push(i);
  for (let i = 0; i < l.length && out.length < k; i++) if (l[i] === thr) out.push(i);
  return out.sort((a, b) => l[b]! - l[a]! || a - b);
}

export class Sampler {
  private readonly rng: Rng;
  private readonly bias: [number, number][];
  constructor(readonly opts: SamplingOptions = {}) {
    validateSampling(opts);
    this.rng = new Rng(opts.seed ?? (Math.random() * 2 ** 32) >>> 0);
    const b = opts.logitBias;
    this.bias = b ? [...(b instanceof Map ? b : Object.entries(b))].map(([k, v]) => [Number(k), v]) : [];
  }

  /** pick the next token; `history` = tokens so far (for penalties). Does not modify `logits`. */
  sample(logits: Float32Array, history: readonly number[] = []): number {
    const o = this.opts;
    const l = this.applyPenalties(logits, history);
    if (!o.temperature || o.temperature <= 0) return argmax(l);

    // with no truncation at all, a draw over every token in id order (no sort)
    if (!((o.topK ?? 0) > 0) && !(o.topP !== undefined && o.topP < 1) && !(o.minP !== undefined && o.minP > 0)) return this.drawAll(l, o.temperature);
    // candidates sorted by logit, descending (ties: lower id first); without top-k, only as many as
    // top-p and min-p can keep are sorted (the same candidates a full sort would give)
    let cand = topCandidates(l, (o.topK ?? 0) > 0 ? o.topK! : this.enough(l));
    const max = l[cand[0]!]!;
    let probs = cand.map((i) => Math.exp(l[i]! - max));
    const norm = (p: number[]) => {
      const s = p.reduce((a, b) => a + b, 0);
      return p.map((x) => x / s);
    };
    probs = this.normalise(probs, cand, l, max);
    if (o.topP !== undefined && o.topP < 1) {
      let cum = 0, keep = probs.length;
      for (let i = 0; i < probs.length; i++) {
        cum += probs[i]!;
        if (cum >= o.topP) {
          keep = i + 1;
          break;
        }
      }
      cand = cand.slice(0, keep);
      probs = norm(probs.slice(0, keep));
    }
    if (o.minP !== undefined && o.minP > 0) {
      const cut = probs[0]! * o.minP;
      let keep = probs.findIndex((p) => p < cut);
      if (keep < 0) keep = probs.length;
      cand = cand.slice(0, Math.max(1, keep));
    }
    // temperature on the surviving logits, then a draw
    const t = o.temperature;
    const w = cand.map((i) => Math.exp((l[i]! - max) / t));
    const total = w.reduce((a, b) => a + b, 0);
    let r = this.rng.next() * total;
    for (let i = 0; i < cand.length; i++) {
      r -= w[i]!;
      if (r < 0) return cand[i]!;
    }
    return cand[cand.length - 1]!;
  }

  /**
   * How many of the best candidates top-p / min-p can keep, so that only those are sorted: all of them
   * unless one of the two is on; then the smallest k whose top-k holds ≥ top_p of the probability and
   * reaches below min_p · p_max (k doubles from 64 until it does).
   */
  private enough(l: Float32Array): number {
    const o = this.opts;
    const topP = o.topP !== undefined && o.topP < 1 ? o.topP : undefined;
    const minP = o.minP !== undefined && o.minP > 0 ? o.minP : undefined;
    if (topP === undefined && minP === undefined) return 0;
    let max = -Infinity;
    for (let i = 0; i < l.length; i++) if (l[i]! > max) max = l[i]!;
    let total = 0;
    for (let i = 0; i < l.length; i++) total += Math.exp(l[i]! - max);
    for (let k = 64; k < l.length; k *= 2) {
      const top = topCandidates(l, k);
      let cum = 0;
      for (const i of top) cum += Math.exp(l[i]! - max);
      const last = Math.exp(l[top[k - 1]!]! - max);
      // top-p is decided inside the first k when their mass reaches top_p; min-p when the k-th is below its cut
      // (a small margin for the sums' rounding: the exact rule is applied to the sorted candidates after)
      // (with top-p on, min-p cuts inside what top-p keeps: top-p alone decides)
      if (topP !== undefined ? cum / total >= topP + 1e-9 : last < minP! * (1 - 1e-9)) return k;
    }
    return 0;
  }

  /** softmax(l / t) over the whole vocabulary, drawn in id order */
  private drawAll(l: Float32Array, t: number): number {
    let max = -Infinity;
    for (let i = 0; i < l.length; i++) if (l[i]! > max) max = l[i]!;
    const w = new Float64Array(l.length);
    let total = 0;
    for (let i = 0; i < l.length; i++) total += w[i] = Math.exp((l[i]! - max) / t);
    let r = this.rng.next() * total;
    let last = 0;
    for (let i = 0; i < l.length; i++) {
      if (w[i]! > 0) last = i;
      if ((r -= w[i]!) < 0) return i;
    }
    return last;
  }

  /** the candidates' probabilities, normalised over the whole vocabulary (as the full sort's were) */
  private normalise(p: number[], cand: number[], l: Float32Array, max: number): number[] {
    let s = 0;
    if (cand.length === l.length || (this.opts.topK ?? 0) > 0) s = p.reduce((a, b) => a + b, 0);
    else for (let i = 0; i < l.length; i++) s += Math.exp(l[i]! - max);
    return p.map((x) => x / s);
  }

  /** logit bias (first in llama.cpp's chain), then the penalties; a copy when anything changes */
  private applyPenalties(logits: Float32Array, history: readonly number[]): Float32Array {
    const o = this.opts;
    if (this.bias.length) {
      logits = logits.slice();
      for (const [t, b] of this.bias) if (t < logits.length) logits[t] = logits[t]! + b;
    }
    const rp = o.repeatPenalty ?? 1, fp = o.frequencyPenalty ?? 0, pp = o.presencePenalty ?? 0;
    if ((rp === 1 && fp === 0 && pp === 0) || history.length === 0) return logits;
    const counts = new Map<number, number>();
    for (const t of history.slice(-(o.penaltyLastN ?? 64))) counts.set(t, (counts.get(t) ?? 0) + 1);
    const l = this.bias.length ? logits : logits.slice();
    for (const [t, n] of counts) {
      if (t < 0 || t >= l.length) continue;
      let v = l[t]!;
      v = v <= 0 ? v * rp : v / rp;
      v -= n * fp + pp;
      l[t] = v;
    }
    return l;
  }
}

/** log-softmax of a logits row (for logprobs) */
export function logSoftmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let s = 0;
  for (const v of logits) s += Math.exp(v - max);
  const lse = max + Math.log(s);
  return logits.map((v) => v - lse);
}
