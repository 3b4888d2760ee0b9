// `npm run bench [-- --types Q4_0,Q4_K_M --threads 1,2,4 --rounds 3 --weights trained|blocks]`: write the
// synthetic mini model as Q4_0, Q4_K_M and Q8_0 (and a tiny one) — by default with weights drawn like a
// trained model's and quantized by the ggml-exact quantizers, so that block scales (and their share of
// subnormal f16 values, printed) fall as in real files; `--weights blocks` for the fast random-block files — then run phi3-ts and llama.cpp alternately on the same file
// with the same threads, several rounds, and print medians, ours/llama.cpp ratios and each decode's
// share of the bandwidth ceiling (bench/bandwidth.mjs, measured in the same run). Results also go to
// bench/results.json.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const here = import.meta.dirname;
const root = path.resolve(here, '..');
const cli = path.join(root, 'dist', 'src', 'cli', 'main.js');
const vocab = path.resolve(root, '..', 'shared', 'models', 'ggml-vocab-phi-3.gguf');
const cache = path.join(here, '.cache');
fs.mkdirSync(cache, { recursive: true });
const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};
// --threads 1,2,4,8,16: a sweep, every model at each count (default: min(2, cores))
const threadList = arg('threads', String(Math.min(2, os.availableParallelism()))).split(',').map(Number);
const rounds = Number(arg('rounds', '3'));
const types = arg('types', 'Q4_0,Q4_K_M,Q8_0').split(',');
const nPrompt = Number(arg('prompt-tokens', '128')), nGen = Number(arg('gen-tokens', '64'));
// the Node that runs phi3-ts (default: this one). e.g. `--node "$(npx -y -p node@24 which node)"`:
// V8 ≥ 13 turns relaxed SIMD's i32 dot-add into one instruction where the CPU has AVX-VNNI
const oursNode = arg('node', process.execPath);
const oursVersion = execFileSync(oursNode, ['--version'], { encoding: 'utf8' }).trim();
const weights = arg('weights', 'trained');
if (!['trained', 'blocks'].includes(weights)) throw new Error(`--weights ${weights}: trained or blocks`);

