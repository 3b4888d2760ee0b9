// Writes the preprocessing goldens' pictures (src/synth/vision.ts GOLDEN_IMAGES) as PNG and JPEG
// files into <outDir>, for make_preprocess_goldens.py to run through the reference processor.
//   node golden/vision/prepare-images.mjs [outDir]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { GOLDEN_IMAGES, syntheticImage } from '../../dist/src/synth/vision.js';

const out = process.argv[2] ?? path.join(import.meta.dirname, '..', '.cache', 'vision-images');
fs.mkdirSync(out, { recursive: true });
for (const [name, seed, w, h, format] of GOLDEN_IMAGES) {
  const im = syntheticImage(seed, w, h);
  const rgba = Buffer.alloc(w * h * 4, 255);
  for (let i = 0; i < w * h; i++) im.data.subarray(3 * i, 3 * i + 3).forEach((v, c) => (rgba[4 * i + c] = v));
  const file = path.join(out, `${name}.${format === 'png' ? 'png' : 'jpg'}`);
  if (format === 'png') {
    const png = new PNG({ width: w, height: h });
    rgba.copy(png.data);
    fs.writeFileSync(file, PNG.sync.write(png));
  } else fs.writeFileSync(file, jpeg.encode({ width: w, height: h, data: rgba }, 90).data);
  console.log(file);
}
