// Sampler: top-k selection by one scan gives exactly the full sort's candidates and order.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { topCandidates, Sampler } from '../src/generate/sampler.js';

const sorted = (l: Float32Array) => Array.from(l.keys()).sort((a, b) => l[b]! - l[a]! || a - b);

describe('topCandidates', () => {
  it('is the full sort cut at k, ties by id, for any k (fast-check, many ties)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 1, maxLength: 400 }), fc.integer({ min: -1, max: 410 }), (xs, k) => {
        const l = Float32Array.from(xs, (x) => x / 2);
        const want = sorted(l);
        expect(topCandidates(l, k)).toEqual(k <= 0 ? want : want.slice(0, k));
      }),
      { numRuns: 500 },
    );
  });
  it('a seeded top-k draw is the one the full sort gives (same candidates, same weights)', () => {
    const l = Float32Array.from({ length: 32064 }, (_, i) => Math.sin(i * 12.9898) * 8);
    const a = new Sampler({ temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: 9 });
    const picks = Array.from({ length: 50 }, () => a.sample(l));
    const top = sorted(l).slice(0, 40);
    expect(picks.every((p) => top.includes(p))).toBe(true);
    expect(new Set(picks).size).toBeGreaterThan(1);
  });
});

/** the sampler as it was: every candidate sorted, then top-k, top-p, min-p, temperature, a draw */
function fullSortSample(l: Float32Array, o: { temperature: number; topK?: number; topP?: number; minP?: number }, r: number): number {
  // no truncation: every token, in id order
  const all = !(o.topK && o.topK > 0) && !(o.topP !== undefined && o.topP < 1) && !(o.minP !== undefined && o.minP > 0);
  let cand = all ? Array.from(l.keys()) : Array.from(l.keys()).sort((a, b) => l[b]! - l[a]! || a - b);
  if (o.topK && o.topK > 0) cand = cand.slice(0, o.topK);
  const max = cand.reduce((m, i) => Math.max(m, l[i]!), -Infinity);
  const norm = (p: number[]) => {
    const s = p.reduce((a, b) => a + b, 0);
    return p.map((x) => x / s);
  };
  let probs = norm(cand.map((i) => Math.exp(l[i]! - max)));
  if (o.topP !== undefined && o.topP < 1) {
    let cum = 0, keep = probs.length;
    for (let i = 0; i < probs.length; i++) if ((cum += probs[i]!) >= o.topP) {
      keep = i + 1;
      break;
    }
    cand = cand.slice(0, keep);
    probs = norm(probs.slice(0, keep));
  }
  if (o.minP !== undefined && o.minP > 0) {
    let keep = probs.findIndex((p) => p < probs[0]! * o.minP!);
    if (keep < 0) keep = probs.length;
    cand = cand.slice(0, Math.max(1, keep));
  }
  const w = cand.map((i) => Math.exp((l[i]! - max) / o.temperature));
  let x = r * w.reduce((a, b) => a + b, 0);
  for (let i = 0; i < cand.length; i++) if ((x -= w[i]!) < 0) return cand[i]!;
  return cand[cand.length - 1]!;
}

describe('Sampler without top-k sorts only what top-p / min-p can keep', () => {
  it('picks exactly what the full sort picks (fast-check: logits, top-p, min-p, temperature, seeds)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 3000 }), fc.double({ min: 0.5, max: 12, noNaN: true }), fc.option(fc.double({ min: 0.05, max: 0.999, noNaN: true })),
        fc.option(fc.double({ min: 0.001, max: 0.5, noNaN: true })), fc.double({ min: 0.2, max: 2, noNaN: true }), fc.integer({ min: 0, max: 1e9 }),
        (n, spread, topP, minP, temperature, seed) => {
          const l = Float32Array.from({ length: n }, (_, i) => Math.round(Math.sin(i * 12.9898 + seed) * spread * 4) / 4); // many ties
          const o = { temperature, topP: topP ?? undefined, minP: minP ?? undefined, seed };
          const s = new Sampler(o);
          const ref = new Sampler(o); // same seed: the same uniform draws, one per sample()
          for (let step = 0; step < 3; step++) {
            const got = s.sample(l);
            const r = (ref as unknown as { rng: { next(): number } }).rng.next();
            expect(got).toBe(fullSortSample(l, o, r));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
