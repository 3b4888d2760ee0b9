// `node bench/browser.mjs [--threads 2] [--rounds 3] [--gen-tokens 32] [--prompt-tokens 128] [--preset mini --type Q4_0]`:
// phi3-ts and wllama (npm @wllama/wllama, llama.cpp compiled to WebAssembly with threads) in the same
// headless Chromium (Debian's), on the same synthetic GGUF, with the same threads, run alternately;
// then phi3-ts in Node on the same file. Prints medians of prefill and decode tok/s and the ratios,
// and writes bench/results-browser.json.
//
// wllama reads a model as ArrayBuffers of at most 2 GiB, so it gets the file as llama.cpp's gguf-split
// parts (written here with the project's reader and writer; the same tensors, bytes and metadata),
// given by the first part's URL (it finds the others by their names).
// phi3-ts gets the whole file by URL (copied once into the Origin Private File System).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const here = import.meta.dirname;
const root = path.resolve(here, '..');
const dist = (p) => path.join(root, 'dist', 'src', p);
const { startWebServer } = await import(dist('web/server.js'));
const { openGguf } = await import(dist('gguf/file-source.js'));
const { writeGguf } = await import(dist('gguf/writer.js'));
const { loadModel } = await import(dist('api.js'));
const { GGUFValueType } = await import(dist('gguf/types.js'));

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const threads = Number(arg('threads', '2'));
const rounds = Number(arg('rounds', '3'));
const nGen = Number(arg('gen-tokens', '32'));
const nPrompt = Number(arg('prompt-tokens', '128'));
const preset = arg('preset', 'mini'), type = arg('type', 'Q4_0');
const chromiumPath = arg('chromium', process.env.CHROMIUM ?? '/usr/bin/chromium');
const cache = path.join(here, '.cache');
fs.mkdirSync(cache, { recursive: true });

function model() {
  const file = path.join(cache, `${preset}-${type}.gguf`);
  const vocab = path.resolve(root, '..', 'shared', 'models', 'ggml-vocab-phi-3.gguf');
  if (!fs.existsSync(file)) {
    const v = preset === 'mini' && fs.existsSync(vocab) ? ['--vocab', vocab] : [];
    execFileSync(process.execPath, [path.join(root, 'dist', 'src', 'cli', 'main.js'), 'synth', '--preset', preset, '--type', type, '--seed', '1', ...v, '--out', file], { stdio: 'inherit' });
  }
  return file;
}

/**
 * llama.cpp's gguf-split layout: part 1 has every metadata key, parts 2… only the split keys; each
 * part has its own tensor infos (offsets from its own data section) and at most `maxBytes` of data.
 */
function splitGguf(file, maxBytes) {
  const dir = path.join(cache, path.basename(file, '.gguf') + '-split');
  const f = openGguf(file);
  try {
    const groups = [[]];
    let size = 0;
    for (const t of f.tensors) {
      if (size + t.byteSize > maxBytes && groups.at(-1).length) groups.push([]), (size = 0);
      groups.at(-1).push(t);
      size += t.byteSize;
    }
    const names = groups.map((_, i) => `${path.basename(file, '.gguf')}-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.gguf`);
    const stamp = path.join(dir, 'source.json');
    const src = JSON.stringify({ file, size: fs.statSync(file).size, mtime: fs.statSync(file).mtimeMs, maxBytes });
    if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === src) return names.map((n) => path.join(dir, n));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    groups.forEach((ts, i) => {
      const split = [
        ['split.no', { type: GGUFValueType.UINT16, value: i }],
        ['split.count', { type: GGUFValueType.UINT16, value: groups.length }],
        ['split.tensors.count', { type: GGUFValueType.INT32, value: f.tensors.length }],
      ];
      const metadata = i === 0 ? [...f.metadata.entries(), ...split] : split;
      writeGguf(path.join(dir, names[i]), { version: f.header.version, metadata, tensors: ts.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: () => f.readTensor(t) })) });
    });
    fs.writeFileSync(stamp, src);
    return names.map((n) => path.join(dir, n));
  } finally {
    f.close();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** the machine's busy share of the next `ms` (from /proc/stat) */
async function busyShare(ms = 500) {
  const read = () => fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read().map((x, i) => x - a[i]);
  const total = b.reduce((x, y) => x + y, 0);
  return total ? 1 - (b[3] + b[4]) / total : 0; // idle + iowait
}
/** before each run: until the machine is quiet (another engine's threads may spin for a while after its run), at most 30 s */
async function quiet() {
  const t0 = Date.now();
  while (Date.now() - t0 < 30_000 && (await busyShare()) > 0.1);
}
const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';

const file = model();
const parts = splitGguf(file, 512 * 2 ** 20);
const wl = path.join(here, 'node_modules', '@wllama', 'wllama', 'esm');
const files = { '/wllama/index.js': path.join(wl, 'index.js'), '/wllama/wllama.wasm': path.join(wl, 'wasm', 'wllama.wasm') };
parts.forEach((p) => (files[`/split/${path.basename(p)}`] = p));
const server = await startWebServer({ model: file, port: 0, files });

// a prompt of nPrompt tokens (the file's vocabulary), as text both engines tokenize the same way
const node = await loadModel(file, { threads, ctx: nPrompt + nGen + 64 });
const words = fs.readFileSync(path.join(root, 'demo', 'heldout.txt'), 'utf8').split(/\s+/);
let prompt = '';
for (let w = 0; node.tokenize(prompt).length < nPrompt; w++) prompt += (w ? ' ' : '') + words[w % words.length];
const promptTokens = node.tokenize(prompt).length;

// a profile on disk (a fresh one each run): a private context's storage quota is too small for the OPFS copy
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'phi3-bench-chromium-'));
const context = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args: ['--disable-dev-shm-usage'] });
const browser = context.browser() ?? { version: () => context.pages()[0]?.context().browser()?.version() ?? 'unknown' };
const page = context.pages()[0] ?? (await context.newPage());
const logs = [];
page.on('console', (m) => logs.push(m.text()));
await page.goto(server.url);
console.error(`loading ${path.basename(file)} in Chromium ${browser.version()}: phi3-ts (OPFS) and wllama (${parts.length} parts) …`);
await page.evaluate(`(async () => {
  const { loadModel } = await import('./dist/browser/phi3.js');
  const { Wllama } = await import('./wllama/index.js');
  const ours = await loadModel('./model.gguf', { threads: ${threads}, ctx: ${nPrompt + nGen + 64} });
  const wllama = new Wllama({ default: './wllama/wllama.wasm' }, { suppressNativeLog: true });
  await wllama.loadModelFromUrl(new URL(${JSON.stringify(`./split/${path.basename(parts[0])}`)}, location.href).href, { n_threads: ${threads}, n_ctx: ${nPrompt + nGen + 64}, n_batch: 512, n_gpu_layers: 0, useCache: false });
  window.bench = {
    info: { ours: ours.info, wllamaThreads: wllama.getLoadedContextInfo?.() },
    async ours(prompt, n) {
      const it = ours.stream(prompt, { maxTokens: n, temperature: 0, stopAtEog: false, reuseCache: false });
      for (;;) { const r = await it.next(); if (r.done) return { prefill: r.value.promptTokPerSec, decode: r.value.decodeTokPerSec, n: r.value.generatedTokens }; }
    },
    async wllama(prompt, n) {
      const r = await wllama.createCompletion({ prompt, max_tokens: n, temperature: 0, ignore_eos: true, cache_prompt: false });
      const t = r.timings;
      return { prefill: t.prompt_per_second, decode: t.predicted_per_second, n: t.predicted_n };
    },
  };
})()`);
const info = await page.evaluate('window.bench.info');
console.error(`phi3-ts in the browser: ${info.ours.threads} threads, ${info.ours.simd} kernels${info.ours.warnings.length ? ' (' + info.ours.warnings.join('; ') + ')' : ''}; wllama context: ${JSON.stringify(info.wllamaThreads ?? {}).slice(0, 200)}`);

