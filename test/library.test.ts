// The library behaves as users expect: generation yields to the event loop, abandoned generations
// give the model back, calls queue, options are checked up front, every public type is exported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as lib from '../src/index.js';
import { loadModel, OutOfMemoryError, UnsupportedModelError, ContextLengthError, CrewError, type Model } from '../src/index.js';
import { writeSynth, PRESETS } from '../src/synth/synth.js';
import { ROOT, tmpDir } from './helpers.js';

const dir = tmpDir();
const small = path.join(dir, 'small.gguf');
let model: Model;
beforeAll(async () => {
  writeSynth(small, { shape: PRESETS.small!, type: 'Q8_0', seed: 5 });
  model = await loadModel(small, { ctx: 512, threads: 2 });
});
afterAll(() => model.close());

const greedy = async (m: Model, prompt: string, n: number, onFirst?: () => void) => {
  let s = '';
  for await (const t of m.generate(prompt, { maxTokens: n, temperature: 0, stopAtEog: false })) {
    if (!s) onFirst?.();
    s += t;
  }
  return s;
};

describe('generation yields to the event loop', () => {
  it('timers tick during a generation, once per token or more', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const g = model.generate('Hello', { maxTokens: 40, temperature: 0, stopAtEog: false });
    for await (const _ of g) void _;
    clearInterval(timer);
    const s = await g.stats;
    expect(s.generatedTokens).toBe(40);
    expect(ticks).toBeGreaterThan(0);
  });

  it("the README's AbortSignal.timeout example stops within one token", async () => {
    const ms = 60;
    const t0 = performance.now();
    let perToken = 0;
    const g = model.generate('Hello', { maxTokens: 400, temperature: 0.7, seed: 1, stopAtEog: false, signal: AbortSignal.timeout(ms) });
    let last = t0;
    for await (const _ of g) {
      const now = performance.now();
      perToken = Math.max(perToken, now - last);
      last = now;
    }
    const s = await g.stats;
    const took = performance.now() - t0;
    expect(s.finishReason).toBe('abort');
    expect(s.generatedTokens).toBeLessThan(400);
    expect(took).toBeLessThan(ms + 2 * perToken + 50);
  });

  it('an already-aborted signal runs nothing', async () => {
    const g = model.generate('Hello', { maxTokens: 10, signal: AbortSignal.abort() });
    const out: string[] = [];
    for await (const t of g) out.push(t);
    expect(out).toEqual([]);
    const s = await g.stats;
    expect(s.finishReason).toBe('abort');
    expect(s.generatedTokens).toBe(0);
  });
});

describe('the model is given back however a generation ends', () => {
  it('a generation that is never iterated does not lock the model', async () => {
    model.generate('never read', { maxTokens: 5 });
    model.stream('never read either', { maxTokens: 5 });
    expect((await greedy(model, 'Hello', 4)).length).toBeGreaterThan(0);
  });

  it('stats settle after a break out of the loop, and the next call runs', async () => {
    const g = model.generate('Hello', { maxTokens: 50, temperature: 0, stopAtEog: false });
    let n = 0;
    for await (const _ of g) if (++n === 3) break;
    const s = await g.stats;
    expect(s.finishReason).toBe('abort');
    expect(s.generatedTokens).toBeGreaterThanOrEqual(3); // a token may add no text yet (a partial UTF-8 character)
    expect(s.generatedTokens).toBeLessThan(50);
    expect((await model.logits([1, 2, 3])).length).toBe(1);
  });

  it('return() and throw() on a stream give the model back', async () => {
    const a = model.stream('Hello', { maxTokens: 50, temperature: 0 });
    await a.next();
    await a.return(undefined as never);
    const b = model.stream('Hello', { maxTokens: 50, temperature: 0 });
    await b.next();
    await expect(b.throw(new Error('stop it'))).rejects.toThrow('stop it');
    expect((await greedy(model, 'Hello', 3)).length).toBeGreaterThan(0);
  });

  it('concurrent calls queue in call order and give the same text as alone', async () => {
    const alone = [await greedy(model, 'One', 8), await greedy(model, 'Two', 8)];
    const order: string[] = []; // the order in which the calls got the model
    const run = (p: string) => greedy(model, p, 8, () => order.push(p));
    const both = await Promise.all([run('One'), run('Two'), model.logits([1, 5, 9]).then((r) => (order.push('logits'), r))]);
    expect(both.slice(0, 2)).toEqual(alone);
    expect(order).toEqual(['One', 'Two', 'logits']);
  });

  it('a generation abandoned mid-way is given back when garbage-collected (child process with --expose-gc)', () => {
    const script = `
      import { loadModel } from ${JSON.stringify(path.join(ROOT, 'dist/src/index.js'))};
      const m = await loadModel(${JSON.stringify(small)}, { ctx: 256, threads: 1 });
      (async () => { const g = m.stream('Hello', { maxTokens: 50 }); await g.next(); })();
      for (let i = 0; i < 20; i++) { await new Promise((r) => setTimeout(r, 5)); globalThis.gc(); }
      const r = await Promise.race([m.logits([1, 2]).then(() => 'ran'), new Promise((r) => setTimeout(() => r('stuck'), 3000))]);
      console.log(r);
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout.trim(), r.stderr).toBe('ran');
  });

  it('a script that never closes the model still exits', () => {
    const script = `
      import { loadModel } from ${JSON.stringify(path.join(ROOT, 'dist/src/index.js'))};
      const m = await loadModel(${JSON.stringify(small)}, { ctx: 256, threads: 2 });
      for await (const t of m.generate('Hi', { maxTokens: 3 })) process.stdout.write('.');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.signal, 'it had to be killed').toBeNull();
    expect(r.status, r.stderr).toBe(0);
  });

  it('Symbol.asyncDispose closes the model', async () => {
    const m = await loadModel(small, { ctx: 64, threads: 1 });
    await m[Symbol.asyncDispose]();
    expect(() => m.generate('x')).toThrow('the model is closed');
  });
});

