// Input recipes for quantization goldens: distributions that stress each part of ggml's quantizers.
export const QUANT_RECIPES = [
  { name: 'normal-1', seed: 1, kind: 'normal', scale: 1 },
  { name: 'normal-0.02', seed: 2, kind: 'normal', scale: 0.02 },
  { name: 'uniform-1e-3', seed: 3, kind: 'uniform', scale: 1e-3 },
  { name: 'zero-block', seed: 4, kind: 'zeros-then-normal', scale: 1 },
  { name: 'large', seed: 5, kind: 'normal', scale: 3000 },
  { name: 'positive', seed: 6, kind: 'positive', scale: 1 },
  { name: 'negative', seed: 7, kind: 'negative', scale: 0.5 },
  { name: 'outliers', seed: 8, kind: 'outliers', scale: 1 },
  { name: 'tiny', seed: 9, kind: 'normal', scale: 1e-6 },
  { name: 'constant', seed: 10, kind: 'constant', scale: 0.25 },
];

export function makeInput(rng, r, n) {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (r.kind) {
      case 'normal': x[i] = rng.normal() * r.scale; break;
      case 'uniform': x[i] = (rng.next() * 2 - 1) * r.scale; break;
      case 'zeros-then-normal': x[i] = i < 256 ? 0 : rng.normal() * r.scale; break;
      case 'positive': x[i] = rng.next() * r.scale; break;
      case 'negative': x[i] = -rng.next() * r.scale - 0.1; break;
      case 'outliers': x[i] = rng.normal() * 0.01 + (rng.next() < 0.02 ? rng.normal() * 50 : 0); break;
      case 'constant': x[i] = r.scale; break;
    }
  }
  return x;
}
