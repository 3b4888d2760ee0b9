// Constrained sampling's cost: decode tok/s with and without a JSON Schema grammar, same model, prompt,
// seed and sampling (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05 as `phi3 run`), alternating
// rounds, medians. The grammar's share = 1 − constrained ÷ free.
//   node bench/grammar.mjs [model.gguf] [--rounds 3] [--tokens 64] [--threads N]
import * as os from 'node:os';
import { loadModel, jsonSchemaGrammar, demoModelPath } from '../dist/src/index.js';

const args = process.argv.slice(2);
const flag = (n, d) => (args.includes(n) ? Number(args[args.indexOf(n) + 1]) : d);
const file = args[0] && !args[0].startsWith('--') ? args[0] : demoModelPath();
const rounds = flag('--rounds', 3), tokens = flag('--tokens', 64), threads = flag('--threads', os.availableParallelism());
const schema = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 60 }, age: { type: 'integer' }, city: { enum: ['Boston', 'Atlanta', 'Dallas'] }, tags: { type: 'array', items: { type: 'string', maxLength: 30 }, maxItems: 6 } },
  required: ['name', 'age', 'city', 'tags'],
  additionalProperties: false,
};
const grammar = jsonSchemaGrammar(schema);
const m = await loadModel(file, { threads });
const run = async (g, seed) => {
  const gen = m.generate('The jury said that', { grammar: g, maxTokens: tokens, temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed, stopAtEog: g !== undefined });
  for await (const _ of gen);
  const s = await gen.stats;
  return { tps: s.decodeTokPerSec, n: s.generatedTokens };
};
await run(undefined, 0); // warm-up
const free = [], constrained = [];
for (let r = 0; r < rounds; r++) {
  free.push((await run(undefined, r + 1)).tps);
  constrained.push((await run(grammar, r + 1)).tps);
}
await m.close();
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(JSON.stringify({ model: file, cpu, node: process.version, threads, rounds, tokens, free_tok_s: med(free), constrained_tok_s: med(constrained), grammar_share: 1 - med(constrained) / med(free) }));
