// Regenerates golden/data/tokenizer-*.json: llama.cpp's token ids (via node-llama-cpp) for fixed and
// seeded random strings, with and without special-token parsing, and its detokenization.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, tokenize } from './lib/llama.mjs';
import { TOKENIZER_CASES, randomText } from './lib/recipes.mjs';
import { Rng } from '../dist/src/util/rng.js';
import { writeSynth, PRESETS } from '../dist/src/synth/synth.js';

const SHARED = path.resolve(import.meta.dirname, '..', '..', 'shared', 'models');
const here = import.meta.dirname;
fs.mkdirSync(path.join(here, '.cache'), { recursive: true });
const synthPath = path.join(here, '.cache', 'tiny-synth-vocab.gguf');
// the synthetic vocab lives in every synth model without --vocab: recipe = tiny F32 seed 1
writeSynth(synthPath, { shape: PRESETS.tiny, type: 'F32', seed: 1 });

const vocabs = [
  { name: 'phi-3', file: path.join(SHARED, 'ggml-vocab-phi-3.gguf'), vocabOnly: true },
  { name: 'llama-spm', file: path.join(SHARED, 'ggml-vocab-llama-spm.gguf'), vocabOnly: true },
  { name: 'synthetic', recipe: { preset: 'tiny', type: 'F32', seed: 1 }, file: synthPath, vocabOnly: true },
];

const rng = new Rng(20261124);
const random = Array.from({ length: 1500 }, () => randomText(rng));
for (const v of vocabs) {
  const model = await loadModel(v.file, { vocabOnly: v.vocabOnly });
  const cases = [];
  for (const text of [...TOKENIZER_CASES, ...(v.name === 'phi-3' ? random : random.slice(0, 300))]) {
    const ids = tokenize(model, text, false);
    const idsSpecial = tokenize(model, text, true);
    cases.push({ text, ids, idsSpecial, detok: model.detokenize(ids, false), detokSpecial: model.detokenize(idsSpecial, true) });
  }
  const out = { generator: 'golden/tokenizer.mjs via node-llama-cpp 3.22.1', vocab: v.recipe ?? `../shared/models/${path.basename(v.file)}`, cases };
  fs.writeFileSync(path.join(here, 'data', `tokenizer-${v.name}.json`), JSON.stringify(out));
  console.log(`tokenizer-${v.name}.json: ${cases.length} cases`);
  await model.dispose();
}