const runs = { browser: [], wllama: [], node: [] };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? ['wllama', 'browser', 'node'] : ['browser', 'wllama', 'node'];
  for (const who of order) {
    await quiet();
    let res;
    if (who === 'node') {
      const it = node.stream(prompt, { maxTokens: nGen, temperature: 0, stopAtEog: false, reuseCache: false });
      for (;;) {
        const x = await it.next();
        if (x.done) (res = { prefill: x.value.promptTokPerSec, decode: x.value.decodeTokPerSec, n: x.value.generatedTokens });
        if (x.done) break;
      }
    } else res = await page.evaluate(`window.bench.${who === 'browser' ? 'ours' : 'wllama'}(${JSON.stringify(prompt)}, ${nGen})`);
    runs[who].push(res);
    console.error(`round ${r + 1} ${who.padEnd(7)} prefill ${res.prefill.toFixed(2)} tok/s, decode ${res.decode.toFixed(2)} tok/s (${res.n} tokens)`);
  }
}
const med = (who, k) => median(runs[who].map((x) => x[k]));
const result = {
  date: new Date().toISOString().slice(0, 10),
  cpu,
  cores: os.availableParallelism(),
  chromium: browser.version(),
  node: process.version,
  model: path.basename(file),
  threads,
  promptTokens,
  genTokens: nGen,
  rounds,
  prefill: { phi3ts_browser: med('browser', 'prefill'), wllama: med('wllama', 'prefill'), phi3ts_node: med('node', 'prefill') },
  decode: { phi3ts_browser: med('browser', 'decode'), wllama: med('wllama', 'decode'), phi3ts_node: med('node', 'decode') },
  runs,
};
result.ratios = {
  decode_vs_wllama: result.decode.phi3ts_browser / result.decode.wllama,
  decode_vs_node: result.decode.phi3ts_browser / result.decode.phi3ts_node,
  prefill_vs_wllama: result.prefill.phi3ts_browser / result.prefill.wllama,
  prefill_vs_node: result.prefill.phi3ts_browser / result.prefill.phi3ts_node,
};
fs.writeFileSync(path.join(here, 'results-browser.json'), JSON.stringify(result, null, 2) + '\n');
const f2 = (x) => x.toFixed(2);
console.log(`${result.date} · ${cpu} · ${threads} threads · Chromium ${result.chromium} · Node ${process.version} · ${result.model}, ${promptTokens}-token prompt, ${nGen} tokens, medians of ${rounds}`);
console.log('| | phi3-ts in Chromium | wllama in Chromium | phi3-ts in Node | vs wllama | vs Node |');
console.log('|---|---|---|---|---|---|');
for (const k of ['prefill', 'decode'])
  console.log(`| ${k} tok/s | ${f2(result[k].phi3ts_browser)} | ${f2(result[k].wllama)} | ${f2(result[k].phi3ts_node)} | ${f2(result.ratios[`${k}_vs_wllama`])}× | ${f2(result.ratios[`${k}_vs_node`])}× |`);
await context.close();
fs.rmSync(profile, { recursive: true, force: true });
await node.close();
await server.close();
