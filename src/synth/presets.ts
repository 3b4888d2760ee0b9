/**
 * Shapes of the Phi text models people download, for synthetic files (`phi3 synth --preset`).
 *
 * Each real shape has a `…-tiny` twin with the same features (GQA ratio, partial rotary, LongRoPE,
 * tied output, sliding-window key) and small dims, for tests. Numbers are the models' own
 * config.json / GGUF metadata (microsoft/Phi-3-mini-4k-instruct, Phi-3-mini-128k-instruct,
 * Phi-3.5-mini-instruct, Phi-3-medium-128k-instruct, Phi-4-mini-instruct, phi-4, Phi-3.5-MoE-instruct).
 */

export interface SynthShape {
  /** general.architecture: 'phi3' (default) or 'phimoe' (Phi-3.5-MoE: experts, biases, separate q/k/v) */
  arch?: 'phi3' | 'phimoe';
  /** phimoe: {arch}.expert_count and expert_used_count (hiddenDim is each expert's feed_forward_length) */
  nExpert?: number;
  nExpertUsed?: number;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** phi3.context_length */
  contextLength: number;
  /** used with the synthetic vocab only; a --vocab file brings its own size */
  vocabSize?: number;
  /** write no output.weight: logits use token_embd (tied, as in Phi-4-mini) */
  tiedEmbeddings?: boolean;
  /** phi3.rope.dimension_count (default: the head size; Phi-4-mini rotates 96 of 128) */
  ropeDim?: number;
  /** phi3.rope.freq_base (default 10000) */
  ropeFreqBase?: number;
  /** LongRoPE: phi3.rope.scaling.original_context_length < context_length, with rope_factors_long/short
   *  and rope.scaling.attn_factor = √(1 + ln(context/original) / ln(original)) */
  originalContextLength?: number;
  /** phi3.attention.sliding_window, when the real files write it */
  slidingWindow?: number;
  /** the model's BPE pre-tokenizer (tokenizer.ggml.pre), used with a gpt2 --vocab: gpt-4o (Phi-4-mini), dbrx (Phi-4) */
  tokenizerPre?: string;
}

const mini4k = { dim: 3072, hiddenDim: 8192, nLayers: 32, nHeads: 32, nKvHeads: 32, contextLength: 4096, slidingWindow: 2047 };
const mini128k = { ...mini4k, contextLength: 131072, originalContextLength: 4096, slidingWindow: 262144 };
const medium128k = { dim: 5120, hiddenDim: 17920, nLayers: 40, nHeads: 40, nKvHeads: 10, contextLength: 131072, originalContextLength: 4096, slidingWindow: 131072 };
const phi4mini = { dim: 3072, hiddenDim: 8192, nLayers: 32, nHeads: 24, nKvHeads: 8, ropeDim: 96, contextLength: 131072, originalContextLength: 4096, tiedEmbeddings: true, slidingWindow: 262144, tokenizerPre: 'gpt-4o' };
// Phi-3.5-MoE-instruct: 16 experts of 6400, top-2, GQA 32/8, LongRoPE; as convert_hf_to_gguf writes it
// (no sliding_window key: llama.cpp's phimoe does not read one)
const phimoe = { arch: 'phimoe' as const, nExpert: 16, nExpertUsed: 2, dim: 4096, hiddenDim: 6400, nLayers: 32, nHeads: 32, nKvHeads: 8, contextLength: 131072, originalContextLength: 4096 };
const phi4 = { dim: 5120, hiddenDim: 17920, nLayers: 40, nHeads: 40, nKvHeads: 10, ropeFreqBase: 250000, contextLength: 16384, slidingWindow: 0, tokenizerPre: 'dbrx' };

/** small dims, same features: head 64 (Phi-4-mini-tiny: GQA 3:1, head 64 with 48 rotating, as 96 of 128) */
const tiny = { dim: 256, hiddenDim: 512, nLayers: 2 };

export const PRESETS: Record<string, SynthShape> = {
  // the project's test shapes (MHA with K-quant-friendly rows; GQA 8:2 as Phi-3-medium)
  tiny: { dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 4, contextLength: 512 },
  small: { dim: 512, hiddenDim: 1536, nLayers: 4, nHeads: 8, nKvHeads: 2, contextLength: 1024 },
  mini: { dim: 3072, hiddenDim: 8192, nLayers: 32, nHeads: 32, nKvHeads: 32, contextLength: 4096 },
  medium: { dim: 5120, hiddenDim: 17920, nLayers: 40, nHeads: 40, nKvHeads: 10, contextLength: 4096 },
  // real models
  'phi3-mini-4k': mini4k,
  'phi3-mini-128k': mini128k,
  'phi3.5-mini': mini128k,
  'phi3-medium-128k': medium128k,
  'phi4-mini': phi4mini,
  phi4,
  phimoe,
  // their tiny twins
  'phi3-mini-4k-tiny': { ...mini4k, ...tiny, nHeads: 4, nKvHeads: 4 },
  'phi3-mini-128k-tiny': { ...mini128k, ...tiny, nHeads: 4, nKvHeads: 4 },
  'phi3.5-mini-tiny': { ...mini128k, ...tiny, nHeads: 4, nKvHeads: 4 },
  'phi3-medium-128k-tiny': { ...medium128k, ...tiny, nHeads: 8, nKvHeads: 2, dim: 512, hiddenDim: 768 },
  'phi4-mini-tiny': { ...phi4mini, ...tiny, dim: 768, nHeads: 12, nKvHeads: 4, ropeDim: 48 },
  'phi4-tiny': { ...phi4, ...tiny, nHeads: 4, nKvHeads: 1 },
  // 16 experts, top-2, GQA 4:1; experts of 256 (a K-quant row) keep the file at ≈ 25 MB in F32
  'phimoe-tiny': { ...phimoe, ...tiny, hiddenDim: 256, nHeads: 4, nKvHeads: 1 },
};

/** rope.scaling.attn_factor of a LongRoPE model, as its converter computes it */
export function longRopeAttnFactor(contextLength: number, originalContextLength: number): number {
  const scale = contextLength / originalContextLength;
  return scale <= 1 ? 1 : Math.sqrt(1 + Math.log(scale) / Math.log(originalContextLength));
}
