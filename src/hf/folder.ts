/**
 * A Hugging Face model folder, read directly: `config.json`, `model.safetensors` or the shards that
 * `model.safetensors.index.json` names, and the tokenizer (`tokenizer.model` or `tokenizer.json`, with
 * `tokenizer_config.json`, `added_tokens.json`, `special_tokens_map.json`, `chat_template.jinja`).
 *
 * What the folder says becomes GGUF metadata and tensors as llama.cpp's convert_hf_to_gguf.py writes
 * them for Phi3ForCausalLM (src/convert/convert-hf.ts assembles the file). Anything that would change
 * the model's output and that this runtime does not run is refused by name: another architecture, a
 * rope type other than default/longrope, biases, another activation, an unknown tensor, a tokenizer
 * whose normalizer or pre-tokenizer is not one of ours.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, type SafetensorsTensor } from '../safetensors/safetensors.js';
import { UnsupportedModelError } from '../model/config.js';
import { PieceType, readSentencePiece, MODEL_TYPES } from './sentencepiece.js';
import { hfPreTokenizer, bpeVocabFromTokenizerJson } from './tokenizer-json.js';

export class HfFolderError extends Error {
  override name = 'HfFolderError';
}

type Json = Record<string, unknown>;

function readJson(file: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new HfFolderError(`${file}: cannot read: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new HfFolderError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/** the Phi-3 hyper-parameters of config.json, in both transformers 4 (rope_theta, rope_scaling) and 5 (rope_parameters) spellings */
export interface HfPhi3Config {
  vocabSize: number;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  contextLength: number;
  originalContextLength: number;
  rmsEps: number;
  ropeTheta: number;
  ropeDim: number;
  /** LongRoPE: per-dimension factors and the attention factor */
  longRope: { long: number[]; short: number[]; attnFactor: number } | undefined;
  slidingWindow: number;
  tied: boolean;
  bos: number | undefined;
  eos: number | undefined;
  name: string;
  /** Phi3VForCausalLM: the image side (config.json img_processor, embd_layer), read by vision/load.ts */
  vision: { layerIdx: number; order: string } | undefined;
  /** PhimoeForCausalLM (Phi-3.5-MoE): the experts (GGUF arch phimoe) */
  moe: { nExpert: number; nExpertUsed: number } | undefined;
}

/**
 * What transformers' PhimoeForCausalLM computes and llama.cpp's phimoe graph (which phi3-ts runs) does
 * not: a GGUF converted from such a folder gives llama.cpp's answer, not transformers'.
 */
export const PHIMOE_GRAPH_DIFFERENCES =
  "transformers' PhimoeForCausalLM uses LayerNorm (mean-centred), sparsemixer routing and rope_scaling's short/long_mscale; " +
  "llama.cpp's phimoe graph, which phi3-ts runs, uses RMSNorm with the same weights and biases, softmax top-k routing renormalised, and √(1 + ln(s)/ln(original)) as the rope attention factor";

/** Phi-3-vision's image settings; what phi3-ts does not run is refused by name */
function visionConfig(cfg: Json, fail: (msg: string) => never): { layerIdx: number; order: string } {
  const ip = (cfg.img_processor ?? {}) as Json, el = (cfg.embd_layer ?? {}) as Json;
  if (ip.name !== undefined && ip.name !== 'clip_vision_model') fail(`img_processor.name '${String(ip.name)}' is not supported (clip_vision_model)`);
  if (ip.num_img_tokens !== undefined && ip.num_img_tokens !== 144) fail(`img_processor.num_img_tokens ${String(ip.num_img_tokens)} is not supported (144: 12×12 merged patches a crop)`);
  if (ip.type_feature !== undefined && ip.type_feature !== 'patch') fail(`img_processor.type_feature '${String(ip.type_feature)}' is not supported (patch)`);
  if (el.embedding_cls !== undefined && el.embedding_cls !== 'image') fail(`embd_layer.embedding_cls '${String(el.embedding_cls)}' is not supported (image)`);
  if (el.use_hd_transform === false || el.with_learnable_separator === false) fail('embd_layer without use_hd_transform and with_learnable_separator is not supported (Phi-3-vision has both)');
  if (el.projection_cls !== undefined && el.projection_cls !== 'mlp') fail(`embd_layer.projection_cls '${String(el.projection_cls)}' is not supported (mlp)`);
  const order = el.hd_transform_order ?? 'sub_glb';
  if (order !== 'sub_glb' && order !== 'glb_sub') fail(`embd_layer.hd_transform_order '${String(order)}' is not supported (sub_glb, glb_sub)`);
  const layerIdx = ip.layer_idx ?? -2;
  if (typeof layerIdx !== 'number' || !Number.isInteger(layerIdx) || layerIdx >= 0) fail(`img_processor.layer_idx ${String(layerIdx)} is not supported (a negative layer index; Phi-3-vision uses −2)`);
  return { layerIdx: layerIdx as number, order: order as string };
}

