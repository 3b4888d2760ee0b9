// `node bench/vision.mjs [--threads N]`: Phi-3.5-vision image encode time on the fast (WASM) encoder, on a
// synthetic folder with the real vision tower's dims (CLIP ViT-L/14-336: hidden 1024, mlp 4096, 24
// layers, 23 run; projection 4096 → 3072 → 3072) and a one-layer text model of Phi-3-mini's width.
// Reports one 336² crop's features and a 4-crop image (2×2 tiles + the global view) end to end
// (decode, preprocess, encode, project), medians of --rounds (default 1); with --ttft, the time to first
// token of that image plus 28 text tokens on the synthetic mini Q4_0. Writes bench/results-vision.json.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeVisionSynth, syntheticImage } from '../dist/src/synth/vision.js';
import { loadPhi3VImageSide } from '../dist/src/vision/load.js';
import { Phi3VEncoder } from '../dist/src/vision/encoder.js';
import { PNG } from 'pngjs';

const arg = (n, d) => (process.argv.includes(`--${n}`) ? process.argv[process.argv.indexOf(`--${n}`) + 1] : d);
const threads = Number(arg('threads', String(os.availableParallelism())));
const dir = path.join(import.meta.dirname, '.cache', 'phi3.5-vision-encoder');
if (!fs.existsSync(path.join(dir, 'config.json'))) {
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  writeVisionSynth(dir, { text: { dim: 3072, hiddenDim: 256, nLayers: 1, nHeads: 32, nKvHeads: 32, contextLength: 4096 }, hidden: 1024, intermediate: 4096, layers: 24, numCrops: 4 }, { seed: 1 });
}
const side = loadPhi3VImageSide(dir);
const t0 = performance.now();
const enc = await Phi3VEncoder.create(side, { threads });
const load_s = (performance.now() - t0) / 1000;
const im = syntheticImage(1, 640, 480);
const png = new PNG({ width: 640, height: 480 });
for (let i = 0; i < 640 * 480; i++) png.data.set([...im.data.subarray(3 * i, 3 * i + 3), 255], 4 * i);
const bytes = PNG.sync.write(png);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const crop = new Float32Array(3 * 336 * 336).map((_, i) => Math.sin(i) * 1.5);
const fast = enc.fast.enc;
const cropS = [], imageS = [];
const rounds = Number(arg("rounds", "1"));
for (let r = 0; r < rounds; r++) {
  let t = performance.now();
  fast.features(crop);
  cropS.push((performance.now() - t) / 1000);
  console.error(`one crop: ${cropS.at(-1).toFixed(1)} s`);
  t = performance.now();
  const e = enc.encode(bytes, 'bench.png');
  imageS.push((performance.now() - t) / 1000);
  if (r === 0) console.error(`image: ${e.count} embedding rows`);
}
// time to first token of a one-image prompt on a mini-sized text model (bench/.cache/mini-Q4_0.gguf,
// as bench/run.mjs writes it): the image's encode, then the prompt's prefill with its rows in place
let ttft;
const mini = path.join(import.meta.dirname, '.cache', 'mini-Q4_0.gguf');
if (process.argv.includes('--ttft') && fs.existsSync(mini)) {
  const { loadModel } = await import('../dist/src/api.js');
  const model = await loadModel(mini, { threads, ctx: 2048 });
  try {
    const t = performance.now();
    const e = await enc.encodeAsync(bytes, 'bench.png');
    const ids = [1, 32010, ...new Array(e.count).fill(-1), ...Array.from({ length: 24 }, (_, i) => 500 + i), 32007, 32001];
    const it = model.stream(ids, { images: [e.rows], maxTokens: 1, temperature: 0 });
    await it.next();
    await it.return(undefined);
    ttft = { prompt_tokens: ids.length, encode_s: e.seconds, ttft_s: (performance.now() - t) / 1000 };
    console.error(`TTFT: ${JSON.stringify(ttft)}`);
  } finally {
    await model.close();
  }
}
await enc.close();
const res = { date: new Date().toISOString().slice(0, 10), cpu: os.cpus()[0]?.model ?? '?', node: process.version, threads, load_s, crop_s: median(cropS), image_4crop_s: median(imageS), ttft };
console.log(JSON.stringify(res));
fs.writeFileSync(path.join(import.meta.dirname, 'results-vision.json'), JSON.stringify(res, null, 2) + '\n');
