/**
 * Phi-3.5-vision's image side against float64 PyTorch (golden/vision/make_goldens.py: transformers'
 * CLIPVisionModel, the HD merge and projection written from the published model code, and
 * Phi3ForCausalLM on the prompt's embeddings), on a synthetic folder remade here from the recipe.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { writeVisionSynth, seededCrops, type VisionSynthShape } from '../src/synth/vision.js';
import { loadPhi3VImageSide } from '../src/vision/load.js';
import { Phi3VEncoder } from '../src/vision/encoder.js';
import type { FastPhi3V } from '../src/vision/fast.js';
import { clipFeatures } from '../src/vision/clip.js';
import { erf, imageEmbeddings, imageTokenCount } from '../src/vision/phi3v.js';
import { convertHf } from '../src/convert/convert-hf.js';
import { openGguf } from '../src/gguf/file-source.js';
import { Phi3 } from '../src/model/phi3.js';
import { RefOps } from '../src/backend/ref/ops.js';
import { NUMERICS } from '../src/backend/numerics.js';
import { HfFolder } from '../src/hf/folder.js';
import { UnsupportedModelError } from '../src/model/config.js';
import { decodeImage, hdSize, ImageError, preprocessImage } from '../src/vision/preprocess.js';
import { VISION_PRESETS, goldenImageFile } from '../src/synth/vision.js';
import { loadModel } from '../src/api.js';
import { Phi3Server } from '../src/server/server.js';
import OpenAI from 'openai';
import { demoModelPath } from '../src/demo-model.js';
import { logSoftmax } from '../src/generate/sampler.js';
import { ROOT, f32FromB64, tmpDir } from './helpers.js';

interface VisionGolden {
  recipe: { id: string; seed: number; shape: VisionSynthShape; h: number; w: number };
  tokens: number[];
  features: Record<string, string>;
  maxAbsFeature: number;
  embeddings: string;
  maxAbsEmbedding: number;
  maxAbsLogit: number;
  nVocab: number;
  logits: Record<string, string>;
}

const dir = path.join(ROOT, 'golden', 'data', 'vision');
const goldens: VisionGolden[] = fs.existsSync(dir) ? fs.readdirSync(dir).sort().map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))) : [];
if (!goldens.length) console.warn(`NOTE: ${dir} is absent: the Phi-3.5-vision float64 checks are skipped (golden/vision/make_goldens.py makes them).`);

const maxRel = (ours: ArrayLike<number>, ref: Float32Array, scale: number) => {
  expect(ours.length).toBe(ref.length);
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ours[i]! - ref[i]!));
  return m / scale;
};

describe('Phi-3.5-vision image side', () => {
  it('image token counts follow (h·w + 1)·144 + 1 + (h + 1)·12', () => {
    expect(imageTokenCount(1, 1)).toBe(313);
    expect(imageTokenCount(1, 2)).toBe(457);
    expect(imageTokenCount(2, 2)).toBe(757);
    expect(imageTokenCount(4, 4)).toBe(2509); // num_crops 16, a square image
  });

  it('erf is accurate to 1e-14 (GELU of the projection)', () => {
    // reference values (Abramowitz & Stegun table, and erf(x) → 1)
    for (const [x, v] of [[0, 0], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3, 0.9999779095030014], [-1.5, -0.9661051464753108], [6, 1]] as const)
      expect(Math.abs(erf(x) - v)).toBeLessThan(1e-14);
  });

  for (const g of goldens)
    it(`${g.recipe.id}: CLIP features, image embeddings and the text model's logits = float64 PyTorch within 1e-5 × scale (the fast encoder: Q8_0 within 3e-2, F16 5e-3)`, async () => {
      const folder = path.join(tmpDir(), g.recipe.id);
      writeVisionSynth(folder, g.recipe.shape, { seed: g.recipe.seed });
      const side = loadPhi3VImageSide(folder);
      const { h, w } = g.recipe;
      const crops = seededCrops(g.recipe.seed, 1 + h * w);
      for (const [i, b64] of Object.entries(g.features)) {
        const rel = maxRel(clipFeatures(side.weights.clip, crops[Number(i)]!), f32FromB64(b64), g.maxAbsFeature);
        console.log(`${g.recipe.id} crop ${i} features: max |Δ| / scale ${rel.toExponential(2)}`);
        expect(rel).toBeLessThan(1e-5);
      }
      const emb = imageEmbeddings(side.weights, crops, h, w);
      const relE = maxRel(emb, f32FromB64(g.embeddings), g.maxAbsEmbedding);
      console.log(`${g.recipe.id} image embeddings (${emb.length / side.weights.dim} × ${side.weights.dim}): max |Δ| / scale ${relE.toExponential(2)}`);
      expect(relE).toBeLessThan(1e-5);
      // the fast encoder (WASM kernels): Q8_0 matrices and activations (default), or F16 (f16-rounded activations, as ggml's F16 matmul)
      for (const [type, budget] of [['Q8_0', 3e-2], ['F16', 5e-3]] as const) {
        const enc = await Phi3VEncoder.create(side, { threads: 2, type });
        try {
          const fast = (enc as unknown as { fast: { enc: FastPhi3V<unknown> } }).fast.enc;
          const relF = maxRel(fast.features(crops[0]!), f32FromB64(g.features['0']!), g.maxAbsFeature);
          const relFE = maxRel(fast.embeddings(crops, h, w), f32FromB64(g.embeddings), g.maxAbsEmbedding);
          console.log(`${g.recipe.id} fast encoder ${type}: features ${relF.toExponential(2)}, embeddings ${relFE.toExponential(2)} (× scale)`);
          expect(relF).toBeLessThan(budget);
          expect(relFE).toBeLessThan(budget);
        } finally {
          await enc.close();
        }
      }
      // the text model on the prompt with the image's embeddings in place of its placeholder rows
      const gguf = path.join(folder, 'text.gguf');
      convertHf(folder, gguf, { type: 'F32' });
      const f = openGguf(gguf);
      try {
        const model = Phi3.load(f, new RefOps(NUMERICS.exact), { ctx: 1024, maxBatch: g.tokens.length });
        const at = g.tokens.indexOf(-1);
        expect(g.tokens.filter((t) => t < 0).length).toBe(emb.length / side.weights.dim);
        const [rows] = model.forwardParts([{ seq: model.sequences[0]!, tokens: g.tokens, want: 'all', embeds: [{ at, rows: Float32Array.from(emb) }] }]);
        let worst = 0;
        for (const [pos, b64] of Object.entries(g.logits)) worst = Math.max(worst, maxRel(rows![Number(pos)]!, f32FromB64(b64), g.maxAbsLogit));
        console.log(`${g.recipe.id} logits at ${Object.keys(g.logits).length} positions: max |Δ| / scale ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(1e-5);
      } finally {
        f.close();
      }
    }, 300_000);

  it('a vision folder with settings phi3-ts does not run is refused by name', () => {
    const folder = path.join(tmpDir(), 'v');
    writeVisionSynth(folder, { text: { dim: 128, hiddenDim: 256, nLayers: 1, nHeads: 2, nKvHeads: 2, contextLength: 1024 }, hidden: 64, intermediate: 128, layers: 2, numCrops: 4 }, { seed: 3 });
    const cfgPath = path.join(folder, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    for (const [k, v, msg] of [
      ['embd_layer', { ...cfg.embd_layer, hd_transform_order: 'glb_first' }, /hd_transform_order 'glb_first'/],
      ['img_processor', { ...cfg.img_processor, num_img_tokens: 256 }, /num_img_tokens 256/],
      ['img_processor', { ...cfg.img_processor, layer_idx: 3 }, /layer_idx 3/],
    ] as const) {
      fs.writeFileSync(cfgPath, JSON.stringify({ ...cfg, [k]: v }));
      expect(() => HfFolder.open(folder).close()).toThrow(UnsupportedModelError);
      expect(() => HfFolder.open(folder).close()).toThrow(msg);
    }
    fs.writeFileSync(cfgPath, JSON.stringify(cfg));
    expect(loadPhi3VImageSide(folder).weights.dim).toBe(128); // restored, it loads
  });
});

interface PreprocessGolden {
  image: string;
  numCrops: number;
  imageSize: [number, number];
  h: number;
  w: number;
  stride: number;
  crops: { sampled: string; sum: number }[];
}

const preDir = path.join(ROOT, 'golden', 'data', 'vision-preprocess');
const preGoldens = fs.existsSync(preDir) ? fs.readdirSync(preDir).filter((f) => !f.includes('decoded')).sort() : [];

/** a golden picture's bytes (src/synth/vision.ts GOLDEN_IMAGES) */
const goldenImage = (name: string): Uint8Array => goldenImageFile(name).bytes;

