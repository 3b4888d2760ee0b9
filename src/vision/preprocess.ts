/**
 * Phi-3-vision's image preprocessing, as Microsoft's Phi3VImageProcessor (image_processing_phi3_v.py)
 * does it:
 *
 * 1. RGB (alpha dropped, as PIL's convert('RGB')); a portrait image is transposed first and back last;
 * 2. HD resize: the largest scale s with s·⌈s / ratio⌉ ≤ num_crops, to width s·336 and height
 *    ⌊s·336 / ratio⌋, by PIL's antialiased bilinear filter on 8-bit pixels (torchvision's resize of a
 *    PIL image), reproduced bit for bit: its coefficients, its 22-bit fixed point, its two passes;
 * 3. padding of the height to a multiple of 336 with white, centred (top gets the floor of half);
 * 4. ToTensor and CLIP's mean/std normalisation, in float32 as torch;
 * 5. a global 336² view by bicubic interpolation (torch's, A = −0.75, align_corners false) and the
 *    padded image cut into (H/336)·(W/336) tiles, row-major.
 *
 * Decoding: PNG (pngjs) and JPEG (jpeg-js). Bad input is an ImageError naming what is wrong.
 */
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { CLIP_IMAGE } from './clip.js';

export const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

export class ImageError extends Error {
  override name = 'ImageError';
}

/** 8-bit RGB pixels, row-major, 3 bytes each */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** images larger than this many pixels are refused before decoding (a 16-crop image is 1344² at most after resize) */
export const MAX_IMAGE_PIXELS = 64 << 20;

/** decode a PNG or JPEG file's bytes (by their signature) into RGB */
export function decodeImage(bytes: Uint8Array, what = 'the image'): RgbImage {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let w: number, h: number, rgba: Uint8Array;
  try {
    if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47) {
      const png = PNG.sync.read(b);
      (w = png.width), (h = png.height), (rgba = png.data);
    } else if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
      const j = jpeg.decode(b, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
      (w = j.width), (h = j.height), (rgba = j.data);
    } else throw new ImageError(`${what} is neither PNG nor JPEG (first bytes ${[...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join(' ') || 'none'})`);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(`${what} cannot be decoded: ${(e as Error).message}`);
  }
  if (!w || !h) throw new ImageError(`${what} has no pixels (${w}×${h})`);
  if (w * h > MAX_IMAGE_PIXELS) throw new ImageError(`${what} is ${w}×${h}, more than ${MAX_IMAGE_PIXELS} pixels`);
  const data = new Uint8Array(w * h * 3);
  for (let i = 0, j = 0; i < w * h; i++, j += 4) (data[3 * i] = rgba[j]!), (data[3 * i + 1] = rgba[j + 1]!), (data[3 * i + 2] = rgba[j + 2]!);
  return { width: w, height: h, data };
}

function transpose(im: RgbImage): RgbImage {
  const { width: w, height: h, data } = im;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) out[(x * h + y) * 3 + c] = data[(y * w + x) * 3 + c]!;
  return { width: h, height: w, data: out };
}

// ── PIL's resample (libImaging/Resample.c), bilinear, 8 bits a channel ─────────────────────────
const PRECISION_BITS = 32 - 8 - 2;

/** each output pixel's first input pixel, count, and fixed-point weights */
function coefficients(inSize: number, outSize: number): { bounds: Int32Array; k: Int32Array; ksize: number } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale; // the triangle's support, 1, stretched when shrinking
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2), k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      k[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { bounds, k, ksize };
}

const clip8 = (v: number) => (v >= 1 << (PRECISION_BITS + 8) ? 255 : v <= 0 ? 0 : Math.floor(v / (1 << PRECISION_BITS)));

/** PIL's Image.resize((w, h), BILINEAR) of an 8-bit RGB image: horizontal pass, then vertical */
export function resizeBilinear(im: RgbImage, w: number, h: number): RgbImage {
  let src = im;
  if (w !== im.width) {
    const { bounds, k, ksize } = coefficients(im.width, w);
    const out = new Uint8Array(w * im.height * 3);
    for (let y = 0; y < im.height; y++)
      for (let xx = 0; xx < w; xx++) {
        const xmin = bounds[2 * xx]!, n = bounds[2 * xx + 1]!;
        for (let c = 0; c < 3; c++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < n; x++) ss += im.data[(y * im.width + x + xmin) * 3 + c]! * k[xx * ksize + x]!;
          out[(y * w + xx) * 3 + c] = clip8(ss);
        }
      }
    src = { width: w, height: im.height, data: out };
  }
  if (h !== im.height) {
    const { bounds, k, ksize } = coefficients(im.height, h);
    const out = new Uint8Array(w * h * 3);
    for (let yy = 0; yy < h; yy++) {
      const ymin = bounds[2 * yy]!, n = bounds[2 * yy + 1]!;
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let y = 0; y < n; y++) ss += src.data[((y + ymin) * w + x) * 3 + c]! * k[yy * ksize + y]!;
          out[(yy * w + x) * 3 + c] = clip8(ss);
        }
    }
    src = { width: w, height: h, data: out };
  }
  return src;
}

