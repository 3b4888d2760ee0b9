/**
 * Phi-3 hyper-parameters from GGUF metadata (llama.cpp archs `phi3` and `phimoe`, keys verbatim), plus
 * the memory estimate used by `phi3 inspect` and checked before loading.
 *
 * Mirrors llama.cpp src/llama-model.cpp (LLM_ARCH_PHI3 and LLM_ARCH_PHIMOE in load_hparams / load_tensors).
 * Sizes follow llama2.c names: dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize.
 */
import type { GGUFFile } from '../gguf/reader.js';
import { GgufError, GGUFValueType } from '../gguf/types.js';
import { GGMLType, GGML_TYPES, ggmlTypeName, isWeightType } from '../quant/ggml-type.js';
import { canDequantize } from '../quant/dequantize.js';
import { firstNonFinite } from '../quant/check.js';

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
  nExpert: number; // phimoe.expert_count (0: a dense feed-forward, phi3)
  nExpertUsed: number; // phimoe.expert_used_count: experts each token is routed to
}

/** phi3: Phi-3, Phi-3.5-mini, Phi-4(-mini). phimoe: Phi-3.5-MoE (experts; biased norms and projections). */
export const SUPPORTED_ARCHS = ['phi3', 'phimoe'];

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

/**
 * Every `{arch}.*` key llama.cpp's loader reads (llama-model.cpp load_hparams: the shared part, then
 * LLM_ARCH_PHI3), and what phi3-ts does with it. 'honoured': read and applied. A function: the
 * values it accepts; anything else is refused by name (UnsupportedModelError). Keys not listed are
 * not read by llama.cpp for this architecture either: they are reported as warnings.
 */
type KeyRule = 'honoured' | ((v: unknown, c: { headDim: number; arch: string }) => string | undefined);
const absentOr = (ok: (v: unknown) => boolean, what: string): KeyRule => (v) => (ok(v) ? undefined : `only ${what} is supported`);
const ARCH_KEYS: Record<string, KeyRule> = {
  context_length: 'honoured',
  embedding_length: 'honoured',
  block_count: 'honoured',
  feed_forward_length: 'honoured',
  'attention.head_count': 'honoured',
  'attention.head_count_kv': 'honoured',
  'attention.layer_norm_rms_epsilon': 'honoured',
  'attention.sliding_window': 'honoured', // ignored by default as llama.cpp does for Phi; --swa applies it
  'rope.dimension_count': 'honoured',
  'rope.freq_base': 'honoured',
  'rope.scaling.type': 'honoured', // none | linear | longrope; others refused below
  'rope.scaling.factor': 'honoured',
  'rope.scale_linear': 'honoured',
  'rope.scaling.original_context_length': 'honoured',
  'rope.scaling.attn_factor': 'honoured',
  'rope.scaling.finetuned': 'honoured', // informational in llama.cpp too
  vocab_size: 'honoured', // checked against token_embd
  'attention.key_length': (v, c) => (v === c.headDim ? undefined : `a key length other than the head size ${c.headDim} is not supported`),
  'attention.value_length': (v, c) => (v === c.headDim ? undefined : `a value length other than the head size ${c.headDim} is not supported`),
  // phimoe: read and checked in configFromGguf; phi3 has no experts
  expert_count: (v, c) => (c.arch === 'phimoe' || v === 0 ? undefined : 'only 0 is supported (phi3 has no experts; Phi-3.5-MoE is arch phimoe)'),
  expert_used_count: (v, c) => (c.arch === 'phimoe' || v === 0 ? undefined : 'only 0 is supported (phi3 has no experts)'),
  expert_group_count: absentOr((v) => v === 0 || v === 1, 'no expert groups (0 or 1)'),
  expert_group_used_count: absentOr((v) => v === 0 || v === 1, 'no expert groups (0 or 1)'),
  'attention.causal': absentOr((v) => v === true, 'causal attention'),
  pooling_type: absentOr((v) => v === 0, 'no pooling'),
  'rope.scaling.yarn_ext_factor': () => 'YaRN scaling is not supported',
  'rope.scaling.yarn_attn_factor': () => 'YaRN scaling is not supported',
  'rope.scaling.yarn_beta_fast': () => 'YaRN scaling is not supported',
  'rope.scaling.yarn_beta_slow': () => 'YaRN scaling is not supported',
  'rope.dimension_sections': () => 'multi-section rope is not supported',
  logit_scale: () => 'logit scaling is not supported',
  final_logit_softcapping: () => 'logit soft-capping is not supported',
  attn_logit_softcapping: () => 'attention soft-capping is not supported',
  'attention.layer_norm_epsilon': () => 'LayerNorm (not RMSNorm) is not supported',
  'attention.clamp_kqv': () => 'clamping q/k/v is not supported',
  'attention.max_alibi_bias': () => 'ALiBi is not supported',
};
export const HONOURED_ARCH_KEYS = Object.keys(ARCH_KEYS).filter((k) => ARCH_KEYS[k] === 'honoured');
export const REFUSED_ARCH_KEYS = Object.keys(ARCH_KEYS).filter((k) => ARCH_KEYS[k] !== 'honoured');

