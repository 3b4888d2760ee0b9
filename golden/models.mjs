// Regenerates golden/data/logits.json: for each recipe (a synthetic model from our writer + a prompt),
// llama.cpp's tokens, raw logits at every position, and greedy continuations — via node-llama-cpp.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, evalLogits, tokenize, greedy, vocabSize } from './lib/llama.mjs';
import { MODEL_RECIPES } from './lib/recipes.mjs';
import { writeSynth, PRESETS } from '../dist/src/synth/synth.js';
import { Rng } from '../dist/src/util/rng.js';

const here = import.meta.dirname;
const SHARED = path.resolve(here, '..', '..', 'shared', 'models');
fs.mkdirSync(path.join(here, '.cache'), { recursive: true });
const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

const only = process.argv[2];
const outDir = path.join(here, 'data', 'logits');
fs.mkdirSync(outDir, { recursive: true });
for (const r of MODEL_RECIPES) {
  if (only && !new RegExp(`^(${only})$`).test(r.id)) continue; // an id, or a regular expression over ids
  const file = path.join(here, '.cache', `${r.id}.gguf`);
  writeSynth(file, { shape: { ...PRESETS[r.preset], tiedEmbeddings: r.tied ?? PRESETS[r.preset].tiedEmbeddings }, type: r.type, seed: r.seed, vocabFile: r.vocab ? path.join(SHARED, r.vocab) : undefined });
  const model = await loadModel(file);
  // BOS as the vocabulary asks (llama.cpp's defaults: on for SPM, off for gpt2 BPE)
  const tk = model.fileInfo.metadata.tokenizer.ggml;
  const addBos = tk.add_bos_token ?? tk.model === 'llama';
  const tokens = [...(addBos ? [tk.bos_token_id ?? 1] : []), ...tokenize(model, r.prompt, true)];
  const rows = await evalLogits(model, tokens, { all: true, contextSize: r.ctx });
  const nVocab = vocabSize(model);
  // large vocabularies: keep llama.cpp's top 64 ids and 448 seeded random ids per position
  const ids = nVocab <= 4096 ? null : (() => {
    const rng = new Rng(r.seed);
    const s = new Set();
    while (s.size < 448) s.add(rng.int(nVocab));
    return [...s];
  })();
  const positions = rows.map(({ logits }) => {
    let argmax = 0;
    for (let i = 0; i < logits.length; i++) if (logits[i] > logits[argmax]) argmax = i;
    if (!ids) return { argmax, logits: b64(logits) };
    const top = [...logits.keys()].sort((a, b) => logits[b] - logits[a]).slice(0, 64);
    const pick = [...new Set([...top, ...ids])].sort((a, b) => a - b);
    return { argmax, ids: pick, logits: b64(Float32Array.from(pick, (i) => logits[i])) };
  });
  const continuation = r.greedy ? await greedy(model, tokens, r.greedy, { contextSize: r.ctx }) : undefined;
  fs.writeFileSync(path.join(outDir, `${r.id}.json`), JSON.stringify({
    generator: 'golden/models.mjs via node-llama-cpp 3.22.1 (llama.cpp CPU, 2 threads, f16 KV cache' + (r.ctx ? `, context ${r.ctx}` : '') + ')',
    recipe: r, nVocab, tokens, positions, greedy: continuation,
  }));
  console.log(`${r.id}: ${tokens.length} tokens, vocab ${nVocab}${continuation ? `, greedy ${continuation.length}` : ''}`);
  await model.dispose();
}
