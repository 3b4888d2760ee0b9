// HF-float64 golden recipes: synthetic F32 Phi-3 models of every shape phi3-ts supports (written by our
// synth from a seed, exported with `phi3 export-hf`), the token ids they run, and the context phi3-ts runs
// them at. LongRoPE models keep original_context_length small (64) so "long" sequences stay short.
//
// LongRoPE factor choice differs: transformers picks the long factors when the sequence exceeds the
// original context; llama.cpp (and phi3-ts) when the context does. The -short case runs both on short
// factors; -long runs a sequence longer than the original context (both long); -longctx runs a short
// sequence in a long context, which transformers computes on a copy of the config whose short factors are
// the long ones (hf.forceLong), as llama.cpp's rule asks.
const base = { contextLength: 512 };
const lr = { contextLength: 256, originalContextLength: 64 };
export const HF_SHAPES = {
  mha: { ...base, dim: 128, hiddenDim: 256, nLayers: 4, nHeads: 4, nKvHeads: 4 },
  gqa: { ...base, dim: 192, hiddenDim: 384, nLayers: 3, nHeads: 6, nKvHeads: 2 },
  tied: { ...base, dim: 128, hiddenDim: 256, nLayers: 2, nHeads: 4, nKvHeads: 2, tiedEmbeddings: true },
  // Phi-4-mini: partial rotary (3/4 of each head), tied output, LongRoPE, GQA 3:1
  'phi4-mini': { ...lr, dim: 192, hiddenDim: 384, nLayers: 3, nHeads: 6, nKvHeads: 2, ropeDim: 24, tiedEmbeddings: true },
  // Phi-3.5-mini / Phi-3-mini-128k: MHA, full rotary, LongRoPE
  'phi3.5-mini': { ...lr, dim: 128, hiddenDim: 256, nLayers: 3, nHeads: 4, nKvHeads: 4 },
};
export const HF_RECIPES = [
  { id: 'mha', shape: 'mha', seed: 101, nTokens: 48, ctx: 512 },
  { id: 'gqa', shape: 'gqa', seed: 102, nTokens: 48, ctx: 512 },
  { id: 'tied', shape: 'tied', seed: 103, nTokens: 32, ctx: 512 },
  { id: 'phi4-mini-short', shape: 'phi4-mini', seed: 104, nTokens: 40, ctx: 64 },
  { id: 'phi4-mini-long', shape: 'phi4-mini', seed: 104, nTokens: 100, ctx: 256 },
  { id: 'phi4-mini-longctx', shape: 'phi4-mini', seed: 104, nTokens: 40, ctx: 256, forceLong: true },
  { id: 'phi3.5-mini-short', shape: 'phi3.5-mini', seed: 105, nTokens: 40, ctx: 64 },
  { id: 'phi3.5-mini-long', shape: 'phi3.5-mini', seed: 105, nTokens: 100, ctx: 256 },
];

// Phi-3.5-MoE (arch phimoe): 4 experts, top-2, GQA 4:1, biases, LongRoPE. transformers' Phimoe graph is not
// llama.cpp's (LayerNorm, sparsemixer): make_phimoe_goldens.py writes both transformers' own logits
// (golden/data/hf-phimoe/<id>.json) and those of the same torch model with llama.cpp's norm and routing
// put in (golden/data/hf-phimoe-llamacpp/<id>.json), which phi3-ts's exact mode is held to.
export const HF_MOE_SHAPES = {
  phimoe: { ...lr, arch: 'phimoe', nExpert: 4, nExpertUsed: 2, dim: 128, hiddenDim: 256, nLayers: 2, nHeads: 4, nKvHeads: 1 },
};
export const HF_MOE_RECIPES = [
  { id: 'phimoe-short', shape: 'phimoe', seed: 106, nTokens: 40, ctx: 64 },
  { id: 'phimoe-long', shape: 'phimoe', seed: 106, nTokens: 100, ctx: 256 },
];

/** the recipe's token ids: BOS (1) then a fixed pseudo-random walk over the vocabulary */
export function recipeTokens(r) {
  let s = r.seed >>> 0;
  const out = [1];
  while (out.length < r.nTokens) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(3 + (s % 500)); // ids 3..502, inside the synthetic vocabulary (856)
  }
  return out;
}
