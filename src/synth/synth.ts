/**
 * Synthetic Phi-3 models: real shapes and metadata, random weights, written by our own GGUF writer.
 *
 * What it is: the test and benchmark models of this project (no weights can be downloaded here).
 * Same seed → same bytes. Shapes and tensor names follow llama.cpp's `phi3` architecture exactly,
 * so the files load in llama.cpp (node-llama-cpp). Not a converter or a quantizer of real weights.
 *
 * How weights are made, per ggml type (fast enough for the 2 GiB mini Q4_0 in seconds):
 * - F32/F16/BF16: uniform values on a 65536-level grid, looked up from a table built once per tensor.
 * - quantized types: each block's quant bytes are random; its scale fields (d, dmin, m) are set so the
 *   dequantized weights have the tensor's target RMS (calibrated per type by dequantizing samples).
 * Scales are chosen so next-token distributions are peaked (see WEIGHT_RMS), which keeps greedy
 * comparisons with llama.cpp meaningful.
 */
import { GGMLType, GGML_TYPES, ggmlTypeByName } from '../quant/ggml-type.js';
import { dequantizeRow } from '../quant/dequantize.js';
import { fp32ToBf16, fp32ToFp16 } from '../quant/fp16.js';
import { openGguf } from '../gguf/file-source.js';
import { kv, writeGguf, type GGUFTensorSpec } from '../gguf/writer.js';
import { GGUFValueType, type GGUFKV } from '../gguf/types.js';
import { Rng } from '../util/rng.js';
import { PHI3_CHAT_TEMPLATE, PHI4_MINI_CHAT_TEMPLATE } from '../generate/phi3-template.js';
import { longRopeAttnFactor, type SynthShape } from './presets.js';
import { bpeVocabMetadata } from './bpe-vocab.js';
import { trainedTensor, type TrainedJob } from './trained.js';

function isBpeVocab(file: string): boolean {
  const f = openGguf(file);
  try {
    return f.optString('tokenizer.ggml.model') === 'gpt2';
  } finally {
    f.close();
  }
}

export { PRESETS, type SynthShape } from './presets.js';

/** llama_ftype values for general.file_type */
export const FILE_TYPE: Record<string, number> = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K: 12, Q4_K: 15, Q5_K: 17, Q6_K: 18,
  Q4_K_M: 15, Q5_K_M: 17, BF16: 32,
};
export const SYNTH_TYPES = Object.keys(FILE_TYPE);

export interface SynthOptions {
  shape: SynthShape;
  /** F32 | F16 | BF16 | Q8_0 | Q4_0 | … | Q4_K_M | Q5_K_M */
  type: string;
  seed: number;
  /** GGUF whose tokenizer.* keys are copied (e.g. ../shared/models/ggml-vocab-phi-3.gguf) */
  vocabFile?: string;
  /** with a gpt2 (BPE) vocabFile: this pre-tokenizer and Phi-4's special tokens (default: the shape's) */
  pre?: string;
  name?: string;
  /**
   * how the weight matrices are drawn: 'blocks' (default) random quant bytes with calibrated scale
   * fields, fast, for tests; 'trained' F32 values shaped like a trained model's, quantized by the
   * ggml-exact quantizers, so that block scales fall as in real files (trained.ts), for benchmarks
   */
  weights?: 'blocks' | 'trained';
}

/** llama.cpp's use_more_bits(i_layer, n_layers): which ffn_down layers Q4_K_M bumps to q6_K */
function useMoreBits(i: number, n: number): boolean {
  return i < n / 8 || i >= (7 * n) / 8 || (i - Math.floor(n / 8)) % 3 === 2;
}

export type Role = 'token_embd' | 'output' | 'attn_qkv' | 'attn_q' | 'attn_k' | 'attn_v' | 'attn_output' | 'ffn_up' | 'ffn_down' | 'ffn_gate_inp' | 'ffn_gate_exps' | 'ffn_up_exps' | 'ffn_down_exps';

