// Regenerates golden/data/tokenizer-*.json: llama.cpp's token ids (via node-llama-cpp) for fixed and
// seeded random strings, with and without special-token parsing, and its detokenization.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, tokenize } from './lib/llama.mjs';
import { TOKENIZER_CASES, randomText } from './lib/recipes.mjs';
import { Rng } from '../dist/src/util/rng.js';
import { writeSynth, PRESETS } from '../dist/src/synth/synth.js';
import { bpeVocabMetadata } from '../dist/src/synth/bpe-vocab.js';
import { writeGguf, kv } from '../dist/src/gguf/writer.js';

const SHARED = path.resolve(import.meta.dirname, '..', '..', 'shared', 'models');
const here = import.meta.dirname;
fs.mkdirSync(path.join(here, '.cache'), { recursive: true });
const synthPath = path.join(here, '.cache', 'tiny-synth-vocab.gguf');
// the synthetic vocab lives in every synth model without --vocab: recipe = tiny F32 seed 1
writeSynth(synthPath, { shape: PRESETS.tiny, type: 'F32', seed: 1 });

// gpt2 (BPE) vocabularies: the shared GPT-2 one, and its tokens and merges with the pre-tokenizers of
// Phi-4 (dbrx) and Phi-4-mini (gpt-4o) plus Phi-4's special tokens (recipe: src/synth/bpe-vocab.ts)
const GPT2 = path.join(SHARED, 'ggml-vocab-gpt-2.gguf');
const bpeFile = (pre) => {
  const file = path.join(here, '.cache', `vocab-gpt2-${pre}.gguf`);
  writeGguf(file, { metadata: [['general.name', kv.str(`gpt-2 tokens, ${pre} pre-tokenizer`)], ...bpeVocabMetadata(GPT2, pre)], tensors: [] });
  return file;
};
const vocabs = [
  { name: 'gpt2', file: GPT2, vocabOnly: true },
  { name: 'gpt2-dbrx', recipe: { bpeFrom: 'ggml-vocab-gpt-2.gguf', pre: 'dbrx' }, file: bpeFile('dbrx'), vocabOnly: true },
  { name: 'gpt2-gpt-4o', recipe: { bpeFrom: 'ggml-vocab-gpt-2.gguf', pre: 'gpt-4o' }, file: bpeFile('gpt-4o'), vocabOnly: true },
  { name: 'phi-3', file: path.join(SHARED, 'ggml-vocab-phi-3.gguf'), vocabOnly: true },
  { name: 'llama-spm', file: path.join(SHARED, 'ggml-vocab-llama-spm.gguf'), vocabOnly: true },
  { name: 'synthetic', recipe: { preset: 'tiny', type: 'F32', seed: 1 }, file: synthPath, vocabOnly: true },
];

const rng = new Rng(20261124);
const random = Array.from({ length: 1500 }, () => randomText(rng));
const only = process.argv[2];
for (const v of vocabs) {
  if (only && !new RegExp(`^(${only})$`).test(v.name)) continue;
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