describe('Phi-3-vision preprocessing = the reference processor (PIL + torch, golden/vision/make_preprocess_goldens.py)', () => {
  for (const file of preGoldens) {
    const g = JSON.parse(fs.readFileSync(path.join(preDir, file), 'utf8')) as PreprocessGolden;
    // a JPEG decodes a level or two apart between decoders (jpeg-js here, libjpeg in PIL): its values are held looser
    const jpg = g.image.endsWith('.jpg');
    it(`${g.image}, num_crops ${g.numCrops}: image_sizes ${g.imageSize.join('×')}, ${g.h}×${g.w} tiles, values within ${jpg ? '0.05 (decoder)' : '1e-4'}`, () => {
      const p = preprocessImage(decodeImage(goldenImage(g.image.replace(/\.(png|jpg)$/, '')), g.image), g.numCrops);
      expect(p.imageSize).toEqual(g.imageSize);
      expect([p.h, p.w]).toEqual([g.h, g.w]);
      expect(p.crops.length).toBe(g.crops.length);
      let worst = 0;
      for (const [i, c] of g.crops.entries()) {
        const ref = f32FromB64(c.sampled);
        for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(p.crops[i]![k * g.stride]! - ref[k]!));
        const sum = p.crops[i]!.reduce((a, v) => a + v, 0);
        expect(Math.abs(sum - c.sum) / p.crops[i]!.length, `crop ${i} mean`).toBeLessThan(jpg ? 1e-2 : 1e-6);
      }
      expect(worst).toBeLessThan(jpg ? 0.05 : 1e-4);
    });
  }

  it('the JPEG decodes within 3 levels of PIL (libjpeg), 97 % of bytes within 1', () => {
    const d = JSON.parse(fs.readFileSync(path.join(preDir, 'photo-400x250-decoded.json'), 'utf8')) as { width: number; height: number; every13: string };
    const im = decodeImage(goldenImage('photo-400x250'));
    expect([im.width, im.height]).toEqual([d.width, d.height]);
    const ref = Buffer.from(d.every13, 'base64');
    let worst = 0, within1 = 0;
    for (let k = 0; k < ref.length; k++) {
      const diff = Math.abs(im.data[k * 13]! - ref[k]!);
      worst = Math.max(worst, diff);
      if (diff <= 1) within1++;
    }
    expect(worst).toBeLessThanOrEqual(3);
    expect(within1 / ref.length).toBeGreaterThan(0.97); // seen 98.4 % (chroma upsampling differs)
  });

  it('the HD size follows the reference rule, and bad images are ImageErrors that say why', () => {
    expect(hdSize(500, 300, 16)).toEqual([1680, 1008]);
    expect(hdSize(1000, 180, 4)).toEqual([1344, 241]);
    expect(() => decodeImage(new Uint8Array([1, 2, 3, 4]), 'x.bin')).toThrow(/x.bin is neither PNG nor JPEG \(first bytes 01 02 03 04\)/);
    const png = goldenImage('small-100x100');
    expect(() => decodeImage(png.subarray(0, 200), 'cut.png')).toThrow(ImageError);
    expect(() => decodeImage(png.subarray(0, 200), 'cut.png')).toThrow(/cut.png cannot be decoded/);
  });
});

