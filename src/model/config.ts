/**
 * Phi-3 hyper-parameters from GGUF metadata (llama.cpp arch `phi3`, keys verbatim), plus the memory
 * estimate used by `phi3 inspect` and checked before loading.
 *
 * Mirrors llama.cpp src/llama-model.cpp (LLM_ARCH_PHI3 in load_hparams / load_tensors).
 * Sizes follow llama2.c names: dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize.
 */
import type { GGUFFile } from '../gguf/reader.js';
import { GgufError } from '../gguf/types.js';
import { GGMLType, GGML_TYPES, ggmlTypeName } from '../quant/ggml-type.js';
import { canDequantize } from '../quant/dequantize.js';

export interface Phi3Config {
  arch: string;
  name: string;
  dim: number; // phi3.embedding_length
  hiddenDim: number; // phi3.feed_forward_length
  nLayers: number; // phi3.block_count
  nHeads: number; // phi3.attention.head_count
  nKvHeads: number; // phi3.attention.head_count_kv
  headDim: number; // dim / nHeads
  kvDim: number; // headDim * nKvHeads
  ropeDim: number; // phi3.rope.dimension_count
  ropeFreqBase: number; // phi3.rope.freq_base
  rmsEps: number; // phi3.attention.layer_norm_rms_epsilon
  contextLength: number; // phi3.context_length (trained)
  originalContextLength: number; // phi3.rope.scaling.original_context_length
  ropeScalingType: RopeScalingType; // phi3.rope.scaling.type (absent: llama.cpp's default, linear)
  ropeFreqScale: number; // 1 / phi3.rope.scaling.factor (linear scaling; 1 when absent)
  ropeAttnFactor: number; // phi3.rope.scaling.attn_factor: multiplies rope's cos and sin (LongRoPE models)
  /** which LongRoPE factor tensors the file has (rope_factors_long.weight / rope_factors_short.weight) */
  ropeFactors: { long: boolean; short: boolean };
  slidingWindow: number | undefined; // phi3.attention.sliding_window (llama.cpp ignores it for Phi-3; so do we)
  vocabSize: number;
  tiedEmbeddings: boolean; // no output.weight → logits use token_embd
}

export const SUPPORTED_ARCHS = ['phi3'];

/** llama.cpp's rope scaling types that the phi3 graph runs as we do ('yarn' is refused) */
export type RopeScalingType = 'none' | 'linear' | 'longrope';
const ROPE_SCALING_TYPES: readonly string[] = ['none', 'linear', 'longrope'];

/**
 * Which LongRoPE factor set runs at context `ctx`, as llama.cpp chooses it (llama_model::get_rope_factors):
 * the long factors when the context per sequence exceeds rope.scaling.original_context_length, else the
 * short ones — once per context, not per position. (HF transformers chooses per forward call, by the
 * sequence length: see README.)
 */
export function ropeFactorSet(c: Phi3Config, ctx: number): 'long' | 'short' | 'none' {
  const set = ctx > c.originalContextLength ? 'long' : 'short';
  return c.ropeFactors[set] ? set : 'none';
}

/** A model the runtime cannot run (architecture, tensor type or shape). */
export class UnsupportedModelError extends Error {
  override name = 'UnsupportedModelError';
}

export function configFromGguf(f: GGUFFile): Phi3Config {
  const arch = f.getString('general.architecture');
  if (!SUPPORTED_ARCHS.includes(arch))
    throw new UnsupportedModelError(`${f.path}: architecture '${arch}' is not supported (expected ${SUPPORTED_ARCHS.join(', ')})`);
  const k = (s: string) => `${arch}.${s}`;
  const dim = f.getNumber(k('embedding_length'));
  const nHeads = f.getNumber(k('attention.head_count'));
  const nKvHeads = f.optNumber(k('attention.head_count_kv')) ?? nHeads;
  if (nHeads <= 0 || dim % nHeads !== 0)
    throw new GgufError(`embedding_length ${dim} is not divisible by head_count ${nHeads}`, 0, { file: f.path, key: k('attention.head_count') });
  if (nKvHeads <= 0 || nHeads % nKvHeads !== 0)
    throw new GgufError(`head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`, 0, { file: f.path, key: k('attention.head_count_kv') });
  const headDim = dim / nHeads;
  const tokens = f.has('tokenizer.ggml.tokens') ? f.getArray('tokenizer.ggml.tokens').items.length : 0;
  const embd = f.tensor('token_embd.weight');
  const contextLength = f.getNumber(k('context_length'));
  const ropeDim = f.optNumber(k('rope.dimension_count')) ?? headDim;
  if (ropeDim > headDim || ropeDim % 2 !== 0)
    throw new GgufError(`rope.dimension_count ${ropeDim} must be even and ≤ head size ${headDim}`, 0, { file: f.path, key: k('rope.dimension_count') });
  const scalingType = f.optString(k('rope.scaling.type')) ?? 'linear';
  if (!ROPE_SCALING_TYPES.includes(scalingType))
    throw new UnsupportedModelError(`${f.path}: ${k('rope.scaling.type')} '${scalingType}' is not supported (phi3-ts runs ${ROPE_SCALING_TYPES.join(', ')})`);
  // llama.cpp: rope.scaling.factor, or the older rope.scale_linear; freq_scale = 1/factor
  const factor = f.optNumber(k('rope.scaling.factor')) ?? f.optNumber(k('rope.scale_linear')) ?? 0;
  const ropeFreqScale = scalingType === 'linear' && factor > 0 ? 1 / factor : 1;
  return {
    arch,
    name: f.optString('general.name') ?? '',
    dim,
    hiddenDim: f.getNumber(k('feed_forward_length')),
    nLayers: f.getNumber(k('block_count')),
    nHeads,
    nKvHeads,
    headDim,
    kvDim: headDim * nKvHeads,
    ropeDim,
    ropeFreqBase: f.optNumber(k('rope.freq_base')) ?? 10000,
    rmsEps: f.getNumber(k('attention.layer_norm_rms_epsilon')),
    contextLength,
    originalContextLength: f.optNumber(k('rope.scaling.original_context_length')) || contextLength,
    ropeScalingType: scalingType as RopeScalingType,
    ropeFreqScale,
    ropeAttnFactor: f.optNumber(k('rope.scaling.attn_factor')) ?? 1,
    ropeFactors: { long: f.tensor('rope_factors_long.weight') !== undefined, short: f.tensor('rope_factors_short.weight') !== undefined },
    slidingWindow: f.optNumber(k('attention.sliding_window')),
    vocabSize: embd ? embd.shape[1] ?? 0 : tokens,
    tiedEmbeddings: embd !== undefined && f.tensor('output.weight') === undefined,
  };
}

