// Continuous batching (src/generate/batcher.ts, Phi3.forwardParts, Model's slots): several sequences
// in one forward pass give each the logits it gets alone — bit for bit, for every weight type and
// both backends — so a seeded generation gives the same tokens whether it runs alone or batched
// with others; batches really carry several sequences; a prompt reuses the cache of the slot that
// shares its prefix; logits() waits for the whole model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { openGguf } from '../src/gguf/file-source.js';
import { WasmOps, planFor } from '../src/backend/wasm/ops.js';
import { nodeHost } from '../src/backend/wasm/node-host.js';
import { RefOps } from '../src/backend/ref/ops.js';
import { NUMERICS } from '../src/backend/numerics.js';
import { Phi3 } from '../src/model/phi3.js';
import { configFromGguf } from '../src/model/config.js';
import { writeSynth } from '../src/synth/synth.js';
import { loadModel, type Model } from '../src/api.js';
import { demoModelPath } from '../src/demo-model.js';
import { tmpDir } from './helpers.js';

const dir = tmpDir();
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('Phi3.forwardParts: a row computes the same whatever else is in the batch', () => {
  const shape = { dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, contextLength: 256 };
  for (const type of ['Q4_0', 'Q8_0', 'Q4_K_M', 'Q6_K', 'F16', 'F32'] as const)
    for (const backend of ['wasm', 'ref'] as const) {
      if (backend === 'ref' && type !== 'Q4_K_M' && type !== 'F32') continue;
      it(`${type}, ${backend}: three sequences (a prompt chunk, two decode steps) in one pass = each alone`, async () => {
        const file = path.join(dir, `parts-${type}.gguf`);
        writeSynth(file, { shape, type, seed: 5 });
        const f = openGguf(file);
        const c = configFromGguf(f);
        const ops = backend === 'wasm' ? new WasmOps(planFor(c, 3 * 64, 16, 2), nodeHost) : new RefOps(NUMERICS.exact);
        const m = Phi3.load(f, ops, { ctx: 64, maxBatch: 16, sequences: 3 });
        if (ops instanceof WasmOps) await ops.start();
        try {
          const [a, b, d] = m.sequences as [typeof m.sequences[0], typeof m.sequences[0], typeof m.sequences[0]];
          const pa = [1, 50, 99, 7, 300], pb = [1, 9, 8], pd = [1, 400, 401, 402, 403, 404];
          // alone: each sequence's prompt, then one more token
          const alone = [
            [m.forwardParts([{ seq: a, tokens: pa, want: 'last' }])[0]![0]!, m.forwardParts([{ seq: a, tokens: [11], want: 'last' }])[0]![0]!],
            [m.forwardParts([{ seq: b, tokens: pb, want: 'last' }])[0]![0]!, m.forwardParts([{ seq: b, tokens: [12], want: 'last' }])[0]![0]!],
            [m.forwardParts([{ seq: d, tokens: pd, want: 'all' }])[0]!.at(-1)!, m.forwardParts([{ seq: d, tokens: [13, 14], want: 'last' }])[0]![0]!],
          ];
          m.reset();
          // batched: a's and b's prompts with d's, then a and b decode beside d's two-token chunk
          const first = m.forwardParts([{ seq: a, tokens: pa, want: 'last' }, { seq: b, tokens: pb, want: 'last' }, { seq: d, tokens: pd, want: 'last' }]);
          const second = m.forwardParts([{ seq: d, tokens: [13, 14], want: 'last' }, { seq: a, tokens: [11], want: 'last' }, { seq: b, tokens: [12], want: 'last' }]);
          expect(bits(first[0]![0]!)).toEqual(bits(alone[0]![0]!));
          expect(bits(first[1]![0]!)).toEqual(bits(alone[1]![0]!));
          expect(bits(first[2]![0]!)).toEqual(bits(alone[2]![0]!));
          expect(bits(second[1]![0]!)).toEqual(bits(alone[0]![1]!));
          expect(bits(second[2]![0]!)).toEqual(bits(alone[1]![1]!));
          expect(bits(second[0]![0]!)).toEqual(bits(alone[2]![1]!));
          expect([a.nPast, b.nPast, d.nPast]).toEqual([6, 4, 8]);
          expect(() => m.forwardParts([{ seq: a, tokens: Array(17).fill(1), want: 'none' }])).toThrow(/more than the 16/);
        } finally {
          ops.dispose();
          f.close();
        }
      });
    }
});