const tjsDir = path.join(ROOT, 'golden', 'data', 'vision-tjs');
const tjsGoldens = fs.existsSync(tjsDir) ? fs.readdirSync(tjsDir).sort() : [];

/** the largest difference between a crop and a golden's samples of it (every `stride`th value), and the mean's difference */
function cropDiff(crop: Float32Array, g: { sampled: string; sum: number }, stride: number): { worst: number; mean: number } {
  const ref = f32FromB64(g.sampled);
  let worst = 0;
  for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(crop[k * stride]! - ref[k]!));
  return { worst, mean: Math.abs(crop.reduce((a, v) => a + v, 0) - g.sum) / crop.length };
}

// transformers.js's processor (golden/vision/transformersjs/) is a second implementation, written for Microsoft's ONNX export.
// It agrees with Microsoft's where it does the same thing, and these tests hold it to 1e-4 there:
// - image_sizes and the image token count, for landscape and square images (it does not transpose a
//   portrait image before the HD rule, so its sizes there differ from Microsoft's, which the PIL goldens follow);
// - the global view, where the HD size is the image's own (no resampling: sharp's resize is not PIL's);
// - every tile, where the tiles also form a √n × √n grid (its sub-crops are √n × √n regions, resized).
describe("Phi-3-vision preprocessing = transformers.js's Phi3VImageProcessor where both define the same thing", () => {
  if (!tjsGoldens.length) it.skip(`no transformers.js goldens in ${tjsDir} (golden/vision/transformersjs: npm run golden)`, () => {});
  const compared = { sizes: 0, global: 0, tiles: 0 };
  for (const file of tjsGoldens) {
    const g = JSON.parse(fs.readFileSync(path.join(tjsDir, file), 'utf8')) as PreprocessGolden & { numImgTokens: number };
    const name = g.image.replace(/\.(png|jpg)$/, '');
    const im = decodeImage(goldenImage(name), g.image);
    const portrait = im.width < im.height;
    const unresampled = !portrait && hdSize(im.width, im.height, g.numCrops).join() === [im.width, im.height].join();
    const jpg = g.image.endsWith('.jpg'); // sharp's libjpeg and jpeg-js decode a level or two apart
    const what = portrait ? 'nothing (portrait)' : unresampled ? 'sizes and values' : 'sizes';
    it(`${g.image}, num_crops ${g.numCrops}: ${what}`, () => {
      const p = preprocessImage(im, g.numCrops);
      if (portrait) {
        expect(p.imageSize[0]).toBeGreaterThan(p.imageSize[1]); // ours stays portrait (Microsoft's rule), see above
        return;
      }
      expect(p.imageSize).toEqual(g.imageSize);
      expect(imageTokenCount(p.h, p.w)).toBe(g.numImgTokens);
      compared.sizes++;
      if (!unresampled) return;
      const tol = jpg ? 0.05 : 1e-4;
      const glb = cropDiff(p.crops[0]!, g.crops[0]!, g.stride);
      expect(glb.worst, 'global view').toBeLessThan(tol);
      expect(glb.mean, 'global view mean').toBeLessThan(jpg ? 1e-2 : 1e-6);
      compared.global++;
      if (p.h * p.h !== g.numCrops || p.w !== p.h) return;
      expect(g.crops.length).toBe(1 + g.numCrops);
      for (let i = 1; i <= g.numCrops; i++) {
        const d = cropDiff(p.crops[i]!, g.crops[i]!, g.stride);
        expect(d.worst, `tile ${i}`).toBeLessThan(tol);
        expect(d.mean, `tile ${i} mean`).toBeLessThan(jpg ? 1e-2 : 1e-6);
      }
      compared.tiles++;
    });
  }
  if (tjsGoldens.length)
    it('the comparisons above happened: sizes of 14 image/num_crops pairs, 4 global views, 3 grids of tiles', () => {
      expect(compared).toEqual({ sizes: 14, global: 4, tiles: 3 });
    });
});

