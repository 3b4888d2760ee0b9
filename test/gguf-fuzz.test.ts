// The GGUF mutation fuzzer through load, logits, chat and generation on both backends, in worker
// processes (test/fuzz/gguf-fuzz.mjs): 2,000 seeded cases per run, a fresh seed each run (printed,
// so a failure can be replayed: node test/fuzz/gguf-fuzz.mjs --cases N --seed S). 100,000 on demand.
import { describe, expect, it } from 'vitest';
// @ts-expect-error — a plain JS module (runs on its own too)
import { fuzzGguf } from './fuzz/gguf-fuzz.mjs';

describe('GGUF mutation fuzzer, whole stack', () => {
  it('2,000 mutated models: every case loads and runs, or fails with a typed error — no crash, hang, untyped error or memory blow-up', async () => {
    const seed = Math.floor(Math.random() * 1e6);
    const r = await fuzzGguf({ cases: 2000, seed, workers: 2 });
    console.log(`GGUF fuzz seed ${seed}: ${JSON.stringify(r.counts)}; typed errors ${JSON.stringify(r.errors)}`);
    expect(r.failures, JSON.stringify(r.failures.slice(0, 5), null, 1)).toEqual([]);
    // the cases reach every layer: some load and run, some are refused, some by the forward pass
    expect(r.counts.ok).toBeGreaterThan(200);
    expect(r.counts.typed).toBeGreaterThan(200);
    expect(r.errors.NonFiniteLogitsError ?? 0).toBeGreaterThan(0);
  }, 600_000);
});
