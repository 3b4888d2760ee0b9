// llama.cpp through node-llama-cpp, measured like `phi3 bench --json`: load, prefill of N tokens,
// then M greedy decode steps. Prints one JSON object.
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const [file, threadsArg, promptArg, genArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2), nPrompt = Number(promptArg ?? 128), nGen = Number(genArg ?? 64);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
const t0 = performance.now();
const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: true });
const ctx = await model.createContext({ contextSize: nPrompt + nGen + 8, threads, batchSize: nPrompt, sequences: 1, flashAttention: false });
const load_s = (performance.now() - t0) / 1000;
const v = model.tokens.bos ?? 1;
const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const prompt = [v, ...Array.from({ length: nPrompt - 1 }, (_, i) => 300 + ((i * 7919) % Math.max(1, nVocab - 400)))];
const seq = ctx.getSequence();
const t1 = performance.now();
await seq.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t)));
const prefill_s = (performance.now() - t1) / 1000;
const t2 = performance.now();
let n = 0;
// greedy decode; EOG does not stop it (we measure steps, not text)
let last = prompt.at(-1);
for (let i = 0; i < nGen; i++) {
  const r = await seq.controlledEvaluate([[last, { generateNext: { token: true, options: { temperature: 0 } } }]]);
  last = r[0]?.next?.token ?? 300;
  n++;
}
const decode_s = (performance.now() - t2) / 1000;
console.log(JSON.stringify({ load_s, prefill_tok_s: nPrompt / prefill_s, decode_tok_s: n / decode_s, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
await ctx.dispose();
await model.dispose();
