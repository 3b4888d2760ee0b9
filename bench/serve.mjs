// `node bench/serve.mjs [--clients 1,4,8,16] [--prompt-tokens 128] [--gen-tokens 64] [--threads 2] [--rounds 1] [--model file.gguf]`:
// many clients at once. For each client count N: `phi3 serve --parallel N` (continuous batching)
// with N concurrent streaming /v1/completions clients, and node-llama-cpp (llama.cpp) with a
// context of N sequences and N concurrent evaluations, alternately, on the same GGUF (default the
// synthetic mini Q4_0) with the same threads. Each client sends its own prompt of the same length
// (no shared prefix) and takes exactly --gen-tokens greedy tokens (EOS ignored).
// Reports aggregate generated tok/s (all tokens ÷ the wall time from the first request to the last
// token: prefill included), aggregate decode tok/s (tokens after each stream's first ÷ the time from
// the first first-token to the last token), p50/p99 time to first token and time between tokens;
// writes bench/results-serve.json.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const here = import.meta.dirname;
const root = path.resolve(here, '..');
const cli = path.join(root, 'dist', 'src', 'cli', 'main.js');
const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const clientCounts = arg('clients', '1,4,8,16').split(',').map(Number);
const nPrompt = Number(arg('prompt-tokens', '128')), nGen = Number(arg('gen-tokens', '64'));
const threads = Number(arg('threads', String(Math.min(2, os.availableParallelism()))));
const rounds = Number(arg('rounds', '1'));
const cache = path.join(here, '.cache');
fs.mkdirSync(cache, { recursive: true });
let file = arg('model');
if (!file) {
  file = path.join(cache, 'mini-Q4_0.gguf');
  const vocab = path.resolve(root, '..', 'shared', 'models', 'ggml-vocab-phi-3.gguf');
  if (!fs.existsSync(file)) execFileSync(process.execPath, [cli, 'synth', '--preset', 'mini', '--type', 'Q4_0', '--seed', '1', ...(fs.existsSync(vocab) ? ['--vocab', vocab] : []), '--out', file], { stdio: 'inherit' });
}
const perSlot = nPrompt + nGen + 16;

/** client i's prompt: nPrompt valid token ids, BOS first, none shared with another client's after it */
function promptOf(i, nVocab) {
  return [1, ...Array.from({ length: nPrompt - 1 }, (_, k) => 300 + ((i * 104729 + k * 7919) % Math.max(1, nVocab - 400)))];
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
/** per-client token times (ms from the common start) → the report's numbers */
function summarize(times) {
  const all = times.flat();
  const ttft = times.map((t) => t[0]);
  const itl = times.flatMap((t) => t.slice(1).map((x, k) => x - t[k]));
  // decode alone: the tokens after each stream's first, over the span from the first stream's first token to the last token
  const decodeSpan = (Math.max(...all) - Math.min(...ttft)) / 1000;
  return { tokens: all.length, tok_s: all.length / (Math.max(...all) / 1000), decode_tok_s: itl.length / decodeSpan, ttft_p50_ms: pct(ttft, 50), ttft_p99_ms: pct(ttft, 99), itl_p50_ms: pct(itl, 50), itl_p99_ms: pct(itl, 99) };
}

// ── phi3-ts: phi3 serve --parallel N, N streaming HTTP clients ─────────────────────────────────
async function startServer(n) {
  const p = spawn(process.execPath, [cli, 'serve', file, '--parallel', String(n), '--ctx-per-slot', String(perSlot), '--threads', String(threads), '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise((resolve, reject) => {
    p.stderr.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m && /model loaded/.test(err)) resolve(m[1]);
    });
    p.once('exit', (code) => reject(new Error(`phi3 serve exited (${code}): ${err}`)));
  });
  return { url, stop: () => new Promise((r) => (p.once('exit', r), p.kill('SIGTERM'))) };
}

async function oursClient(url, prompt, t0) {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: nGen, temperature: 0, ignore_eos: true, stream: true }),
  });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  const times = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.choices?.[0]?.finish_reason == null || j.choices?.[0]?.text) times.push(performance.now() - t0);
    }
  }
  return times.slice(0, nGen);
}

async function runOurs(n, nVocab) {
  const srv = await startServer(n);
  try {
    // one warm-up request (first-call compilation), then the measured burst
    await oursClient(srv.url, promptOf(999, nVocab), performance.now());
    const t0 = performance.now();
    return summarize(await Promise.all(Array.from({ length: n }, (_, i) => oursClient(srv.url, promptOf(i, nVocab), t0))));
  } finally {
    await srv.stop();
  }
}

