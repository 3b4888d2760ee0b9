// Writes each vision recipe's synthetic Phi-3.5-vision folder under <out>/<id>/ (src/synth/vision.ts),
// with inputs.safetensors (the crops' pixels) and recipe.json (the tokens, −1 where the image goes),
// for make_goldens.py to run in PyTorch.
//   node golden/vision/prepare.mjs [outDir]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeVisionSynth } from '../../dist/src/synth/vision.js';
import { writeSafetensors } from '../../dist/src/safetensors/safetensors.js';
import { VISION_RECIPES, recipeCrops, recipeTokens } from './recipes.mjs';

const out = process.argv[2] ?? path.join(import.meta.dirname, '..', '.cache', 'vision');
for (const r of VISION_RECIPES) {
  const dir = path.join(out, r.id);
  fs.rmSync(dir, { recursive: true, force: true });
  writeVisionSynth(dir, r.shape, { seed: r.seed });
  const crops = recipeCrops(r);
  const all = new Float32Array(crops.length * crops[0].length);
  crops.forEach((c, i) => all.set(c, i * c.length));
  writeSafetensors(path.join(dir, 'inputs.safetensors'), [{ name: 'crops', dtype: 'F32', shape: [crops.length, 3, 336, 336], data: new Uint8Array(all.buffer) }]);
  fs.writeFileSync(path.join(dir, 'recipe.json'), JSON.stringify({ ...r, tokens: recipeTokens(r) }));
  console.log(dir);
}
