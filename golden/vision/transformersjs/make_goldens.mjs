// Goldens for phi3-ts's image preprocessing from a second, independent implementation: transformers.js's
// Phi3VImageProcessor (the processor of Microsoft's ONNX export of Phi-3.5-vision), decoding with sharp.
// For each picture of <images> (written by ../prepare-images.mjs; its manifest.json names the num_crops)
// writes <out>/<name>-<n>.json: image_sizes, num_img_tokens, and each crop's values at every 193rd
// index (f32 base64) with their sum — the layout of ../make_preprocess_goldens.py's files.
//   npm install --ignore-scripts && npm run golden        (onnxruntime-node's install script is not needed)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Phi3VImageProcessor, RawImage } from '@huggingface/transformers';

const [src, dst] = process.argv.slice(2);
if (!src || !dst) throw new Error('usage: node make_goldens.mjs <images> <out>');
fs.mkdirSync(dst, { recursive: true });
const version = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'node_modules', '@huggingface', 'transformers', 'package.json'), 'utf8')).version;
const STRIDE = 193, CROP = 3 * 336 * 336;
// Phi-3.5-vision-instruct's preprocessor_config.json
const config = { do_convert_rgb: true, image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711], num_img_tokens: 144 };
const b64 = (a) => Buffer.from(new Float32Array(a).buffer).toString('base64');
for (const { file, numCrops } of JSON.parse(fs.readFileSync(path.join(src, 'manifest.json'), 'utf8'))) {
  // transformers.js takes square num_crops ≥ 4 only (its sub-crops are a √n × √n grid of regions)
  for (const n of numCrops.filter((k) => k >= 4 && Number.isInteger(Math.sqrt(k)))) {
    const processor = new Phi3VImageProcessor({ ...config, num_crops: n });
    const r = await processor(await RawImage.read(path.join(src, file)), { num_crops: n });
    const px = r.pixel_values.data, nCrops = r.pixel_values.dims[1];
    const crops = [];
    for (let c = 0; c < nCrops; c++) {
      const v = px.subarray(c * CROP, (c + 1) * CROP);
      const sampled = [];
      let sum = 0;
      for (let i = 0; i < v.length; i++) {
        sum += v[i];
        if (i % STRIDE === 0) sampled.push(v[i]);
      }
      crops.push({ sampled: b64(sampled), sum });
    }
    const imageSize = [...r.image_sizes.data].map(Number);
    const out = { generator: `golden/vision/transformersjs/make_goldens.mjs: @huggingface/transformers ${version} Phi3VImageProcessor`, image: file, numCrops: n, imageSize, numImgTokens: r.num_img_tokens[0], stride: STRIDE, crops };
    fs.writeFileSync(path.join(dst, `${path.parse(file).name}-${n}.json`), JSON.stringify(out));
    console.log(file, n, 'image_sizes', imageSize, 'tokens', out.numImgTokens, 'crops', nCrops);
  }
}
