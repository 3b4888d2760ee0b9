// Phi-3.5-vision golden recipes: a synthetic folder (src/synth/vision.ts) at small dims, the crops'
// pixels (seeded, normalised-range values) and a prompt with one image of h × w crops in it.
import { seededCrops } from '../../dist/src/synth/vision.js';
import { imageTokenCount } from '../../dist/src/vision/phi3v.js';

export const VISION_RECIPES = [
  {
    id: 'phi3v-tiny-1x2',
    seed: 201,
    shape: {
      text: { dim: 128, hiddenDim: 256, nLayers: 2, nHeads: 2, nKvHeads: 2, contextLength: 1024 },
      hidden: 128, intermediate: 256, layers: 3, numCrops: 4,
    },
    h: 1, w: 2,
  },
];

/** the crops' pixels: [1 + h·w][3·336·336] */
export function recipeCrops(r) {
  return seededCrops(r.seed, 1 + r.h * r.w);
}

/** the prompt: BOS, a few tokens, the image's placeholder rows (−1), a few tokens */
export function recipeTokens(r) {
  const n = imageTokenCount(r.h, r.w);
  return [1, 300, 301, 302, ...new Array(n).fill(-1), 303, 304, 305, 306, 307];
}