/** limits a hyper-parameter must be within before anything is sized by it */
const MAX_DIM = 1 << 16;
const MAX_HIDDEN = 1 << 18;
const MAX_CONTEXT = 1 << 24;
const MAX_EXPERTS = 1 << 10;

export interface ConfigWarning {
  key: string;
  message: string;
}

export function configFromGguf(f: GGUFFile, warnings: ConfigWarning[] = []): Phi3Config {
  const arch = f.getString('general.architecture');
  if (!SUPPORTED_ARCHS.includes(arch))
    throw new UnsupportedModelError(`${f.path}: architecture '${arch}' is not supported (expected ${SUPPORTED_ARCHS.join(', ')})`);
  const k = (s: string) => `${arch}.${s}`;
  const bad = (key: string, msg: string): never => {
    throw new GgufError(msg, 0, { file: f.path, key });
  };
  /** a key's value as a whole number in [min, max], naming the key (and rejecting per-layer arrays) */
  const int = (key: string, min: number, max: number, fallback?: number): number => {
    if (!f.has(key)) {
      if (fallback !== undefined) return fallback;
      return bad(key, `required key is missing`);
    }
    const kvv = f.metadata.get(key)!;
    if (kvv.type === GGUFValueType.ARRAY) throw new UnsupportedModelError(`${f.path}: key '${key}' holds per-layer values, which phi3-ts does not support`);
    const v = f.getNumber(key);
    if (!Number.isInteger(v) || v < min || v > max) bad(key, `expected a whole number in [${min}, ${max}], found ${v}`);
    return v;
  };
  const float = (key: string, fallback: number, ok: (v: number) => boolean, what: string): number => {
    const v = f.optNumber(key) ?? fallback;
    if (!Number.isFinite(v) || !ok(v)) bad(key, `expected ${what}, found ${v}`);
    return v;
  };
  // a vocab-only file (no tensors: llama.cpp's ggml-vocab-*.gguf) keeps its hyper-parameters for
  // inspect's memory estimate; the checks against tensors apply to model files
  const nTensors = f.tensors.length;
  const vocabOnly = nTensors === 0;
  const dim = int(k('embedding_length'), 1, MAX_DIM);
  const nHeads = int(k('attention.head_count'), 1, dim);
  const nKvHeads = int(k('attention.head_count_kv'), 1, nHeads, nHeads);
  // each layer has ≥ 6 tensors: a block count beyond that cannot be this file's
  const nLayers = int(k('block_count'), 1, vocabOnly ? 4096 : Math.max(1, Math.floor(nTensors / 6)));
  const hiddenDim = int(k('feed_forward_length'), 1, MAX_HIDDEN);
  const contextLength = int(k('context_length'), 1, MAX_CONTEXT);
  if (dim % nHeads !== 0) bad(k('attention.head_count'), `embedding_length ${dim} is not divisible by head_count ${nHeads}`);
  if (nHeads % nKvHeads !== 0) bad(k('attention.head_count_kv'), `head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`);
  const headDim = dim / nHeads;
  const ropeDim = int(k('rope.dimension_count'), 2, headDim, headDim);
  if (ropeDim % 2 !== 0) bad(k('rope.dimension_count'), `rope.dimension_count ${ropeDim} must be even and ≤ head size ${headDim}`);
  for (const [key] of f.metadata) {
    if (!key.startsWith(`${arch}.`)) continue;
    const rule = ARCH_KEYS[key.slice(arch.length + 1)];
    if (rule === undefined) warnings.push({ key, message: `key '${key}' is not read by llama.cpp for ${arch}, nor by phi3-ts` });
    else if (rule !== 'honoured') {
      const why = rule(f.metadata.get(key)!.value, { headDim, arch });
      if (why) throw new UnsupportedModelError(`${f.path}: key '${key}' = ${JSON.stringify(f.metadata.get(key)!.value)}: ${why}`);
    }
  }
  const scalingType = f.optString(k('rope.scaling.type')) ?? 'linear';
  if (!ROPE_SCALING_TYPES.includes(scalingType))
    throw new UnsupportedModelError(`${f.path}: ${k('rope.scaling.type')} '${scalingType}' is not supported (phi3-ts runs ${ROPE_SCALING_TYPES.join(', ')})`);
  // llama.cpp: rope.scaling.factor, or the older rope.scale_linear; freq_scale = 1/factor
  const factorKey = f.has(k('rope.scaling.factor')) ? k('rope.scaling.factor') : k('rope.scale_linear');
  const factor = float(factorKey, 0, (v) => v >= 0, 'a factor ≥ 0');
  const ropeFreqScale = scalingType === 'linear' && factor > 0 ? 1 / factor : 1;

  // vocabulary: token_embd rows, the tokenizer's tokens, output rows and vocab_size must agree
  const embd = f.tensor('token_embd.weight');
  const tokens = f.has('tokenizer.ggml.tokens') ? f.getArray('tokenizer.ggml.tokens').items.length : undefined;
  if (!embd && !vocabOnly) throw new UnsupportedModelError(`${f.path}: missing tensor 'token_embd.weight'`);
  const vocabSize = embd ? embd.shape[1] ?? 0 : tokens ?? 0;
  if (tokens !== undefined && tokens !== vocabSize)
    bad('tokenizer.ggml.tokens', `the vocabulary has ${tokens} tokens but token_embd.weight has ${vocabSize} rows`);
  if (f.has(k('vocab_size')) && f.getNumber(k('vocab_size')) !== vocabSize)
    bad(k('vocab_size'), `vocab_size ${f.getNumber(k('vocab_size'))} differs from token_embd.weight's ${vocabSize} rows`);
  const original = int(k('rope.scaling.original_context_length'), 0, MAX_CONTEXT, 0);
  // experts (llama.cpp: n_expert_used ≤ n_expert, and > 0 when there are experts)
  const nExpert = arch === 'phimoe' ? int(k('expert_count'), 1, MAX_EXPERTS) : 0;
  const nExpertUsed = arch === 'phimoe' ? int(k('expert_used_count'), 1, nExpert) : 0;
  return {
    arch,
    name: f.optString('general.name') ?? '',
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    kvDim: headDim * nKvHeads,
    ropeDim,
    ropeFreqBase: float(k('rope.freq_base'), 10000, (v) => v > 1, 'a base > 1'),
    rmsEps: float(k('attention.layer_norm_rms_epsilon'), NaN, (v) => v > 0 && v < 1, 'an epsilon in (0, 1)'),
    contextLength,
    originalContextLength: original || contextLength,
    ropeScalingType: scalingType as RopeScalingType,
    ropeFreqScale,
    ropeAttnFactor: float(k('rope.scaling.attn_factor'), 1, (v) => v > 0, 'a factor > 0'),
    ropeFactors: { long: f.tensor('rope_factors_long.weight') !== undefined, short: f.tensor('rope_factors_short.weight') !== undefined },
    slidingWindow: f.has(k('attention.sliding_window')) ? int(k('attention.sliding_window'), 0, 2 ** 32) : undefined,
    vocabSize,
    tiedEmbeddings: !vocabOnly && f.tensor('output.weight') === undefined,
    nExpert,
    nExpertUsed,
  };
}