describe('Model with parallel sequences (the demo model)', () => {
  let batched: Model, alone: Model;
  beforeAll(async () => {
    batched = await loadModel(demoModelPath(), { parallel: 4, ctx: 512, threads: 2 });
    alone = await loadModel(demoModelPath(), { ctx: 512, threads: 2 });
  });
  afterAll(async () => {
    await batched?.close();
    await alone?.close();
  });
  const run = async (m: Model, prompt: string, o: { seed: number; temperature: number; maxTokens: number }) => {
    const ids: number[] = [];
    const it = m.stream(prompt, { ...o, reuseCache: false });
    for (;;) {
      const r = await it.next();
      if (r.done) return { ids, stats: r.value };
      ids.push(r.value.token);
    }
  };
  const jobs = [
    { prompt: 'Once upon a time', seed: 1, temperature: 0, maxTokens: 40 },
    { prompt: 'The old man said', seed: 2, temperature: 0.8, maxTokens: 24 },
    { prompt: 'In the morning the city', seed: 3, temperature: 1.0, maxTokens: 33 },
    { prompt: 'She', seed: 4, temperature: 0.6, maxTokens: 17 },
    { prompt: 'A fifth one waits for a slot', seed: 5, temperature: 0.7, maxTokens: 12 },
  ];

  it('five concurrent seeded generations on 4 slots give exactly the tokens each gives alone, and passes carried several sequences', async () => {
    const ref = [];
    const o = ({ prompt: _, ...rest }: (typeof jobs)[0]) => rest;
    for (const j of jobs) ref.push((await run(alone, j.prompt, o(j))).ids);
    const before = batched.batching;
    const got = await Promise.all(jobs.map((j) => run(batched, j.prompt, o(j))));
    got.forEach((g, i) => expect(g.ids, jobs[i]!.prompt).toEqual(ref[i]));
    const after = batched.batching;
    const tokens = after.tokens - before.tokens, ticks = after.ticks - before.ticks;
    expect(after.widest).toBeGreaterThanOrEqual(4);
    // sequential would be one pass per token per generation; batched, far fewer passes than tokens
    expect(ticks).toBeLessThan(0.6 * tokens);
  });

  it('a follow-up prompt goes to the slot holding its prefix and computes only the new tokens', async () => {
    const history = 'The old man walked into the hall and sat down by the fire. He looked at the';
    const first = await run(batched, history, { seed: 1, temperature: 0, maxTokens: 4 });
    // another conversation in between takes a different slot and does not evict the first
    await run(batched, 'Something else entirely', { seed: 1, temperature: 0, maxTokens: 4 });
    const it = batched.stream(history + ' door', { temperature: 0, maxTokens: 4 });
    let stats;
    for (;;) {
      const r = await it.next();
      if (r.done) (stats = r.value);
      if (r.done) break;
    }
    expect(first.stats.promptTokensEvaluated).toBe(first.stats.promptTokens);
    expect(stats!.promptTokensEvaluated).toBeLessThanOrEqual(3);
    expect(batched.slotStates().filter((s) => s.cachedTokens > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('logits() runs in one free sequence beside running generations, with the bits it has alone', async () => {
    const ref = await run(alone, 'Once upon a time', { seed: 1, temperature: 0, maxTokens: 20 });
    const g1 = run(batched, 'Once upon a time', { seed: 1, temperature: 0, maxTokens: 20 });
    await new Promise((r) => setTimeout(r, 5));
    const rows = await batched.logits([1, 450, 2030], { all: true });
    expect((await g1).ids).toEqual(ref.ids);
    expect(bits(rows[2]!)).toEqual(bits((await alone.logits([1, 450, 2030], { all: true }))[2]!));
  });

  it('createSequence(): a conversation keeps its cache between calls, beside other generations; a pinned slot is not lent out', async () => {
    const m = await loadModel(demoModelPath(), { parallel: 2, ctx: 512, threads: 2 });
    try {
      await using a = await m.createSequence();
      const turn1 = 'The old man walked into the hall and sat down by the fire.';
      let s1, s2;
      for await (const _ of a.generate(turn1, { maxTokens: 8, temperature: 0 })) void _;
      const g = a.generate(turn1 + ' He said', { maxTokens: 8, temperature: 0 });
      const other = run(m, 'Something else', { seed: 3, temperature: 0.7, maxTokens: 16 }); // the other slot
      for await (const _ of g) void _;
      s2 = await g.stats;
      s1 = await other;
      expect(s2.promptTokensEvaluated).toBeLessThanOrEqual(3);
      expect(s1.ids).toEqual((await run(alone, 'Something else', { seed: 3, temperature: 0.7, maxTokens: 16 })).ids);
      // with both slots pinned, a plain generation waits until one is given back
      const b = await m.createSequence();
      let ran = false;
      const waiting = run(m, 'Late', { seed: 1, temperature: 0, maxTokens: 2 }).then(() => (ran = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(ran).toBe(false);
      await b.dispose();
      await waiting;
      expect(ran).toBe(true);
    } finally {
      await m.close();
    }
  });

  it('parallel is checked: a positive integer', async () => {
    await expect(loadModel(demoModelPath(), { parallel: 0 })).rejects.toThrow(/parallel must be a positive integer/);
    await expect(loadModel(demoModelPath(), { parallel: 1.5 })).rejects.toThrow(/parallel must be a positive integer/);
  });
});
