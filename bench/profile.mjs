// `npm run profile -- <model.gguf> [threads]`: per-token time by op (matmul by tensor, attention,
// dispatch share, sampling) for decode on the WASM backend. Instrumentation lives here, not in src/.
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
// the prompt: `promptArg` tokens (default 3), so attention runs at the positions a benchmark reaches
let logits = m.phi3.forward(Array.from({ length: Number(promptArg ?? 3) }, (_, i) => 1 + (i % 1000))).at(-1);
for (const k in times) delete times[k];
const N = 16;
let sampling = 0;
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  const ts = performance.now();
  const id = argmax(logits);
  sampling += performance.now() - ts;
  logits = m.phi3.forward([id])[0];
}
const total = (performance.now() - t0) / N;
times.sampling = sampling;
const accounted = Object.values(times).reduce((a, b) => a + b, 0) / N;
console.log(`${file}: ${total.toFixed(1)} ms/token (${(1000 / total).toFixed(2)} tok/s), ${m.phi3.ops.threads ?? 1} threads`);
for (const [k, v] of Object.entries(times).sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(24)} ${(v / N).toFixed(2).padStart(8)} ms  ${((100 * v) / N / total).toFixed(1).padStart(5)} %`);
console.log(`  ${'other (JS, dispatch)'.padEnd(24)} ${(total - accounted).toFixed(2).padStart(8)} ms`);
await m.close();