function model(preset, type) {
  const file = path.join(cache, `${preset}-${type}${weights === 'trained' ? '-trained' : ''}.gguf`);
  if (!fs.existsSync(file)) {
    const v = fs.existsSync(vocab) && preset === 'mini' ? ['--vocab', vocab] : [];
    // written beside, then renamed: an interrupted write leaves no half file in the cache
    execFileSync(process.execPath, [cli, 'synth', '--preset', preset, '--type', type, '--seed', '1', '--weights', weights, ...v, '--out', file + '.part'], { stdio: 'inherit' });
    fs.renameSync(file + '.part', file);
  }
  return file;
}
const run = (cmd, args, node = process.execPath) => JSON.parse(execFileSync(node, [cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n').at(-1));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const results = [];
/** read the whole file once, so that it is in the page cache */
function warm(file) {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(64 << 20);
  try {
    for (let pos = 0; ; pos += buf.length) if (fs.readSync(fd, buf, 0, buf.length, pos) < buf.length) break;
  } finally {
    fs.closeSync(fd);
  }
}

// the ceiling: weight bytes read per decoded token (every tensor but token_embd, of which a token reads
// one row; a tied output reads it whole) over the stream bandwidth measured now at the same threads
const { openGguf } = await import('../dist/src/gguf/file-source.js');
function bytesPerToken(file) {
  const f = openGguf(file);
  try {
    const tied = !f.tensor('output.weight');
    return f.tensors.reduce((a, t) => a + (t.name === 'token_embd.weight' && !tied ? 0 : t.byteSize), 0);
  } finally {
    f.close();
  }
}
const bandwidth = Object.fromEntries(threadList.map((t) => [t, run(path.join(here, 'bandwidth.mjs'), [String(t)]).gb_s]));
console.log(`stream read bandwidth (bench/bandwidth.mjs), GB/s by threads: ${JSON.stringify(bandwidth)}`);

// each file's f16 block scales: how many are subnormal (real files have some, in small Q6_K and Q8_0 blocks)
const { GGMLType } = await import('../dist/src/quant/ggml-type.js');
const { scaleStats } = await import('../dist/src/quant/check.js');
const scales = {};
function scaleReport(file) {
  const f = openGguf(file), byType = {};
  try {
    for (const t of f.tensors) {
      const st = scaleStats(t.type, f.readTensor(t));
      if (!st.scales) continue;
      const a = (byType[GGMLType[t.type]] ??= { scales: 0, subnormal: 0, zero: 0 });
      for (const k of ['scales', 'subnormal', 'zero']) a[k] += st[k];
    }
  } finally {
    f.close();
  }
  return byType;
}
for (const t of types) {
  scales[t] = scaleReport(model('mini', t));
  console.log(`mini ${t} (${weights} weights): f16 scales subnormal ${Object.entries(scales[t]).map(([k, v]) => `${k} ${((100 * v.subnormal) / v.scales).toFixed(2)} %`).join(', ') || '(none: a float type)'}`);
}

const cases = [...types.map((t) => ['mini', t]), ['tiny', 'Q4_0']].flatMap((c) => threadList.map((t) => [...c, t]));
for (const [preset, type, threads] of cases) {
  const file = model(preset, type);
  const ours = [], theirs = [];
  const runOurs = () => ours.push(run(cli, ['bench', file, '--threads', String(threads), '--prompt-tokens', String(nPrompt), '--gen-tokens', String(nGen), '--json'], oursNode));
  const runTheirs = () => theirs.push(run(path.join(here, 'llama-bench.mjs'), [file, String(threads), String(nPrompt), String(nGen)]));
  for (let r = 0; r < rounds; r++) {
    // each run starts with the file in the page cache (this VM evicts it between runs), and the
    // two take turns going first
    for (const go of r % 2 ? [runTheirs, runOurs] : [runOurs, runTheirs]) {
      warm(file);
      go();
    }
  }
  const m = (xs, k) => median(xs.map((x) => x[k]));
  const row = { model: `${preset} ${type}`, bytes: fs.statSync(file).size, threads, rounds };
  for (const k of ['prefill_tok_s', 'decode_tok_s', 'load_s', 'peak_rss_mb']) row[k] = { phi3: m(ours, k), llama: m(theirs, k), ratio: m(ours, k) / m(theirs, k) };
  row.ceiling_tok_s = (bandwidth[threads] * 1e9) / bytesPerToken(file);
  row.of_ceiling = { phi3: row.decode_tok_s.phi3 / row.ceiling_tok_s, llama: row.decode_tok_s.llama / row.ceiling_tok_s };
  results.push(row);
  console.log(JSON.stringify(row));
}
const f = (x, d = 2) => x.toFixed(d);
console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0].model}, threads ${threadList.join(', ')}, phi3-ts on Node ${oursVersion}, llama.cpp (node-llama-cpp) on Node ${process.version}, medians of ${rounds} alternating runs, ${weights} weights`);
console.log('| model | threads | prefill tok/s (ours / llama.cpp = ratio) | decode tok/s | decode ceiling tok/s (ours, llama.cpp % of it) | load s | peak RSS MB |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results)
  console.log(`| ${r.model} | ${r.threads} | ${f(r.prefill_tok_s.phi3)} / ${f(r.prefill_tok_s.llama)} = **${f(r.prefill_tok_s.ratio)}×** | ${f(r.decode_tok_s.phi3)} / ${f(r.decode_tok_s.llama)} = **${f(r.decode_tok_s.ratio)}×** | ${f(r.ceiling_tok_s)} (${f(100 * r.of_ceiling.phi3, 0)} %, ${f(100 * r.of_ceiling.llama, 0)} %) | ${f(r.load_s.phi3)} / ${f(r.load_s.llama)} | ${f(r.peak_rss_mb.phi3, 0)} / ${f(r.peak_rss_mb.llama, 0)} |`);
fs.writeFileSync(path.join(here, 'results.json'), JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0].model, node: process.version, oursNode: oursVersion, weights, scales, bandwidth, results }, null, 2));