/** ggml type of each weight matrix for a file type (norms and biases are always F32). */
export function tensorType(fileType: string, role: Role, layer: number, nLayers: number): GGMLType {
  // llama-quantize never quantizes the MoE router
  if (role === 'ffn_gate_inp') return GGMLType.F32;
  if (fileType === 'Q4_K_M' || fileType === 'Q5_K_M') {
    const base = fileType === 'Q4_K_M' ? GGMLType.Q4_K : GGMLType.Q5_K;
    const bumped = fileType === 'Q4_K_M' ? GGMLType.Q5_K : GGMLType.Q6_K;
    if (role === 'output') return GGMLType.Q6_K;
    if (role === 'attn_qkv') return bumped;
    if ((role === 'ffn_down' || role === 'ffn_down_exps' || role === 'attn_v') && useMoreBits(layer, nLayers)) return GGMLType.Q6_K;
    return base;
  }
  const t = ggmlTypeByName(fileType);
  if (t === undefined || !(fileType in FILE_TYPE)) throw new Error(`synth: unsupported --type ${fileType} (one of ${SYNTH_TYPES.join(', ')})`);
  return t;
}

// ── vocabulary ───────────────────────────────────────────────────────────────────────────────

const WORDS = (
  'the of and to in is it you that he was for on are with as his they be at one have this from or had by hot ' +
  'word but what some we can out other were all there when up use your how said an each she which do their time ' +
  'if will way about many then them write would like so these her long make thing see him two has look more day ' +
  'could go come did number sound no most people my over know water than call first who may down side been now ' +
  'find any new work part take get place made live where after back little only round man year came show every ' +
  'good me give our under name very through just form sentence great think say help low line differ turn cause ' +
  'much mean before move right boy old too same tell does set three want air well also play small end put home ' +
  'read hand port large spell add even land here must big high such follow act why ask men change went light ' +
  'kind off need house picture try us again animal point mother world near build self earth father model token ' +
  'phi language hello code function return value'
).split(' ');

export interface Vocab {
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
  bos: number;
  eos: number;
  unk: number;
}

/** A small SPM ("llama") vocabulary: control tokens, 256 byte tokens, characters, word pieces, chat tokens. */
export function syntheticVocab(): Vocab {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [2, 3, 3]; // UNKNOWN, CONTROL, CONTROL
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6); // BYTE
  }
  const pieces = new Map<string, number>();
  const add = (p: string, score: number) => {
    if (!pieces.has(p)) pieces.set(p, score);
  };
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'"-:;()\n';
  add('▁', -1);
  for (const c of chars) add(c, -2);
  for (const c of 'abcdefghijklmnopqrstuvwxyzTAIW0123456789') add('▁' + c, -3);
  WORDS.forEach((w, i) => {
    const p = '▁' + w;
    // every prefix must exist for SPM's pairwise merges to reach the word
    for (let k = 3; k <= p.length; k++) add(p.slice(0, k), -(k * 100 + i / 1000));
  });
  for (const [p, s] of pieces) {
    tokens.push(p);
    types.push(1); // NORMAL
    void s;
  }
  const scores = [0, 0, 0, ...new Array(256).fill(0), ...pieces.values()];
  const chat = ['<|endoftext|>', '<|assistant|>', '<|system|>', '<|end|>', '<|user|>'];
  const eos = tokens.length;
  for (const c of chat) {
    tokens.push(c);
    types.push(3); // CONTROL
    scores.push(0);
  }
  return { tokens, scores: Float32Array.from(scores), types: Int32Array.from(types), bos: 1, eos, unk: 0 };
}

function vocabMetadata(v: Vocab): [string, GGUFKV][] {
  return [
    ['tokenizer.ggml.model', kv.str('llama')],
    ['tokenizer.ggml.pre', kv.str('default')],
    ['tokenizer.ggml.tokens', kv.arr(GGUFValueType.STRING, v.tokens)],
    ['tokenizer.ggml.scores', kv.arr(GGUFValueType.FLOAT32, v.scores)],
    ['tokenizer.ggml.token_type', kv.arr(GGUFValueType.INT32, v.types)],
    ['tokenizer.ggml.bos_token_id', kv.u32(v.bos)],
    ['tokenizer.ggml.eos_token_id', kv.u32(v.eos)],
    ['tokenizer.ggml.unknown_token_id', kv.u32(v.unk)],
    ['tokenizer.ggml.padding_token_id', kv.u32(v.eos)],
    ['tokenizer.ggml.add_bos_token', kv.bool(true)],
    ['tokenizer.ggml.add_eos_token', kv.bool(false)],
    ['tokenizer.chat_template', kv.str(PHI3_CHAT_TEMPLATE)],
  ];
}

