// Decode speed with a competing busy process: does the default thread count survive a loaded machine?
// For each model: one busy-looping process runs beside `phi3 bench` at --threads 1 … N and at the
// default; reports decode tok/s (median of `--rounds`) and default ÷ best.
// usage: node busy.mjs [--rounds 3] [--busy 1] [--gen 2048] model.gguf…   (models default: synthetic tiny and small Q8_0)
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const args = process.argv.slice(2);
const opt = (name, d) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return d;
  const v = args[i + 1];
  args.splice(i, 2);
  return Number(v);
};
const rounds = opt('rounds', 3), nBusy = opt('busy', 1), gen = opt('gen', 2048);
const cache = path.join(import.meta.dirname, '.cache');
fs.mkdirSync(cache, { recursive: true });
let models = args;
if (!models.length) {
  models = ['tiny', 'small'].map((p) => {
    const f = path.join(cache, `${p}-q8_0-busy.gguf`);
    if (!fs.existsSync(f)) execFileSync(process.execPath, [CLI, 'synth', '--preset', p, '--type', 'Q8_0', '--out', f]);
    return f;
  });
}
const cores = os.availableParallelism();
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const bench = (threads) => {
  const a = ['bench', '--json', '--prompt-tokens', '16', '--gen-tokens', String(gen), ...(threads ? ['--threads', String(threads)] : [])];
  return JSON.parse(execFileSync(process.execPath, [CLI, ...a.slice(0, 1), current, ...a.slice(1)], { encoding: 'utf8' })).decode_tok_s;
};
let current;
const busy = Array.from({ length: nBusy }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`${cpu}, ${cores} cores, Node ${process.version}, ${nBusy} busy process(es), medians of ${rounds}, ${gen} decode tokens`);
try {
  for (const m of models) {
    current = m;
    const res = {};
    for (let r = 0; r < rounds; r++)
      for (const t of [...Array.from({ length: cores }, (_, i) => i + 1), 0]) (res[t] ??= []).push(bench(t));
    const best = Math.max(...Array.from({ length: cores }, (_, i) => median(res[i + 1])));
    const line = Object.entries(res).map(([t, v]) => `${t === '0' ? 'default' : `${t} thr`} ${median(v).toFixed(1)}`).join(' | ');
    console.log(`${path.basename(m)}: decode tok/s ${line} | default / best = ${(median(res[0]) / best).toFixed(2)}`);
  }
} finally {
  for (const b of busy) b.kill();
}
