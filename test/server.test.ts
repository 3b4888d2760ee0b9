import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import * as http from 'node:http';
import OpenAI from 'openai';
import { writeSynth, PRESETS } from '../src/synth/synth.js';
import { loadModel, type Model } from '../src/api.js';
import { Phi3Server } from '../src/server/server.js';
import { tmpDir } from './helpers.js';

let server: Phi3Server;
let model: Model;
let base: string;
let client: OpenAI;

beforeAll(async () => {
  const file = path.join(tmpDir(), 'serve.gguf');
  writeSynth(file, { shape: PRESETS.tiny!, type: 'Q8_0', seed: 21 });
  model = await loadModel(file, { ctx: 256, threads: 2 });
  server = new Phi3Server(model, { port: 0, modelId: 'tiny' });
  const a = await server.listen();
  base = `http://127.0.0.1:${a.port}`;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
});
afterAll(async () => {
  await server.close();
  await model.close();
});

const raw = (method: string, p: string, body?: string) =>
  fetch(base + p, { method, body, headers: { 'content-type': 'application/json' } }).then(async (r) => ({ status: r.status, body: await r.text() }));

describe('OpenAI-compatible server, with the official openai client', () => {
  it('chat completion (non-streaming) with usage and a seed that reproduces', async () => {
    const req = { model: 'tiny', messages: [{ role: 'user' as const, content: 'Hello there' }], max_tokens: 12, temperature: 0.9, seed: 7 };
    const a = await client.chat.completions.create(req);
    const b = await client.chat.completions.create(req);
    expect(a.object).toBe('chat.completion');
    expect(a.choices[0]!.message.role).toBe('assistant');
    expect(a.choices[0]!.message.content).toBe(b.choices[0]!.message.content);
    expect(a.usage!.prompt_tokens).toBe(model.tokenize(model.chatPrompt(req.messages), { special: true, addBos: false }).length);
    expect(a.usage!.completion_tokens).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(a.choices[0]!.finish_reason);
  });

  it('streaming chat: SSE chunks in OpenAI shape, same text as non-streaming, usage on request', async () => {
    const req = { model: 'tiny', messages: [{ role: 'user' as const, content: 'Tell me' }], max_tokens: 16, temperature: 0 };
    const whole = await client.chat.completions.create(req);
    const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let text = '', finish: string | null = null, usage;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toEqual(whole.usage);
  });

  it('completions with stop and logprobs', async () => {
    const r = await client.completions.create({ model: 'tiny', prompt: 'The model', max_tokens: 8, temperature: 0, logprobs: 3 });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens!.length).toBe(r.usage!.completion_tokens);
    expect(lp.token_logprobs!.every((x) => x! <= 0)).toBe(true);
    expect(Object.keys(lp.top_logprobs![0]!).length).toBe(3);
    const text = r.choices[0]!.text;
    if (text.length > 4) {
      const stop = text.slice(2, 4);
      const s = await client.completions.create({ model: 'tiny', prompt: 'The model', max_tokens: 8, temperature: 0, stop });
      expect(s.choices[0]!.text).toBe(text.slice(0, text.indexOf(stop)));
      expect(s.choices[0]!.finish_reason).toBe('stop');
    }
    const st = await client.completions.create({ model: 'tiny', prompt: 'The model', max_tokens: 8, temperature: 0, stream: true });
    let t2 = '';
    for await (const c of st) t2 += c.choices[0]?.text ?? '';
    expect(t2).toBe(text);
  });

  it('chat logprobs / top_logprobs', async () => {
    const r = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 });
    const c = r.choices[0]!.logprobs!.content!;
    expect(c.length).toBe(r.usage!.completion_tokens);
    expect(c[0]!.top_logprobs.length).toBe(2);
    // greedy: the chosen token is the most likely one
    expect(c[0]!.logprob).toBeCloseTo(c[0]!.top_logprobs[0]!.logprob, 6);
  });

  it('errors: malformed JSON, bad parameters, context overflow → 400 with an OpenAI error body', async () => {
    const bad = await raw('POST', '/v1/chat/completions', '{"messages": [');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.message).toMatch(/malformed JSON/);
    await expect(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], temperature: -1 })).rejects.toMatchObject({ status: 400, error: { param: 'temperature' } });
    await expect(client.chat.completions.create({ model: 'tiny', messages: [] })).rejects.toMatchObject({ status: 400 });
    const big = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 100000 }).catch((e) => e);
    expect(big.status).toBe(400);
    expect(big.error.code).toBe('context_length_exceeded');
    expect(big.message).toMatch(/context holds 256 tokens/);
    expect((await raw('GET', '/nope')).status).toBe(404);
  });

  it('models, health, metrics, tokenize, detokenize', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
    expect(JSON.parse((await raw('GET', '/health')).body)).toEqual({ status: 'ok' });
    const tok = JSON.parse((await raw('POST', '/tokenize', JSON.stringify({ content: 'the model' }))).body);
    expect(tok.tokens).toEqual(model.tokenize('the model', { addBos: false, special: true }));
    const de = JSON.parse((await raw('POST', '/detokenize', JSON.stringify({ tokens: tok.tokens }))).body);
    expect(de.content).toBe('the model');
    const m = (await raw('GET', '/metrics')).body;
    expect(m).toMatch(/phi3_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+/);
    expect(m).toMatch(/phi3_generated_tokens_total \d+/);
    expect(m).toMatch(/phi3_request_duration_seconds_count/);
  });

  it('50 concurrent streaming requests all complete correctly', async () => {
    const req = (i: number) => ({ model: 'tiny', messages: [{ role: 'user' as const, content: `request ${i % 5}` }], max_tokens: 6, temperature: 0 });
    const expected = await Promise.all([0, 1, 2, 3, 4].map((i) => client.chat.completions.create(req(i)).then((r) => r.choices[0]!.message.content)));
    const texts = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const s = await client.chat.completions.create({ ...req(i), stream: true });
        let t = '';
        for await (const c of s) t += c.choices[0]?.delta.content ?? '';
        return t;
      }),
    );
    texts.forEach((t, i) => expect(t).toBe(expected[i % 5]));
  });

  it('a client that disconnects stops its generation', async () => {
    const before = server.metrics.generatedTokens;
    const abortedBefore = server.metrics.aborted;
    await new Promise<void>((resolve) => {
      const r = http.request(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.once('data', () => {
          r.destroy(); // hang up after the first chunk
          resolve();
        });
      });
      r.end(JSON.stringify({ prompt: 'abc', max_tokens: 200, temperature: 0, stream: true, ignore_eos: true }));
    });
    await new Promise((r) => setTimeout(r, 300));
    const generated = server.metrics.generatedTokens - before;
    expect(generated).toBeLessThan(200);
    expect(server.metrics.aborted).toBe(abortedBefore + 1);
    // the model is free again
    const ok = await client.completions.create({ model: 'tiny', prompt: 'abc', max_tokens: 2 });
    expect(ok.choices[0]!.finish_reason).toBeDefined();
  });

  it('memory stays flat over 500 requests', async () => {
    const run = (n: number) => Promise.all(Array.from({ length: n }, () => client.completions.create({ model: 'tiny', prompt: 'hi', max_tokens: 2, temperature: 0 })));
    await run(100);
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 4; i++) await run(100);
    global.gc?.();
    const after = process.memoryUsage().heapUsed;
    expect(after - before).toBeLessThan(40 << 20);
  });
});