describe('Phi-3.5-vision through the library: loadModel(folder), chat with an image part', () => {
  it("an image's embeddings take its place in the prompt; the first token's log-probabilities = the float64 reference run on the same embeddings", async () => {
    const folder = path.join(tmpDir(), 'phi3v-lib');
    writeVisionSynth(folder, VISION_PRESETS['phi3.5-vision-tiny']!, { seed: 9 });
    const model = await loadModel(folder, { threads: 2, ctx: 2048 });
    try {
      expect(model.vision?.dim).toBe(256);
      const png = goldenImage('wide-500x300'); // 4 crops: 2×2 tiles
      const messages = [{ role: 'user' as const, content: [{ type: 'image' as const, image: png }, { type: 'text' as const, text: 'What is in the picture?' }] }];
      const { ids, gen } = model.chatRequest(messages);
      expect(ids.filter((t) => t === -1).length).toBe(imageTokenCount(2, 2));
      expect(gen.images).toHaveLength(1);
      // the template got the placeholder and the text; the image's rows sit where the placeholder was
      const first = ids.indexOf(-1);
      expect(model.tokenizer.decode(ids.slice(0, first), { special: true })).toMatch(/<\|user\|>\s*$/);
      expect(model.tokenizer.decode(ids.slice(first + imageTokenCount(2, 2)), { special: true })).toMatch(/^\s*What is in the picture\?<\|end\|>/);
      // the library's run (wasm kernels, F32 weights, prefill in chunks across the image)
      const it = model.stream(ids, { ...gen, maxTokens: 1, temperature: 0, topLogprobs: 5 });
      const c = (await it.next()).value as { token: number; topLogprobs: { token: number; logprob: number }[] };
      await it.return(undefined as never);
      // the reference: the folder's text model in exact numerics on the same rows
      const gguf = path.join(folder, 'text.gguf');
      convertHf(folder, gguf, { type: 'F32' });
      const f = openGguf(gguf);
      try {
        const ref = Phi3.load(f, new RefOps(NUMERICS.exact), { ctx: 2048, maxBatch: ids.length });
        const [rows] = ref.forwardParts([{ seq: ref.sequences[0]!, tokens: ids, want: 'last', embeds: [{ at: first, rows: gen.images![0]! }] }]);
        const lp = logSoftmax(rows![0]!);
        expect(c.token).toBe(c.topLogprobs[0]!.token);
        for (const t of c.topLogprobs) expect(Math.abs(t.logprob - lp[t.token]!)).toBeLessThan(2e-3);
      } finally {
        f.close();
      }
    } finally {
      await model.close();
    }
    // a text-only model refuses image parts by name
    const text = await loadModel(demoModelPath(), { threads: 1 });
    try {
      expect(() => text.chatRequest([{ role: 'user', content: [{ type: 'image', image: new Uint8Array(4) }] }])).toThrow(/messages\[0\]\.content\[0\]: this model takes no images/);
      // an image's place with no image given, and a token beyond the vocabulary, say which
      expect(() => text.stream([1, -1], { maxTokens: 1 })).toThrow(/token id -1 stands for image 1, but 0 images are given/);
      expect(() => text.stream([1, 32064], { maxTokens: 1 })).toThrow(/token id 32064 is outside the vocabulary \(0\.\.32063\)/);
      expect(() => text.stream([1, 0.5], { maxTokens: 1 })).toThrow(/token id 0.5 is outside the vocabulary/);
    } finally {
      await text.close();
    }
  }, 300_000);
});

