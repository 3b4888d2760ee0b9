// Regenerates golden/data/quant.json: inputs from fixed recipes, outputs from ggml (never from phi3-ts).
import * as fs from 'node:fs';
import { ggml, ggmlTypeTable } from './lib/ggml.mjs';
import { Rng } from '../dist/src/util/rng.js';
import { QUANT_RECIPES, makeInput } from './lib/recipes.mjs';

const { quantize, dequantize } = ggml();
const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const SIZE = { F16: [1, 2], BF16: [1, 2], Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24], Q8_0: [32, 34],
  Q2_K: [256, 84], Q3_K: [256, 110], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210], Q8_K: [256, 292] };

const cases = [];
for (const type of Object.keys(SIZE)) {
  const [bs, ts] = SIZE[type];
  for (const r of QUANT_RECIPES) {
    const x = makeInput(new Rng(r.seed), r, 512);
    const q = new Uint8Array((512 / bs) * ts);
    quantize[type](x, q, 512);
    const y = new Float32Array(512);
    dequantize[type](q, y, 512);
    cases.push({ type, recipe: r.name, x: b64(x), q: b64(q), y: b64(y) });
  }
}
const out = { generator: 'golden/quant.mjs via libggml-base.so (node-llama-cpp 3.22.1)', types: ggmlTypeTable(), cases };
fs.writeFileSync(new URL('./data/quant.json', import.meta.url), JSON.stringify(out));
console.log(`quant.json: ${cases.length} cases`);
