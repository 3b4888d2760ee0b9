// `npm run profile -- <model.gguf> [threads] [prompt tokens]`: time by op (matmul by tensor, attention,
// dispatch share, sampling) for the prompt's prefill and then per token for decode on the WASM backend. Instrumentation lives here, not in src/.
import { loadModel } from '../dist/src/index.js';
import { argmax } from '../dist/src/generate/sampler.js';

const [file, threadsArg, promptArg] = process.argv.slice(2);
const m = await loadModel(file, { ctx: 256, threads: Number(threadsArg ?? 2) });
const ops = m.phi3.ops;
const times = {};
for (const name of ['embed', 'rmsnorm', 'matmul', 'rope', 'attention', 'swiglu', 'add', 'copy', 'read']) {
  const f = ops[name].bind(ops);
  ops[name] = (...a) => {
    const t = performance.now();
    const r = f(...a);
    const k = name === 'matmul' ? 'matmul ' + a[1].name.replace(/blk\.\d+\./, '').replace('.weight', '') : name;
    times[k] = (times[k] ?? 0) + performance.now() - t;
    return r;
  };
}
// the prompt: `promptArg` tokens (default 3), so attention runs at the positions a benchmark reaches;
// its own profile (prefill) is printed too
const nPrompt = Number(promptArg ?? 3);
const tp = performance.now();
let logits = m.phi3.forward(Array.from({ length: nPrompt }, (_, i) => 1 + (i % 1000))).at(-1);
report(`prefill of ${nPrompt} tokens`, performance.now() - tp, 1);
for (const k in times) delete times[k];

function report(what, ms, n) {
  const accounted = Object.values(times).reduce((a, b) => a + b, 0) / n;
  console.log(`${file}, ${what}: ${(ms / n).toFixed(1)} ms${n > 1 ? '/token' : ''}, ${m.phi3.ops.threads ?? 1} threads`);
  for (const [k, v] of Object.entries(times).sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(24)} ${(v / n).toFixed(2).padStart(8)} ms  ${((100 * v) / ms).toFixed(1).padStart(5)} %`);
  console.log(`  ${'other (JS, dispatch)'.padEnd(24)} ${(ms / n - accounted).toFixed(2).padStart(8)} ms`);
}
const N = 16;
let sampling = 0;
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  const ts = performance.now();
  const id = argmax(logits);
  sampling += performance.now() - ts;
  logits = m.phi3.forward([id])[0];
}
const total = performance.now() - t0;
times.sampling = sampling;
report(`decode (${(1000 / (total / N)).toFixed(2)} tok/s)`, total, N);
await m.close();
