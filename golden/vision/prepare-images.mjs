// Writes the preprocessing goldens' pictures (src/synth/vision.ts GOLDEN_IMAGES) as PNG and JPEG
// files into <outDir>, for make_preprocess_goldens.py to run through the reference processor.
//   node golden/vision/prepare-images.mjs [outDir]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GOLDEN_IMAGES, goldenImageFile } from '../../dist/src/synth/vision.js';

const out = process.argv[2] ?? path.join(import.meta.dirname, '..', '.cache', 'vision-images');
fs.mkdirSync(out, { recursive: true });
for (const g of GOLDEN_IMAGES) {
  const { file, bytes } = goldenImageFile(g.name);
  fs.writeFileSync(path.join(out, file), bytes);
  console.log(path.join(out, file));
}
// which num_crops each picture is run with (make_preprocess_goldens.py, transformersjs/make_goldens.mjs)
fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(GOLDEN_IMAGES.map((g) => ({ file: goldenImageFile(g.name).file, numCrops: g.numCrops }))));
