// The server under random interleavings of connect, write, reset and close on loopback: 10,000
// requests whose clients hang up at random points (before the body, mid-body, while queued, mid-stream,
// after the end) and hostile bodies; afterwards no generation, queue slot or model turn is held, and
// every answer that completed is well-formed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import * as path from 'node:path';
import fc from 'fast-check';
import { writeSynth, PRESETS } from '../src/synth/synth.js';
import { loadModel, type Model } from '../src/api.js';
import { Phi3Server } from '../src/server/server.js';
import { tmpDir } from './helpers.js';

let server: Phi3Server;
let model: Model;
let port = 0;
beforeAll(async () => {
  const file = path.join(tmpDir(), 'fuzz.gguf');
  writeSynth(file, { shape: PRESETS.tiny!, type: 'Q4_0', seed: 8 });
  model = await loadModel(file, { ctx: 128, threads: 2 });
  server = new Phi3Server(model, { port: 0 });
  port = (await server.listen()).port;
});
afterAll(async () => {
  await server.close();
  await model.close();
});

const hung: unknown[] = [];
type Plan = { body: string; cut: 'none' | 'head' | 'body' | 'reply' | 'late'; afterBytes: number };

const bodies = fc.oneof(
  fc.record({ stream: fc.boolean(), max_tokens: fc.integer({ min: 1, max: 6 }), temperature: fc.constantFrom(0, 0.8), ignore_eos: fc.boolean() }).map((o) =>
    JSON.stringify({ ...o, messages: [{ role: 'user', content: 'hello there' }] }),
  ),
  fc.record({ stream: fc.boolean(), max_tokens: fc.integer({ min: 1, max: 6 }) }).map((o) => JSON.stringify({ ...o, prompt: 'once upon' })),
  fc.constantFrom('{', '[]', '{"messages": 5}', '{"messages":[{"role":"user","content":"x"}],"max_tokens":"many"}', '\u0000\u00ff', '{"tools":[]}', 'x'.repeat(3000)),
);
const plans = fc.record({
  body: bodies,
  cut: fc.constantFrom('none', 'none', 'head', 'body', 'reply', 'reply', 'late'),
  afterBytes: fc.integer({ min: 1, max: 400 }),
}) as fc.Arbitrary<Plan>;

/** an HTTP/1.1 body's text (chunk sizes count bytes, so this works on the bytes; latin1 keeps one char per byte) */
function dechunk(s: string, chunked: boolean): string {
  let out = s;
  if (chunked) {
    out = '';
    for (let at = 0; at < s.length; ) {
      const eol = s.indexOf('\r\n', at);
      const n = parseInt(s.slice(at, eol), 16);
      if (!n) break;
      out += s.slice(eol + 2, eol + 2 + n);
      at = eol + 2 + n + 2;
    }
  }
  return Buffer.from(out, 'latin1').toString('utf8');
}

/** one request over a raw socket, cut as the plan says; resolves with what came back */
function request(p: Plan, route: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      hung.push({ plan: p, route, got: got.slice(0, 200) });
      s.destroy();
    }, 15_000);
    const t0 = performance.now();
    const done = () => {
      clearTimeout(timer);
      if (process.env.FUZZ_N && performance.now() - t0 > 1000) console.log('slow', (performance.now() - t0).toFixed(0), JSON.stringify(p).slice(0, 150), JSON.stringify(got.slice(0, 80)));
      resolve(got);
    };
    s.on('error', done);
    s.on('close', done);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (p.cut === 'reply' && got.length >= p.afterBytes) s.resetAndDestroy();
    });
    s.on('connect', () => {
      const body = Buffer.from(p.body);
      const head = `POST ${route} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
      if (p.cut === 'head') {
        s.write(head.slice(0, 20));
        return void s.resetAndDestroy();
      }
      s.write(head);
      if (p.cut === 'body') {
        s.write(body.subarray(0, Math.floor(body.length / 2)));
        return void setImmediate(() => s.resetAndDestroy());
      }
      s.write(body);
      if (p.cut === 'late') setTimeout(() => s.destroy(), p.afterBytes % 7);
    });
  });
}

describe('server fuzz: random hang-ups and hostile bodies', () => {
  it('10,000 requests in random interleavings leave nothing held; completed answers are well-formed', async () => {
    const all = fc.sample(fc.tuple(plans, fc.constantFrom('/v1/chat/completions', '/v1/completions')), { numRuns: Number(process.env.FUZZ_N ?? 10_000), seed: 20261201 });
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < all.length && hung.length === 0; i += 25) {
      const batch = all.slice(i, i + 25);
      const tb = performance.now();
      const replies = await Promise.all(batch.map(([p, r]) => request(p, r)));
      if (process.env.FUZZ_N) console.log(`batch ${i}: ${(performance.now() - tb).toFixed(0)} ms`);
      replies.forEach((raw, k) => {
        const [p] = batch[k]!;
        const status = /^HTTP\/1\.1 (\d+)/.exec(raw)?.[1] ?? 'none';
        outcomes[`${p.cut}:${status}`] = (outcomes[`${p.cut}:${status}`] ?? 0) + 1;
        if (p.cut === 'none' && status === '200') {
          const body = dechunk(raw.slice(raw.indexOf('\r\n\r\n') + 4), /transfer-encoding: chunked/i.test(raw));
          if (raw.includes('text/event-stream')) expect(body.trimEnd().endsWith('data: [DONE]'), body).toBe(true);
          else expect(() => JSON.parse(body), body).not.toThrow();
        }
        if (p.cut === 'none') expect(['200', '400', '413'], raw.slice(0, 300)).toContain(status);
      });
    }
    console.log('outcomes (cut:status):', JSON.stringify(outcomes));
    expect(hung, 'requests that got no answer in 15 s').toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(m).toMatch(/phi3_active_generations 0/);
    expect(m).toMatch(/phi3_queue_depth 0/);
    const ok = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'hi', max_tokens: 3 }) });
    expect(ok.status).toBe(200);
  }, 300_000);
});