// ── weights ──────────────────────────────────────────────────────────────────────────────────

/**
 * Target RMS of each weight matrix: rmsnorm gives activations of RMS 1, so a row of RMS r over
 * `n` inputs gives outputs of RMS r·√n. Logits get RMS ≈ 4 (peaked softmax), attention scores ≈ 1,
 * residual branches ≈ 0.5 of the stream.
 */
function weightRms(role: Role, s: SynthShape): number {
  switch (role) {
    case 'token_embd': return s.tiedEmbeddings ? 4 / Math.sqrt(s.dim) : 1;
    case 'output': return 4 / Math.sqrt(s.dim);
    case 'attn_qkv': case 'attn_q': case 'attn_k': case 'attn_v': return 1 / Math.sqrt(s.dim);
    case 'attn_output': return 0.5 / Math.sqrt(s.dim);
    case 'ffn_up': case 'ffn_gate_exps': case 'ffn_up_exps': return 1.5 / Math.sqrt(s.dim);
    case 'ffn_down': case 'ffn_down_exps': return 1 / Math.sqrt(s.hiddenDim);
    // router logits of RMS ≈ 1.5: distinct experts win, near-ties between the 2nd and 3rd are rare
    case 'ffn_gate_inp': return 1.5 / Math.sqrt(s.dim);
  }
}

/** RMS of the dequantized weights of a random block whose scale fields are 1 (measured, cached). */
const unitRms = new Map<GGMLType, number>();
function calibrate(type: GGMLType): number {
  const cached = unitRms.get(type);
  if (cached !== undefined) return cached;
  const t = GGML_TYPES.get(type)!;
  const nb = 64;
  const bytes = new Uint8Array(nb * t.typeSize);
  fillBlocks(type, bytes, new Rng(12345), () => 1);
  const y = new Float32Array(nb * t.blockSize);
  dequantizeRow(type, bytes, 0, y, 0, y.length);
  const rms = Math.sqrt(y.reduce((a, v) => a + v * v, 0) / y.length);
  unitRms.set(type, rms);
  return rms;
}

/** offsets of a block's f16 scale fields and the ratio of each to d (so the mean is ≈ 0) */
function scaleFields(type: GGMLType): [number, number][] {
  const t = GGML_TYPES.get(type)!;
  const at = (n: string) => t.fields.find((f) => f.name === n)!.offset;
  switch (type) {
    case GGMLType.Q4_0: case GGMLType.Q5_0: case GGMLType.Q8_0: case GGMLType.Q3_K: case GGMLType.Q6_K:
      return [[at('d'), 1]];
    case GGMLType.Q4_1: return [[at('d'), 1], [at('m'), -7.5]];
    case GGMLType.Q5_1: return [[at('d'), 1], [at('m'), -15.5]];
    case GGMLType.Q2_K: return [[at('d'), 1], [at('dmin'), 1.5]];
    case GGMLType.Q4_K: return [[at('d'), 1], [at('dmin'), 7.5]];
    case GGMLType.Q5_K: return [[at('d'), 1], [at('dmin'), 15.5]];
    default: throw new Error(`synth: no random-block generator for ${t.name}`);
  }
}

/** random quant bytes; each block's scale fields = ratio × d(block) */
function fillBlocks(type: GGMLType, out: Uint8Array, rng: Rng, d: () => number): void {
  const t = GGML_TYPES.get(type)!;
  rng.bytes(out);
  const fields = scaleFields(type);
  for (let o = 0; o < out.length; o += t.typeSize) {
    const db = d();
    for (const [off, ratio] of fields) {
      const h = fp32ToFp16(db * ratio);
      out[o + off] = h & 0xff;
      out[o + off + 1] = h >> 8;
    }
  }
}

