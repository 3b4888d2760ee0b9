// Writes each HF recipe's model as a GGUF (our synth) and as an HF folder (our export-hf) under
// golden/.cache/hf/<id>/, with tokens.json, for make_goldens.py to run in transformers.
//   node golden/hf/prepare.mjs [outDir]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSynth } from '../../dist/src/synth/synth.js';
import { exportHf } from '../../dist/src/convert/export-hf.js';
import { HF_MOE_RECIPES, HF_MOE_SHAPES, HF_RECIPES, HF_SHAPES, recipeTokens } from './recipes.mjs';

// node golden/hf/prepare.mjs [outDir] [--moe]: --moe writes the phimoe recipes (make_phimoe_goldens.py) instead
const moe = process.argv.includes('--moe');
const out = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? path.join(import.meta.dirname, '..', '.cache', moe ? 'hf-phimoe' : 'hf');
const [recipes, shapes] = moe ? [HF_MOE_RECIPES, HF_MOE_SHAPES] : [HF_RECIPES, HF_SHAPES];
for (const r of recipes) {
  const dir = path.join(out, r.id);
  fs.mkdirSync(dir, { recursive: true });
  const gguf = path.join(dir, 'model.gguf');
  writeSynth(gguf, { shape: shapes[r.shape], type: 'F32', seed: r.seed });
  exportHf(gguf, dir);
  fs.rmSync(gguf);
  fs.writeFileSync(path.join(dir, 'recipe.json'), JSON.stringify({ ...r, synth: shapes[r.shape], tokens: recipeTokens(r) }));
  console.log(dir);
}
