// Sampler: top-k selection by one scan gives exactly the full sort's candidates and order.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { topCandidates, Sampler } from '../src/generate/sampler.js';

const sorted = (l: Float32Array) => Array.from(l.keys()).sort((a, b) => l[b]! - l[a]! || a - b);

describe('topCandidates', () => {
  it('is the full sort cut at k, ties by id, for any k (fast-check, many ties)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: -1, max: 210 }), (xs, k) => {
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