/** n random weights of `type` with RMS ≈ rms (random quant bytes, calibrated scale fields) */
export function randomTensor(type: GGMLType, n: number, rms: number, rng: Rng): Uint8Array {
  const t = GGML_TYPES.get(type)!;
  const out = new Uint8Array((n / t.blockSize) * t.typeSize);
  if (type === GGMLType.F32 || type === GGMLType.F16 || type === GGMLType.BF16) {
    // uniform on [-a, a] has RMS a/√3; 65536 levels from a table built once per tensor
    const a = rms * Math.sqrt(3);
    const level = (i: number) => ((i + 0.5) / 65536) * 2 * a - a;
    if (type === GGMLType.F32) {
      const table = new Float32Array(65536).map((_, i) => level(i));
      const o = new Float32Array(out.buffer);
      for (let i = 0; i < n; i += 2) {
        const r = rng.u32();
        o[i] = table[r & 0xffff]!;
        if (i + 1 < n) o[i + 1] = table[r >>> 16]!;
      }
    } else {
      const conv = type === GGMLType.F16 ? fp32ToFp16 : fp32ToBf16;
      const table = new Uint16Array(65536).map((_, i) => conv(level(i)));
      const o = new Uint16Array(out.buffer);
      for (let i = 0; i < n; i += 2) {
        const r = rng.u32();
        o[i] = table[r & 0xffff]!;
        if (i + 1 < n) o[i + 1] = table[r >>> 16]!;
      }
    }
    return out;
  }
  const base = rms / calibrate(type);
  // per-block scale jitter in [0.75, 1.25] so blocks differ as in real files
  fillBlocks(type, out, rng, () => base * (0.75 + 0.5 * rng.next()));
  return out;
}

function normWeights(n: number, rng: Rng): Uint8Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = 1 + 0.1 * (rng.next() * 2 - 1);
  return new Uint8Array(w.buffer);
}

/**
 * LongRoPE factor sets shaped like the real ones: 1 for the fastest-turning pairs, growing towards the
 * slow ones (Phi-3.5-mini's long factors reach ≈ 50 at the last pair, its short ones ≈ 3), increasing
 * but with seeded jitter.
 */
function longRopeFactors(n: number, rng: Rng): [Float32Array, Float32Array] {
  const long = new Float32Array(n), short = new Float32Array(n);
  let l = 1, sh = 1;
  for (let i = 0; i < n; i++) {
    const u = i / Math.max(1, n - 1);
    l = Math.max(l, 1 + 49 * u ** 2 * (0.8 + 0.4 * rng.next()));
    sh = Math.max(sh, 1 + 2 * u ** 3 * (0.8 + 0.4 * rng.next()));
    long[i] = l;
    short[i] = sh;
  }
  return [long, short];
}

/** a synthetic tensor; 'trained' matrices also carry what a worker needs to draw the same bytes (write-node.ts) */
export type SynthTensorSpec = GGUFTensorSpec & { job?: TrainedJob };

