// Turns demo/train.py's Hugging Face folder into phi3-ts's embedded model:
//   node demo/build.mjs [hfDir] [vocab.gguf]
// 1. writes Phi-3's tokenizer into the folder (tokenizer.model + tokenizer_config.json, from the
//    Phi-3 vocabulary GGUF, through phi3-ts's export-hf tokenizer writer);
// 2. converts the folder with `phi3 convert --type Q8_0` into demo/phi3-demo-brown-Q8_0.gguf;
// 3. copies the training record (train.json) and the held-out text beside this script.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../dist/src/gguf/file-source.js';
import { exportTokenizer } from '../dist/src/hf/export-tokenizer.js';
import { convertHf } from '../dist/src/convert/convert-hf.js';

const here = import.meta.dirname;
const hf = path.resolve(process.argv[2] ?? path.join(here, '.cache', 'hf'));
const vocabPath = process.argv[3] ?? path.join(here, '..', '..', 'shared', 'models', 'ggml-vocab-phi-3.gguf');
const vocab = openGguf(vocabPath);
exportTokenizer(vocab, hf);
vocab.close();
const out = path.join(here, 'phi3-demo-brown-Q8_0.gguf');
const r = convertHf(hf, out, { type: 'Q8_0', name: 'phi3-demo-brown' });
fs.copyFileSync(path.join(hf, 'train.json'), path.join(here, 'train.json'));
fs.copyFileSync(path.join(hf, '..', 'val.txt'), path.join(here, 'heldout.txt'));
console.log(`wrote ${out}: ${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(2)} MiB`);