describe('Phi-3.5-vision through the server: OpenAI image_url parts', () => {
  it('a data: URI image is answered, its rows counted in usage; bad, remote, too many and unwanted images are 400s that say why', async () => {
    const folder = path.join(tmpDir(), 'phi3v-serve');
    writeVisionSynth(folder, VISION_PRESETS['phi3.5-vision-tiny']!, { seed: 10 });
    const model = await loadModel(folder, { threads: 2, ctx: 2048 });
    const server = new Phi3Server(model, { port: 0, modelId: 'phi3v-tiny', maxImages: 2 });
    const { port } = await server.listen();
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'none', maxRetries: 0 });
    const post = (body: object) => fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, error: (await r.json()).error }));
    try {
      const png = goldenImage('exact-672x336'); // 1×2 tiles
      const url = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
      const r = await client.chat.completions.create({ model: 'phi3v-tiny', max_tokens: 4, temperature: 0, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'Describe it.' }] }] });
      expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0);
      const textOnly = await client.chat.completions.create({ model: 'phi3v-tiny', max_tokens: 1, messages: [{ role: 'user', content: 'Describe it.' }] });
      expect(r.usage!.prompt_tokens - textOnly.usage!.prompt_tokens).toBe(imageTokenCount(1, 2) + 1); // the rows, and the newline after them
      const img = (u: string) => ({ type: 'image_url', image_url: { url: u } });
      const ask = (parts: object[]) => post({ max_tokens: 2, messages: [{ role: 'user', content: [...parts, { type: 'text', text: 'x' }] }] });
      expect(await ask([img('data:image/png;base64,AAAA')])).toMatchObject({ status: 400, error: { code: 'invalid_image', param: 'messages' } });
      expect(await ask([img('https://example.invalid/cat.png')])).toMatchObject({ status: 400, error: { code: 'image_urls_disabled' } });
      expect(await ask([img(url), img(url), img(url)])).toMatchObject({ status: 400, error: { code: 'too_many_images' } });
      expect(await ask([img('file:///etc/passwd')])).toMatchObject({ status: 400, error: { code: 'invalid_image' } });
      expect((await post({ max_tokens: 2, messages: [{ role: 'assistant', content: [img(url)] }] })).status).toBe(400);
    } finally {
      await server.close();
      await model.close();
    }
    const text = await loadModel(demoModelPath(), { threads: 1 });
    const s2 = new Phi3Server(text, { port: 0 });
    const { port: p2 } = await s2.listen();
    try {
      const r = await fetch(`http://127.0.0.1:${p2}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] }) });
      expect(r.status).toBe(400);
      expect((await r.json()).error.code).toBe('images_unsupported');
    } finally {
      await s2.close();
      await text.close();
    }
  }, 300_000);
});

describe('Phi-3.5-vision on the command line', () => {
  const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const phi3 = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: path.join(tmpDir(), 'xdg') } });
  it('synth --format hf, inspect shows the vision tower, run --image answers, a bad image is a one-line error', () => {
    const dir = path.join(tmpDir(), 'cli-v');
    expect(phi3(['synth', '--preset', 'phi3.5-vision-tiny', '--format', 'hf', '--out', dir, '--seed', '4']).status).toBe(0);
    const ins = phi3(['inspect', dir]);
    expect(ins.stdout).toMatch(/vision {8}CLIP ViT 336² in 14² patches: hidden 128, mlp 256, heads 2, 2 of 3 layers run/);
    const png = path.join(dir, 'p.png');
    fs.writeFileSync(png, goldenImage('small-100x100'));
    const r = phi3(['run', dir, '--image', png, '-p', 'What is it?', '-n', '3', '--temp', '0', '--threads', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(Number(/prompt (\d+) tok/.exec(r.stderr)![1])).toBeGreaterThan(imageTokenCount(2, 2)); // the image's rows are in the prompt
    const bad = phi3(['run', dir, '--image', path.join(dir, 'config.json'), '-p', 'x', '-n', '1']);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n').at(-1)).toMatch(/^phi3 run: ImageError: .*config\.json is neither PNG nor JPEG/);
    expect(phi3(['run', '--image', png, '-p', 'x', '-n', '1']).stderr).toMatch(/--image needs a vision model/);
  }, 300_000);
});