// ── llama.cpp: one context of N sequences, N concurrent evaluations ─────────────────────────────
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
const lmodel = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: true });
const nVocab = lmodel.fileInfo.metadata.tokenizer.ggml.tokens.length;

async function runLlama(n) {
  const ctx = await lmodel.createContext({ contextSize: n * perSlot, sequences: n, threads, batchSize: 512, flashAttention: false });
  try {
    const one = async (seq, prompt, t0) => {
      const times = [];
      for await (const _tok of seq.evaluate(prompt, { temperature: 0 })) {
        times.push(performance.now() - t0);
        if (times.length >= nGen) break;
      }
      return times;
    };
    const warm = ctx.getSequence();
    await one(warm, promptOf(999, nVocab), performance.now());
    warm.dispose();
    const seqs = Array.from({ length: n }, () => ctx.getSequence());
    const t0 = performance.now();
    const times = await Promise.all(seqs.map((s, i) => one(s, promptOf(i, nVocab), t0)));
    return summarize(times);
  } finally {
    await ctx.dispose();
  }
}

const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model;
const flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/flags\s*:\s*(.*)/) ?? [])[1] ?? '';
const isa = flags.includes('avx512f') ? 'AVX-512' : flags.includes('avx2') ? 'AVX2' : 'no AVX2';
const results = [];
for (const n of clientCounts) {
  const runs = { phi3ts: [], llamacpp: [] };
  for (let r = 0; r < rounds; r++)
    for (const who of r % 2 ? ['llamacpp', 'phi3ts'] : ['phi3ts', 'llamacpp']) {
      const s = who === 'phi3ts' ? await runOurs(n, nVocab) : await runLlama(n);
      runs[who].push(s);
      console.error(`${n} clients, ${who.padEnd(8)} ${s.tok_s.toFixed(2)} tok/s (decode ${s.decode_tok_s.toFixed(2)}), TTFT p50 ${s.ttft_p50_ms.toFixed(0)} ms p99 ${s.ttft_p99_ms.toFixed(0)} ms, ITL p50 ${s.itl_p50_ms.toFixed(0)} ms p99 ${s.itl_p99_ms.toFixed(0)} ms (${s.tokens} tokens)`);
    }
  const med = (who) => Object.fromEntries(Object.keys(runs[who][0]).map((k) => [k, pct(runs[who].map((x) => x[k]), 50)]));
  results.push({ clients: n, phi3ts: med('phi3ts'), llamacpp: med('llamacpp') });
}
const one = results.find((r) => r.clients === 1);
const out = { date: new Date().toISOString().slice(0, 10), cpu: `${cpu} (${isa})`, threads, node: process.version, model: path.basename(file), promptTokens: nPrompt, genTokens: nGen, rounds, results };
fs.writeFileSync(path.join(here, 'results-serve.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`${out.date} · ${out.cpu} · ${threads} threads · Node ${process.version} · ${out.model}, ${nPrompt}-token prompts, ${nGen} tokens each`);
console.log('| clients | tok/s ours · llama.cpp | decode tok/s ours · llama.cpp | decode ratio | decode ×1 client (ours · llama.cpp) | TTFT p50 / p99 s (ours · llama.cpp) | ITL p50 / p99 ms (ours · llama.cpp) |');
console.log('|---|---|---|---|---|---|---|');
const f = (x, d = 0) => x.toFixed(d);
for (const r of results)
  console.log(
    `| ${r.clients} | ${f(r.phi3ts.tok_s, 2)} · ${f(r.llamacpp.tok_s, 2)} | ${f(r.phi3ts.decode_tok_s, 2)} · ${f(r.llamacpp.decode_tok_s, 2)} | ${f(r.phi3ts.decode_tok_s / r.llamacpp.decode_tok_s, 2)}× | ${one ? `${f(r.phi3ts.decode_tok_s / one.phi3ts.decode_tok_s, 2)}× · ${f(r.llamacpp.decode_tok_s / one.llamacpp.decode_tok_s, 2)}×` : '—'} | ${f(r.phi3ts.ttft_p50_ms / 1000, 1)} / ${f(r.phi3ts.ttft_p99_ms / 1000, 1)} · ${f(r.llamacpp.ttft_p50_ms / 1000, 1)} / ${f(r.llamacpp.ttft_p99_ms / 1000, 1)} | ${f(r.phi3ts.itl_p50_ms)} / ${f(r.phi3ts.itl_p99_ms)} · ${f(r.llamacpp.itl_p50_ms)} / ${f(r.llamacpp.itl_p99_ms)} |`,
  );
await lmodel.dispose();
