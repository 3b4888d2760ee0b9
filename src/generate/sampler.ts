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
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

export function validateSampling(o: SamplingOptions): void {
  const bad = (name: string, v: number | undefined, ok: (v: number) => boolean, want: string) => {
    if (v !== undefined && (!Number.isFinite(v) || !ok(v))) throw new RangeError(`${name} must be ${want}, got ${v}`);
  };
  bad('temperature', o.temperature, (v) => v >= 0, '≥ 0');
  bad('top_k', o.topK, (v) => v >= 0 && Number.isInteger(v), 'a non-negative integer');
  bad('top_p', o.topP, (v) => v > 0 && v <= 1, 'in (0, 1]');
  bad('min_p', o.minP, (v) => v >= 0 && v <= 1, 'in [0, 1]');
  bad('repeat_penalty', o.repeatPenalty, (v) => v > 0, '> 0');
  bad('frequency_penalty', o.frequencyPenalty, (v) => v >= -2 && v <= 2, 'in [-2, 2]');
  bad('presence_penalty', o.presencePenalty, (v) => v >= -2 && v <= 2, 'in [-2, 2]');
}

export class Sampler {
  private readonly rng: Rng;
  constructor(readonly opts: SamplingOptions = {}) {
    validateSampling(opts);
    this.rng = new Rng(opts.seed ?? (Math.random() * 2 ** 32) >>> 0);
  }

  /** pick the next token; `history` = tokens so far (for penalties). Does not modify `logits`. */
  sample(logits: Float32Array, history: readonly number[] = []): number {
    const o = this.opts;
    const l = this.applyPenalties(logits, history);
    if (!o.temperature || o.temperature <= 0) return argmax(l);

    // candidates sorted by logit, descending
    let cand = Array.from(l.keys()).sort((a, b) => l[b]! - l[a]! || a - b);
    if (o.topK && o.topK > 0) cand = cand.slice(0, o.topK);
    const max = l[cand[0]!]!;
    let probs = cand.map((i) => Math.exp(l[i]! - max));
    const norm = (p: number[]) => {
      const s = p.reduce((a, b) => a + b, 0);
      return p.map((x) => x / s);
    };
    probs = norm(probs);
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

  private applyPenalties(logits: Float32Array, history: readonly number[]): Float32Array {
    const o = this.opts;
    const rp = o.repeatPenalty ?? 1, fp = o.frequencyPenalty ?? 0, pp = o.presencePenalty ?? 0;
    if ((rp === 1 && fp === 0 && pp === 0) || history.length === 0) return logits;
    const counts = new Map<number, number>();
    for (const t of history.slice(-(o.penaltyLastN ?? 64))) counts.set(t, (counts.get(t) ?? 0) + 1);
    const l = logits.slice();
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