/** Expected tensors of a phi3 model, with shapes as ggml ne[] (ne[0] = row length). */
export function expectedTensors(c: Phi3Config): Map<string, number[]> {
  const m = new Map<string, number[]>();
  m.set('token_embd.weight', [c.dim, c.vocabSize]);
  for (let l = 0; l < c.nLayers; l++) {
    m.set(`blk.${l}.attn_norm.weight`, [c.dim]);
    m.set(`blk.${l}.attn_qkv.weight`, [c.dim, c.dim + 2 * c.kvDim]);
    m.set(`blk.${l}.attn_output.weight`, [c.dim, c.dim]);
    m.set(`blk.${l}.ffn_norm.weight`, [c.dim]);
    m.set(`blk.${l}.ffn_up.weight`, [c.dim, 2 * c.hiddenDim]);
    m.set(`blk.${l}.ffn_down.weight`, [c.hiddenDim, c.dim]);
  }
  m.set('output_norm.weight', [c.dim]);
  if (!c.tiedEmbeddings) m.set('output.weight', [c.dim, c.vocabSize]);
  if (c.ropeFactors.long) m.set('rope_factors_long.weight', [c.ropeDim / 2]);
  if (c.ropeFactors.short) m.set('rope_factors_short.weight', [c.ropeDim / 2]);
  return m;
}

/** Check every tensor the forward pass needs: present, right shape, a type we can run. */
export function validateTensors(f: GGUFFile, c: Phi3Config): void {
  for (const [name, shape] of expectedTensors(c)) {
    const t = f.tensor(name);
    if (!t) {
      if (name.startsWith('blk.') && name.includes('attn_qkv') && f.tensor(name.replace('attn_qkv', 'attn_q')))
        throw new UnsupportedModelError(`${f.path}: separate attn_q/attn_k/attn_v tensors are not supported yet (tensor '${name}' expected)`);
      throw new UnsupportedModelError(`${f.path}: missing tensor '${name}'`);
    }
    if (JSON.stringify(t.shape) !== JSON.stringify(shape))
      throw new UnsupportedModelError(`${f.path}: tensor '${name}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
    if (!canDequantize(t.type))
      throw new UnsupportedModelError(
        `${f.path}: tensor '${name}' has ggml type ${ggmlTypeName(t.type)}, which phi3-ts does not support (supported: ${supportedTypeNames().join(' ')})`,
      );
  }
}

export function supportedTypeNames(): string[] {
  return [...GGML_TYPES.values()].filter((t) => canDequantize(t.type) && t.type !== GGMLType.Q8_K).map((t) => t.name);
}

export interface MemoryEstimate {
  weightsBytes: number;
  kvCacheBytes: number;
  scratchBytes: number;
  totalBytes: number;
}

/** Memory to run at context `ctx`: weights as stored, f16 KV cache, activations for a `batch`-token prefill. */
export function estimateMemory(c: Phi3Config, weightsBytes: number, ctx: number, batch = 512): MemoryEstimate {
  const kvCacheBytes = 2 * c.nLayers * ctx * c.kvDim * 2; // K and V, f16
  const perToken = 4 * (3 * c.dim + (c.dim + 2 * c.kvDim) + 3 * c.hiddenDim); // x, xb, xb2, qkv, up/gate, hb
  const scratchBytes = batch * perToken + 4 * c.nHeads * ctx + 4 * c.vocabSize * 2 + 16 * Math.max(c.dim, c.hiddenDim) * 4;
  return { weightsBytes, kvCacheBytes, scratchBytes, totalBytes: weightsBytes + kvCacheBytes + scratchBytes };
}