/**
 * Expected tensors, with shapes as ggml ne[] (ne[0] = row length): llama.cpp's load_tensors for the arch.
 * phi3: fused attn_qkv and ffn_up (gate | up). phimoe: separate attn_q/k/v, a bias beside every norm and
 * projection, and per layer a router (ffn_gate_inp) with nExpert experts stacked in 3-D tensors.
 */
export function expectedTensors(c: Phi3Config): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const moe = c.arch === 'phimoe';
  m.set('token_embd.weight', [c.dim, c.vocabSize]);
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}`;
    m.set(`${b}.attn_norm.weight`, [c.dim]);
    m.set(`${b}.attn_output.weight`, [c.dim, c.dim]);
    m.set(`${b}.ffn_norm.weight`, [c.dim]);
    if (!moe) {
      m.set(`${b}.attn_qkv.weight`, [c.dim, c.dim + 2 * c.kvDim]);
      m.set(`${b}.ffn_up.weight`, [c.dim, 2 * c.hiddenDim]);
      m.set(`${b}.ffn_down.weight`, [c.hiddenDim, c.dim]);
      continue;
    }
    m.set(`${b}.attn_norm.bias`, [c.dim]);
    for (const [name, rows] of [['attn_q', c.dim], ['attn_k', c.kvDim], ['attn_v', c.kvDim]] as const) {
      m.set(`${b}.${name}.weight`, [c.dim, rows]);
      m.set(`${b}.${name}.bias`, [rows]);
    }
    m.set(`${b}.attn_output.bias`, [c.dim]);
    m.set(`${b}.ffn_norm.bias`, [c.dim]);
    m.set(`${b}.ffn_gate_inp.weight`, [c.dim, c.nExpert]);
    m.set(`${b}.ffn_gate_exps.weight`, [c.dim, c.hiddenDim, c.nExpert]);
    m.set(`${b}.ffn_up_exps.weight`, [c.dim, c.hiddenDim, c.nExpert]);
    m.set(`${b}.ffn_down_exps.weight`, [c.hiddenDim, c.dim, c.nExpert]);
  }
  m.set('output_norm.weight', [c.dim]);
  if (!c.tiedEmbeddings) m.set('output.weight', [c.dim, c.vocabSize]);
  if (moe) {
    m.set('output_norm.bias', [c.dim]);
    m.set('output.bias', [c.vocabSize]);
  }
  if (c.ropeFactors.long) m.set('rope_factors_long.weight', [c.ropeDim / 2]);
  if (c.ropeFactors.short) m.set('rope_factors_short.weight', [c.ropeDim / 2]);
  return m;
}

/** tensors read as f32 vectors by every backend (ggml requires F32 for rope factors; norms and biases are always F32 in real files) */
const F32_ONLY = /((_norm|rope_factors_(long|short))\.weight|\.bias)$/;

/**
 * Check every tensor: each one the forward pass needs is present, has the right shape and a type its
 * role allows; and the file holds no other tensor (llama.cpp refuses those files too: a tensor we did
 * not expect is a feature we would silently ignore).
 */
export function validateTensors(f: GGUFFile, c: Phi3Config): void {
  const expected = expectedTensors(c);
  for (const [name, shape] of expected) {
    const t = f.tensor(name);
    if (!t) {
      if (name.startsWith('blk.') && name.includes('attn_qkv') && f.tensor(name.replace('attn_qkv', 'attn_q')))
        throw new UnsupportedModelError(`${f.path}: separate attn_q/attn_k/attn_v tensors in a phi3 file are not supported (tensor '${name}' expected)`);
      if (c.arch === 'phimoe' && /attn_[qkv]\.weight$/.test(name) && f.tensor(name.replace(/attn_[qkv]\./, 'attn_qkv.')))
        throw new UnsupportedModelError(`${f.path}: a fused attn_qkv tensor in a phimoe file is not supported (tensor '${name}' expected)`);
      throw new UnsupportedModelError(`${f.path}: missing tensor '${name}'`);
    }
    if (JSON.stringify(t.shape) !== JSON.stringify(shape))
      throw new UnsupportedModelError(`${f.path}: tensor '${name}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
    if (F32_ONLY.test(name) && t.type !== GGMLType.F32)
      throw new UnsupportedModelError(`${f.path}: tensor '${name}' has ggml type ${ggmlTypeName(t.type)}; this tensor must be F32`);
    if (!F32_ONLY.test(name) && !isWeightType(t.type))
      throw new UnsupportedModelError(`${f.path}: tensor '${name}' has ggml type ${ggmlTypeName(t.type)}, an activation type that ggml never multiplies as a weight (supported: ${supportedTypeNames().join(' ')})`);
    if (!canDequantize(t.type))
      throw new UnsupportedModelError(
        `${f.path}: tensor '${name}' has ggml type ${ggmlTypeName(t.type)}, which phi3-ts does not support (supported: ${supportedTypeNames().join(' ')})`,
      );
  }
  for (const t of f.tensors)
    if (!expected.has(t.name)) throw new UnsupportedModelError(`${f.path}: tensor '${t.name}' is not part of the ${c.arch} graph that phi3-ts (and llama.cpp) runs`);
}