describe('options are checked up front and name the option', () => {
  it('wrong types are TypeErrors, values out of range RangeErrors', () => {
    expect(() => model.generate('x', { seed: 'abc' as never })).toThrow(TypeError);
    expect(() => model.generate('x', { seed: 'abc' as never })).toThrow(/seed must be a number/);
    expect(() => model.generate('x', { topP: 5 })).toThrow(/topP must be in \(0, 1\]/);
    expect(() => model.generate('x', { maxTokens: 0 })).toThrow(/maxTokens must be a positive integer/);
    expect(() => model.generate('x', { stop: 5 as never })).toThrow(/stop must be a string or an array of strings/);
    expect(() => model.generate('x', { temprature: 0.5 } as never)).toThrow(/unknown option 'temprature'/);
    expect(() => model.generate('x', { logitBias: { 99999: 1 } })).toThrow(/logitBias: token id 99999 is outside the vocabulary/);
    expect(() => model.generate('x', { signal: {} as never })).toThrow(/signal must be an AbortSignal/);
  });
  it('load options too', async () => {
    await expect(loadModel(small, { ctx: 1.5 })).rejects.toThrow(/ctx must be a positive integer, got 1.5/);
    await expect(loadModel(small, { threads: '2' as never })).rejects.toThrow(TypeError);
    await expect(loadModel(small, { backend: 'gpu' as never })).rejects.toThrow(/backend must be 'wasm' or 'ref'/);
  });
  it('stop may be one string', async () => {
    const full = await greedy(model, 'Hello', 12);
    const cut = full.slice(2, 4);
    let s = '';
    expect(cut.length).toBe(2);
    for await (const t of model.generate('Hello', { maxTokens: 12, temperature: 0, stopAtEog: false, stop: cut })) s += t;
    expect(s).toBe(full.slice(0, full.indexOf(cut)));
  });
  it('logitBias steers greedy decoding (-Infinity bans a token, a large bias forces one)', async () => {
    const next = async (o: object) => {
      const g = model.stream('Hello', { maxTokens: 1, temperature: 0, stopAtEog: false, ...o });
      const r = (await g.next()).value as { token: number };
      await g.return(undefined as never);
      return r.token;
    };
    const first = await next({});
    expect(await next({ logitBias: { [first]: -Infinity } })).not.toBe(first);
    expect(await next({ logitBias: { 300: 1000 } })).toBe(300);
  });
  it('max tokens default to the rest of the context', async () => {
    const m = await loadModel(small, { ctx: 40, threads: 1 });
    const g = m.generate('Hello', { temperature: 0, stopAtEog: false });
    for await (const _ of g) void _;
    const s = await g.stats;
    expect(s.promptTokens + s.generatedTokens).toBe(40);
    expect(s.finishReason).toBe('length');
    await m.close();
  });
});

describe('exports', () => {
  it('every error class is exported and usable with instanceof', () => {
    for (const E of [OutOfMemoryError, UnsupportedModelError, ContextLengthError, CrewError, lib.GgufError, lib.TokenizerError]) {
      expect(typeof E).toBe('function');
      expect(new (E as new (...a: unknown[]) => Error)('x', 1, 2)).toBeInstanceOf(Error);
    }
  });
});

describe('Phi-4 family chat (BPE vocabulary, no template in the file)', () => {
  const GPT2 = path.join(ROOT, '..', 'shared', 'models', 'ggml-vocab-gpt-2.gguf');
  it.runIf(fs.existsSync(GPT2))("uses Phi-4's <|im_start|>…<|im_sep|> format and ends the turn at <|im_end|>", async () => {
    const file = path.join(dir, 'phi4.gguf');
    writeSynth(file, { shape: PRESETS['phi4-tiny']!, type: 'Q8_0', seed: 2, vocabFile: GPT2 });
    const m = await loadModel(file, { ctx: 256, threads: 1 });
    expect(m.chatPrompt([{ role: 'system', content: 'S' }, { role: 'user', content: 'Hi' }])).toBe('<|im_start|>system<|im_sep|>S<|im_end|><|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>');
    const t = m.tokenizer;
    for (const s of ['<|im_end|>', '<|endoftext|>', '<|end|>']) expect(t.eog.has(t.tokenId(s)!), s).toBe(true);
    // a reply forced to <|im_end|> ends there, with finish reason stop
    const g = m.chat([{ role: 'user', content: 'Hi' }], { temperature: 0, logitBias: { [t.tokenId('<|im_end|>')!]: 1000 } });
    for await (const _ of g) void _;
    expect((await g.stats).finishReason).toBe('stop');
    expect(m.tokenize('Hello world', { addBos: true })[0]).not.toBe(t.bos); // gpt2 vocabularies add no BOS
    await m.close();
  });
});

describe('memory the engine refuses', () => {
  it('a context whose KV cache cannot fit in a WebAssembly memory is an OutOfMemoryError with the clear message', async () => {
    const file = path.join(dir, 'tiny-oom.gguf');
    writeSynth(file, { shape: PRESETS.tiny!, type: 'Q8_0', seed: 1 });
    const e = await loadModel(file, { ctx: 1 << 22, threads: 1 }).catch((x) => x);
    expect(e).toBeInstanceOf(OutOfMemoryError);
    expect(String(e.message)).toMatch(/do not fit in WebAssembly memory .*try a smaller --ctx/);
  });
});