/** the HD transform's size for an image (landscape: width ≥ height): [new width, new height] */
export function hdSize(width: number, height: number, numCrops: number): [number, number] {
  const ratio = width / height;
  let scale = 1;
  while (scale * Math.ceil(scale / ratio) <= numCrops) scale++;
  scale--;
  const w = Math.trunc(scale * CLIP_IMAGE);
  return [w, Math.trunc(w / ratio)];
}

/** torch's bicubic weights of the 4 taps around t (A = −0.75) */
function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const c1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const c2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
}

/** F.interpolate(x, (336, 336), mode='bicubic', align_corners=False) of one [3, H, W] image */
function bicubicTo336(x: Float32Array, H: number, W: number): Float32Array {
  const S = CLIP_IMAGE, out = new Float32Array(3 * S * S);
  const sy = H / S, sx = W / S;
  const taps = (i: number, scale: number, n: number) => {
    const real = scale * (i + 0.5) - 0.5, i0 = Math.floor(real);
    return { idx: [-1, 0, 1, 2].map((d) => Math.min(Math.max(i0 + d, 0), n - 1)), w: cubicWeights(real - i0) };
  };
  const xs = Array.from({ length: S }, (_, i) => taps(i, sx, W));
  for (let oy = 0; oy < S; oy++) {
    const ty = taps(oy, sy, H);
    for (let ox = 0; ox < S; ox++) {
      const tx = xs[ox]!;
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let a = 0; a < 4; a++) {
          const row = (c * H + ty.idx[a]!) * W;
          let r = 0;
          for (let b = 0; b < 4; b++) r += x[row + tx.idx[b]!]! * tx.w[b]!;
          v += r * ty.w[a]!;
        }
        out[(c * S + oy) * S + ox] = v;
      }
    }
  }
  return out;
}

export interface PreprocessedImage {
  /** crop 0: the global 336² view; then the h·w tiles, row-major; each [3, 336, 336] */
  crops: Float32Array[];
  /** tiles down and across */
  h: number;
  w: number;
  /** the padded image's [height, width] (the processor's image_sizes) */
  imageSize: [number, number];
}

/** an image → Phi-3-vision's crops (see the file's comment) */
export function preprocessImage(image: RgbImage, numCrops: number): PreprocessedImage {
  if (!Number.isInteger(numCrops) || numCrops < 1) throw new RangeError(`num_crops must be a positive integer, got ${numCrops}`);
  let im = image;
  const trans = im.width < im.height;
  if (trans) im = transpose(im);
  const [nw, nh] = hdSize(im.width, im.height, numCrops);
  if (nh < 1) throw new ImageError(`a ${image.width}×${image.height} image is too elongated: its HD size would be ${nw}×${nh}`);
  im = resizeBilinear(im, nw, nh);
  // pad the height to a multiple of 336 with white, centred
  const tar = Math.ceil(nh / CLIP_IMAGE) * CLIP_IMAGE, top = Math.trunc((tar - nh) / 2);
  const padded = new Uint8Array(nw * tar * 3).fill(255);
  padded.set(im.data, top * nw * 3);
  im = { width: nw, height: tar, data: padded };
  if (trans) im = transpose(im);
  const H = im.height, W = im.width;
  // ToTensor + Normalize, in float32: (x / 255 − mean) / std, channels first
  const x = new Float32Array(3 * H * W);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const m = f(OPENAI_CLIP_MEAN[c]!), s = f(OPENAI_CLIP_STD[c]!);
    for (let i = 0; i < H * W; i++) x[c * H * W + i] = f(f(f(im.data[3 * i + c]! / 255) - m) / s);
  }
  const crops = [bicubicTo336(x, H, W)];
  const h = H / CLIP_IMAGE, w = W / CLIP_IMAGE, S = CLIP_IMAGE;
  for (let ty = 0; ty < h; ty++)
    for (let tx = 0; tx < w; tx++) {
      const t = new Float32Array(3 * S * S);
      for (let c = 0; c < 3; c++) for (let y = 0; y < S; y++) t.set(x.subarray(c * H * W + (ty * S + y) * W + tx * S, c * H * W + (ty * S + y) * W + tx * S + S), (c * S + y) * S);
      crops.push(t);
    }
  return { crops, h, w, imageSize: [H, W] };
}