/**
 * Scan every tensor's data for Inf/NaN (firstNonFinite), reading the file a piece at a time; an error
 * names the tensor and the element or block.
 */
export function checkWeights(f: GGUFFile): void {
  const PIECE = 16 << 20;
  const buf = new Uint8Array(PIECE);
  for (const t of f.tensors) {
    const info = GGML_TYPES.get(t.type)!;
    const unit = info.typeSize; // whole blocks (or elements) per piece
    const step = Math.floor(PIECE / unit) * unit;
    for (let at = 0; at < t.byteSize; at += step) {
      const n = Math.min(step, t.byteSize - at);
      const part = buf.subarray(0, n);
      f.readTensorRange(t, at, part);
      const i = firstNonFinite(t.type, part);
      if (i >= 0) {
        const what = t.type === GGMLType.F32 || t.type === GGMLType.F16 || t.type === GGMLType.BF16 ? `element ${at / unit + i}` : `block ${at / unit + i} (a scale)`;
        throw new UnsupportedModelError(`${f.path}: tensor '${t.name}' holds Inf or NaN at ${what}; the file is damaged`);
      }
    }
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
export function estimateMemory(c: Phi3Config, weightsBytes: number, ctx: number, batch = 512, kvElementBytes = 2): MemoryEstimate {
  const kvCacheBytes = 2 * c.nLayers * ctx * c.kvDim * kvElementBytes; // K and V, f16 (2) or f32 (4)
  // x, xb, xb2, qkv, up/gate, hb; phimoe: q|k|v parts, router logits, expert inputs, weighted expert outputs
  const perToken = 4 * (3 * c.dim + (c.dim + 2 * c.kvDim) + 3 * c.hiddenDim) + (c.nExpert > 0 ? 4 * (c.dim + 2 * c.kvDim + c.nExpert + (2 + c.nExpertUsed) * c.dim) : 0);
  const scratchBytes = batch * perToken + 4 * c.nHeads * ctx + 4 * c.vocabSize * 2 + 16 * Math.max(c.dim, c.hiddenDim) * 4;
  return { weightsBytes, kvCacheBytes, scratchBytes, totalBytes: weightsBytes + kvCacheBytes + scratchBytes };
}
