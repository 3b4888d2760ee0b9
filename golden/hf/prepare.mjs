// Writes each HF recipe's model as a GGUF (our synth) and as an HF folder (our export-hf) under
// golden/.cache/hf/<id>/, with tokens.json, for make_goldens.py to run in transformers.
//   node golden/hf/prepare.mjs [outDir]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSynth } from '../../dist/src/synth/synth.js';
import { exportHf } from '../../dist/src/convert/export-hf.js';
import { HF_RECIPES, HF_SHAPES, recipeTokens } from './recipes.mjs';

const out = process.argv[2] ?? path.join(import.meta.dirname, '..', '.cache', 'hf');
for (const r of HF_RECIPES) {
  const dir = path.join(out, r.id);
  fs.mkdirSync(dir, { recursive: true });
  const gguf = path.join(dir, 'model.gguf');
  writeSynth(gguf, { shape: HF_SHAPES[r.shape], type: 'F32', seed: r.seed });
  exportHf(gguf, dir);
  fs.rmSync(gguf);
  fs.writeFileSync(path.join(dir, 'recipe.json'), JSON.stringify({ ...r, synth: HF_SHAPES[r.shape], tokens: recipeTokens(r) }));
  console.log(dir);
}