function moeConfig(int: (k: string, min?: number) => number, fail: (msg: string) => never): { nExpert: number; nExpertUsed: number } {
  const nExpert = int('num_local_experts');
  const nExpertUsed = int('num_experts_per_tok');
  if (nExpertUsed > nExpert) fail(`num_experts_per_tok ${nExpertUsed} is more than num_local_experts ${nExpert}`);
  return { nExpert, nExpertUsed };
}

export function parsePhi3Config(cfg: Json, file: string): HfPhi3Config {
  const fail = (msg: string): never => {
    throw new UnsupportedModelError(`${file}: ${msg}`);
  };
  const archs = (cfg.architectures as string[] | undefined) ?? [];
  // Phi3VForCausalLM (Phi-3-vision, Phi-3.5-vision): the text model's keys are config.json's own; the vision tower is vision/load.ts's
  const vision = cfg.model_type === 'phi3_v' && (!archs.length || archs.includes('Phi3VForCausalLM'));
  // Phi-3.5-MoE: Microsoft's config says PhiMoEForCausalLM, transformers' own class is PhimoeForCausalLM
  const moe = cfg.model_type === 'phimoe' && (!archs.length || archs.some((a) => a === 'PhiMoEForCausalLM' || a === 'PhimoeForCausalLM'));
  if (!vision && !moe && (cfg.model_type !== 'phi3' || (archs.length && !archs.includes('Phi3ForCausalLM'))))
    fail(`model_type '${String(cfg.model_type)}' (${archs.join(', ') || 'no architectures'}) is not supported: phi3-ts reads Phi3ForCausalLM folders (Phi-3, Phi-3.5-mini, Phi-4-mini), Phi3VForCausalLM (Phi-3.5-vision) and PhimoeForCausalLM (Phi-3.5-MoE)`);
  const int = (k: string, min = 1): number => {
    const v = cfg[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`${k} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const num = (v: unknown, k: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${k} must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  if ((cfg.hidden_act ?? 'silu') !== 'silu') fail(`hidden_act '${String(cfg.hidden_act)}' is not supported (Phi-3 uses silu)`);
  if (moe) {
    // llama.cpp's phimoe graph has a bias beside every attention projection and on the output
    for (const k of ['attention_bias', 'lm_head_bias']) if (cfg[k] !== true) fail(`${k}: ${JSON.stringify(cfg[k] ?? false)} is not supported (llama.cpp's phimoe, as Phi-3.5-MoE, has these biases: true)`);
    if (cfg.mlp_bias === true) fail('mlp_bias: true is not supported (Phi-3.5-MoE\'s experts have no biases)');
  } else for (const k of ['attention_bias', 'mlp_bias']) if (cfg[k] === true) fail(`${k}: true is not supported (Phi-3 has no biases)`);
  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = cfg.num_key_value_heads === undefined || cfg.num_key_value_heads === null ? nHeads : int('num_key_value_heads');
  if (dim % nHeads) fail(`hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads}`);
  if (nHeads % nKvHeads) fail(`num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`);
  // transformers 5 folds rope_theta, rope_scaling and partial_rotary_factor into rope_parameters
  const rp = (cfg.rope_parameters as Json | undefined) ?? {};
  const scaling = (cfg.rope_scaling as Json | null | undefined) ?? rp;
  const ropeType = String(scaling.rope_type ?? scaling.type ?? 'default').toLowerCase();
  const ropeTheta = num(rp.rope_theta ?? cfg.rope_theta ?? 10000, 'rope_theta');
  const partial = num(rp.partial_rotary_factor ?? cfg.partial_rotary_factor ?? 1, 'partial_rotary_factor');
  const headDim = dim / nHeads;
  const ropeDim = Math.floor((partial * dim) / nHeads);
  if (ropeDim % 2 || ropeDim < 2 || ropeDim > headDim) fail(`partial_rotary_factor ${partial} gives ${ropeDim} rotary dims of a ${headDim}-dim head (must be even and ≤ the head)`);
  const contextLength = int('max_position_embeddings');
  const original = cfg.original_max_position_embeddings ?? rp.original_max_position_embeddings ?? scaling.original_max_position_embeddings ?? contextLength;
  const originalContextLength = num(original, 'original_max_position_embeddings');
  let longRope: HfPhi3Config['longRope'];
  if (ropeType === 'longrope' || ropeType === 'su') {
    const f = (k: string): number[] => {
      const v = scaling[k];
      if (!Array.isArray(v) || v.length !== ropeDim / 2 || v.some((x) => typeof x !== 'number' || !(x > 0)))
        fail(`rope ${k} must be ${ropeDim / 2} positive numbers (rotary dims / 2), got ${Array.isArray(v) ? `${v.length} values` : JSON.stringify(v)}`);
      return v as number[];
    };
    const scale = contextLength / originalContextLength;
    const computed = scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(originalContextLength)) : 1;
    const given = scaling.attention_factor;
    longRope = { long: f('long_factor'), short: f('short_factor'), attnFactor: given === undefined || given === null ? computed : num(given, 'rope attention_factor') };
  } else if (ropeType !== 'default') fail(`rope type '${ropeType}' is not supported (phi3-ts runs default and longrope)`);
  const idOf = (k: string): number | undefined => {
    const v = cfg[k];
    if (Array.isArray(v)) return typeof v[0] === 'number' ? v[0] : undefined;
    return typeof v === 'number' ? v : undefined;
  };
  const sw = cfg.sliding_window;
  return {
    vocabSize: int('vocab_size'),
    dim,
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    contextLength,
    originalContextLength,
    rmsEps: num(cfg.rms_norm_eps ?? 1e-5, 'rms_norm_eps'),
    ropeTheta,
    ropeDim,
    longRope,
    // llama.cpp writes 0 for "none", which is how it tells Phi-4 apart
    slidingWindow: typeof sw === 'number' ? sw : 0,
    tied: cfg.tie_word_embeddings === true,
    bos: idOf('bos_token_id'),
    eos: idOf('eos_token_id'),
    name: typeof cfg._name_or_path === 'string' && cfg._name_or_path ? path.basename(cfg._name_or_path) : '',
    vision: vision ? visionConfig(cfg, fail) : undefined,
    moe: moe ? moeConfig(int, fail) : undefined,
  };
}

/** one tensor of the folder, in whichever shard holds it */
export interface HfTensor {
  name: string;
  file: SafetensorsFile;
  info: SafetensorsTensor;
}

/** llama.cpp's token types, as tokenizer.ggml.token_type holds them */
export interface HfVocab {
  model: 'llama' | 'gpt2';
  pre: string;
  tokens: string[];
  scores: number[] | undefined;
  types: number[];
  merges: string[] | undefined;
  addSpacePrefix: boolean | undefined;
  bos: number | undefined;
  eos: number | undefined;
  unk: number | undefined;
  pad: number | undefined;
  addBos: boolean | undefined;
  addEos: boolean | undefined;
  chatTemplate: string | undefined;
}

export class HfFolder {
  readonly config: HfPhi3Config;
  readonly tensors = new Map<string, HfTensor>();
  private readonly files: SafetensorsFile[] = [];

  private constructor(readonly dir: string) {
    const cfgFile = path.join(dir, 'config.json');
    if (!fs.existsSync(cfgFile)) throw new HfFolderError(`${dir}: no config.json: not a Hugging Face model folder`);
    this.config = parsePhi3Config(readJson(cfgFile), cfgFile);
    if (!this.config.name) this.config.name = path.basename(path.resolve(dir));
    try {
      this.openWeights();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  static open(dir: string): HfFolder {
    return new HfFolder(dir);
  }

  /** the shard files: model.safetensors, or those model.safetensors.index.json names (each opened once) */
  private openWeights(): void {
    const index = path.join(this.dir, 'model.safetensors.index.json');
    const single = path.join(this.dir, 'model.safetensors');
    let map: Map<string, string>; // tensor → shard
    if (fs.existsSync(index)) {
      const j = readJson(index);
      const wm = j.weight_map as Record<string, unknown> | undefined;
      if (!wm || typeof wm !== 'object') throw new HfFolderError(`${index}: no weight_map`);
      map = new Map();
      for (const [t, f] of Object.entries(wm)) {
        if (typeof f !== 'string' || f.includes('/') || f.includes('\\') || !f.endsWith('.safetensors')) throw new HfFolderError(`${index}: weight_map['${t}'] = ${JSON.stringify(f)} is not a .safetensors file in this folder`);
        map.set(t, f);
      }
    } else if (fs.existsSync(single)) map = new Map();
    else throw new HfFolderError(`${this.dir}: no model.safetensors and no model.safetensors.index.json (phi3-ts reads safetensors weights; .bin pickles are not read)`);
    const shards = map.size ? [...new Set(map.values())] : ['model.safetensors'];
    for (const s of shards) {
      const p = path.join(this.dir, s);
      if (!fs.existsSync(p)) throw new HfFolderError(`${this.dir}: shard ${s} is missing`);
      const f = SafetensorsFile.open(p);
      this.files.push(f);
      for (const [name, info] of f.tensors) {
        if (map.size && map.get(name) !== s) throw new HfFolderError(`${p}: tensor '${name}' is not listed for this shard in model.safetensors.index.json (it says ${map.get(name) ?? 'nothing'})`);
        if (this.tensors.has(name)) throw new HfFolderError(`${p}: tensor '${name}' is also in ${this.tensors.get(name)!.file.path}`);
        this.tensors.set(name, { name, file: f, info });
      }
    }
    for (const [t, s] of map) if (!this.tensors.has(t)) throw new HfFolderError(`${path.join(this.dir, s)}: has no tensor '${t}', which model.safetensors.index.json puts there`);
  }

  tensor(name: string): HfTensor | undefined {
    return this.tensors.get(name);
  }

  /** the folder's tokenizer as GGUF tokenizer.* values, as llama.cpp's converter reads it for Phi3ForCausalLM */
  vocab(): HfVocab {
    const d = this.dir;
    const cfgPath = path.join(d, 'tokenizer_config.json');
    const tc = fs.existsSync(cfgPath) ? readJson(cfgPath) : {};
    const tjPath = path.join(d, 'tokenizer.json');
    const tj = fs.existsSync(tjPath) ? readJson(tjPath) : undefined;
    const n = this.config.vocabSize;
    let v: HfVocab;
    if (tc.tokenizer_class === 'GPT2Tokenizer' || tc.tokenizer_class === 'GPT2TokenizerFast') {
      // Phi-4-mini: byte-level BPE from tokenizer.json
      if (!tj) throw new HfFolderError(`${d}: tokenizer_config.json says ${String(tc.tokenizer_class)} but there is no tokenizer.json`);
      const b = bpeVocabFromTokenizerJson(tj, tjPath, n);
      v = { model: 'gpt2', pre: hfPreTokenizer(tj, tjPath), tokens: b.tokens, scores: undefined, types: b.types, merges: b.merges, addSpacePrefix: undefined } as HfVocab;
    } else {
      const spPath = path.join(d, 'tokenizer.model');
      if (!fs.existsSync(spPath)) throw new HfFolderError(`${d}: no tokenizer.model (a Phi-3 SentencePiece tokenizer) and tokenizer_config.json does not name GPT2Tokenizer`);
      const sp = readSentencePiece(spPath);
      const modelType = MODEL_TYPES[sp.modelType as keyof typeof MODEL_TYPES] ?? String(sp.modelType);
      if (modelType !== 'bpe') throw new UnsupportedModelError(`${spPath}: trainer_spec.model_type ${modelType} is not supported (Phi-3's SentencePiece model is bpe)`);
      if (sp.normalizer.removeExtraWhitespaces) throw new UnsupportedModelError(`${spPath}: normalizer_spec.remove_extra_whitespaces is true, which llama.cpp's and phi3-ts's SPM tokenizers do not do`);
      if (sp.normalizer.charsmapBytes > 0 && sp.normalizer.name !== 'identity')
        throw new UnsupportedModelError(`${spPath}: normalizer '${sp.normalizer.name}' (${sp.normalizer.charsmapBytes}-byte precompiled_charsmap) is not supported: only identity normalization`);
      if (sp.pieces.length > n) throw new HfFolderError(`${spPath}: ${sp.pieces.length} pieces, more than config.json's vocab_size ${n}`);
      const tokens = Array.from({ length: n }, (_, i) => `[PAD${i}]`);
      const scores = new Array<number>(n).fill(-10000);
      const types = new Array<number>(n).fill(PieceType.UNUSED);
      sp.pieces.forEach((p, i) => {
        tokens[i] = p.piece;
        scores[i] = p.score;
        // llama.cpp asks IsUnknown, IsControl, IsUnused, IsByte; anything else (user-defined too) is normal
        types[i] = p.type === PieceType.UNKNOWN || p.type === PieceType.CONTROL || p.type === PieceType.UNUSED || p.type === PieceType.BYTE ? p.type : PieceType.NORMAL;
      });
      const added = (id: number, content: string, special: boolean | undefined, where: string) => {
        if (!Number.isInteger(id) || id < 0) throw new HfFolderError(`${where}: token id ${id} is not a valid id`);
        if (id >= n) return; // llama.cpp: out of range, ignored (config.json's vocab_size is the embedding's size)
        tokens[id] = content;
        scores[id] = -1000;
        types[id] = special ? PieceType.CONTROL : PieceType.USER_DEFINED;
      };
      const atPath = path.join(d, 'added_tokens.json');
      if (fs.existsSync(atPath)) for (const [k, id] of Object.entries(readJson(atPath))) added(Number(id), k, false, atPath);
      for (const [id, t] of Object.entries((tc.added_tokens_decoder as Record<string, Json> | undefined) ?? {})) added(Number(id), String(t.content), t.special === true, cfgPath);
      for (const t of (tj?.added_tokens as Json[] | undefined) ?? []) added(Number(t.id), String(t.content), t.special === true, tjPath);
      v = { model: 'llama', pre: 'default', tokens, scores, types, merges: undefined, addSpacePrefix: sp.normalizer.addDummyPrefix ? undefined : false } as HfVocab;
    }
    // special ids: tokenizer_config's *_token texts, else config.json's *_token_id (gguf-py's SpecialVocab)
    const idOfText = (k: string): number | undefined => {
      const t = tc[k];
      const text = typeof t === 'string' ? t : t && typeof t === 'object' ? (t as Json).content : undefined;
      if (typeof text !== 'string') return undefined;
      const i = v.tokens.indexOf(text);
      return i >= 0 ? i : undefined;
    };
    v.bos = idOfText('bos_token') ?? this.config.bos;
    v.eos = idOfText('eos_token') ?? this.config.eos;
    v.unk = idOfText('unk_token');
    v.pad = idOfText('pad_token');
    v.addBos = typeof tc.add_bos_token === 'boolean' ? tc.add_bos_token : undefined;
    v.addEos = typeof tc.add_eos_token === 'boolean' ? tc.add_eos_token : undefined;
    v.chatTemplate = chatTemplate(d, tc, cfgPath);
    return v;
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

/** tokenizer_config.json's chat_template (a string, or a list of {name, template}: the 'default' one), else chat_template.jinja */
function chatTemplate(dir: string, tc: Json, file: string): string | undefined {
  const t = tc.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const d = (t as Json[]).find((x) => x.name === 'default') ?? (t as Json[])[0];
    if (!d || typeof d.template !== 'string') throw new HfFolderError(`${file}: chat_template is a list without a 'default' template`);
    return d.template;
  }
  const jinja = path.join(dir, 'chat_template.jinja');
  return fs.existsSync(jinja) ? fs.readFileSync(jinja, 'utf8') : undefined;
}