/** Build the GGUF spec of a synthetic model (metadata now, tensor bytes lazily as they are written). */
export function synthSpec(o: SynthOptions): { metadata: [string, GGUFKV][]; tensors: SynthTensorSpec[] } {
  const s = o.shape;
  if (!(o.type in FILE_TYPE)) throw new Error(`synth: unsupported --type ${o.type} (one of ${SYNTH_TYPES.join(', ')})`);
  if (o.weights !== undefined && o.weights !== 'blocks' && o.weights !== 'trained') throw new Error(`synth: unknown weights '${o.weights}' (blocks or trained)`);
  if (s.dim % s.nHeads !== 0) throw new Error(`synth: dim ${s.dim} is not divisible by ${s.nHeads} heads`);
  if (s.nHeads % s.nKvHeads !== 0) throw new Error(`synth: ${s.nHeads} heads are not a multiple of ${s.nKvHeads} KV heads`);
  const headDim = s.dim / s.nHeads;
  const kvDim = headDim * s.nKvHeads;
  const ropeDim = s.ropeDim ?? headDim;
  if (ropeDim % 2 !== 0 || ropeDim > headDim) throw new Error(`synth: rope dims ${ropeDim} must be even and ≤ the head size ${headDim}`);
  const original = s.originalContextLength ?? s.contextLength;
  const longRope = original < s.contextLength;

  let vocabKv: [string, GGUFKV][];
  let vocabSize: number;
  const vocabPre = o.pre ?? s.tokenizerPre;
  const bpeVocab = o.vocabFile !== undefined && vocabPre !== undefined && isBpeVocab(o.vocabFile);
  if (bpeVocab) {
    vocabKv = bpeVocabMetadata(o.vocabFile!, vocabPre!).filter(([k]) => k.startsWith('tokenizer.'));
    // Phi-4-mini's own template (tools in the system turn); Phi-4's format is found from its tokens
    if (vocabPre === 'gpt-4o') vocabKv.push(['tokenizer.chat_template', kv.str(PHI4_MINI_CHAT_TEMPLATE)]);
    vocabSize = (vocabKv.find(([k]) => k === 'tokenizer.ggml.tokens')![1].value as { items: string[] }).items.length;
  } else if (o.vocabFile) {
    const f = openGguf(o.vocabFile);
    vocabKv = [...f.metadata].filter(([k]) => k.startsWith('tokenizer.'));
    vocabSize = f.getStringArray('tokenizer.ggml.tokens').length;
    f.close();
  } else {
    const v = syntheticVocab();
    vocabKv = vocabMetadata(v);
    vocabSize = v.tokens.length;
  }

  const arch = s.arch ?? 'phi3';
  const moe = arch === 'phimoe';
  if (moe && !(s.nExpert && s.nExpertUsed && s.nExpertUsed <= s.nExpert)) throw new Error(`synth: phimoe needs 1 ≤ expert_used_count ≤ expert_count`);
  const a = (key: string) => `${arch}.${key}`;
  const metadata: [string, GGUFKV][] = [
    ['general.architecture', kv.str(arch)],
    // llama.cpp gives Phi-3 files (general.name containing "phi3"/"phi-3") special-token rstrip rules
    // and looks up '</s>' doing so, which a BPE vocabulary lacks: a BPE model's name avoids both, as
    // real Phi-4 names ("Phi 4 Mini Instruct") do
    ['general.name', kv.str(o.name ?? (bpeVocab ? `synthetic Phi-4-family model (BPE ${vocabPre}) ${o.type} seed ${o.seed}` : `phi3-ts synthetic ${o.type} seed ${o.seed}`))],
    [a('context_length'), kv.u32(s.contextLength)],
    [a('rope.scaling.original_context_length'), kv.u32(original)],
    ...(longRope ? [[a('rope.scaling.attn_factor'), kv.f32(longRopeAttnFactor(s.contextLength, original))] as [string, GGUFKV]] : []),
    ...(s.slidingWindow !== undefined ? [[a('attention.sliding_window'), kv.u32(s.slidingWindow)] as [string, GGUFKV]] : []),
    [a('embedding_length'), kv.u32(s.dim)],
    [a('feed_forward_length'), kv.u32(s.hiddenDim)],
    [a('block_count'), kv.u32(s.nLayers)],
    [a('attention.head_count'), kv.u32(s.nHeads)],
    [a('attention.head_count_kv'), kv.u32(s.nKvHeads)],
    [a('attention.layer_norm_rms_epsilon'), kv.f32(1e-5)],
    [a('rope.dimension_count'), kv.u32(ropeDim)],
    [a('rope.freq_base'), kv.f32(s.ropeFreqBase ?? 10000)],
    ...(moe ? [[a('expert_count'), kv.u32(s.nExpert!)], [a('expert_used_count'), kv.u32(s.nExpertUsed!)]] as [string, GGUFKV][] : []),
    ['general.file_type', kv.u32(FILE_TYPE[o.type]!)],
    ...vocabKv,
    ['general.quantization_version', kv.u32(2)],
  ];

  // one RNG stream per tensor (seeded from the model seed and the tensor's index) so tensors
  // can be generated in any order and the bytes never depend on it
  const tensors: SynthTensorSpec[] = [];
  // (a fresh Rng on each call of data(): the same bytes however often the writer asks)
  const seeded = () => {
    const idx = tensors.length;
    return () => new Rng(o.seed * 1000003 + idx);
  };
  /** a weight matrix, or with `experts` a stack of them ([cols, rows, experts], as phimoe's *_exps) */
  const mat = (name: string, role: Role, layer: number, cols: number, rows: number, experts = 0) => {
    const type = tensorType(o.type, role, layer, s.nLayers);
    const rng = seeded();
    const n = cols * rows * Math.max(1, experts);
    const rms = weightRms(role, s);
    const shape = experts ? [cols, rows, experts] : [cols, rows];
    if (o.weights === 'trained') {
      const job: TrainedJob = { type, rows: rows * Math.max(1, experts), cols, rms, seed: o.seed * 1000003 + tensors.length };
      tensors.push({ name, type, shape, data: () => trainedTensor(type, job.rows, cols, rms, new Rng(job.seed)), job });
    } else tensors.push({ name, type, shape, data: () => randomTensor(type, n, rms, rng()) });
  };
  const norm = (name: string) => {
    const rng = seeded();
    tensors.push({ name, type: GGMLType.F32, shape: [s.dim], data: () => normWeights(s.dim, rng()) });
  };
  /** phimoe's biases (F32): small next to the values they shift */
  const bias = (name: string, n: number, rms: number) => {
    const rng = seeded();
    tensors.push({ name, type: GGMLType.F32, shape: [n], data: () => randomTensor(GGMLType.F32, n, rms, rng()) });
  };
  mat('token_embd.weight', 'token_embd', 0, s.dim, vocabSize);
  for (let l = 0; l < s.nLayers; l++) {
    const b = `blk.${l}`;
    norm(`${b}.attn_norm.weight`);
    if (moe) {
      // llama.cpp's phimoe: norms with biases, separate q/k/v with biases, a biased output projection
      bias(`${b}.attn_norm.bias`, s.dim, 0.1);
      mat(`${b}.attn_q.weight`, 'attn_q', l, s.dim, s.dim);
      bias(`${b}.attn_q.bias`, s.dim, 0.1);
      mat(`${b}.attn_k.weight`, 'attn_k', l, s.dim, kvDim);
      bias(`${b}.attn_k.bias`, kvDim, 0.1);
      mat(`${b}.attn_v.weight`, 'attn_v', l, s.dim, kvDim);
      bias(`${b}.attn_v.bias`, kvDim, 0.1);
      mat(`${b}.attn_output.weight`, 'attn_output', l, s.dim, s.dim);
      bias(`${b}.attn_output.bias`, s.dim, 0.05);
      norm(`${b}.ffn_norm.weight`);
      bias(`${b}.ffn_norm.bias`, s.dim, 0.1);
      mat(`${b}.ffn_gate_inp.weight`, 'ffn_gate_inp', l, s.dim, s.nExpert!);
      mat(`${b}.ffn_gate_exps.weight`, 'ffn_gate_exps', l, s.dim, s.hiddenDim, s.nExpert);
      mat(`${b}.ffn_up_exps.weight`, 'ffn_up_exps', l, s.dim, s.hiddenDim, s.nExpert);
      mat(`${b}.ffn_down_exps.weight`, 'ffn_down_exps', l, s.hiddenDim, s.dim, s.nExpert);
    } else {
      mat(`${b}.attn_qkv.weight`, 'attn_qkv', l, s.dim, s.dim + 2 * kvDim); // rows: q | k | v
      mat(`${b}.attn_output.weight`, 'attn_output', l, s.dim, s.dim);
      norm(`${b}.ffn_norm.weight`);
      mat(`${b}.ffn_up.weight`, 'ffn_up', l, s.dim, 2 * s.hiddenDim); // rows: gate | up
      mat(`${b}.ffn_down.weight`, 'ffn_down', l, s.hiddenDim, s.dim);
    }
  }
  norm('output_norm.weight');
  if (moe) bias('output_norm.bias', s.dim, 0.1);
  if (!s.tiedEmbeddings) mat('output.weight', 'output', 0, s.dim, vocabSize);
  if (moe) bias('output.bias', vocabSize, 0.5);
  if (longRope) {
    const [long, short] = longRopeFactors(ropeDim / 2, seeded()());
    tensors.push({ name: 'rope_factors_long.weight', type: GGMLType.F32, shape: [ropeDim / 2], data: () => new Uint8Array(long.buffer) });
    tensors.push({ name: 'rope_factors_short.weight', type: GGMLType.F32, shape: [ropeDim / 2], data: () => new Uint8Array(short.buffer) });
  }
  return { metadata, tensors };
}

export function writeSynth(path: string, o: SynthOptions): void {
  writeGguf(path, synthSpec(o));
}
