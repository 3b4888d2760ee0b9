/**
 * `phi3 convert <hf-folder> --out x.gguf [--type auto|F32|F16|BF16|Q8_0|Q4_0|Q4_K_M|…]`: a Hugging Face
 * Phi3ForCausalLM folder as a GGUF with llama.cpp's tensor names and keys (those convert_hf_to_gguf.py
 * writes), through this project's own writer and quantizers. `phi3 run|logits|serve <hf-folder>` use
 * the same conversion once and keep the GGUF in a cache (see `cachedHfGguf`).
 *
 *   model.embed_tokens.weight                  → token_embd.weight
 *   model.layers.N.input_layernorm.weight      → blk.N.attn_norm.weight
 *   model.layers.N.self_attn.qkv_proj.weight   → blk.N.attn_qkv.weight   (q_proj, k_proj, v_proj are fused in that order)
 *   model.layers.N.self_attn.o_proj.weight     → blk.N.attn_output.weight
 *   model.layers.N.post_attention_layernorm    → blk.N.ffn_norm.weight
 *   model.layers.N.mlp.gate_up_proj.weight     → blk.N.ffn_up.weight      (gate_proj + up_proj are fused, gate first)
 *   model.layers.N.mlp.down_proj.weight        → blk.N.ffn_down.weight
 *   model.norm.weight                          → output_norm.weight
 *   lm_head.weight                             → output.weight            (absent when tie_word_embeddings)
 *   rope_scaling long_factor / short_factor    → rope_factors_long.weight / rope_factors_short.weight
 *
 * A PhimoeForCausalLM folder (Phi-3.5-MoE) becomes arch `phimoe`, as convert_hf_to_gguf.py's PhiMoeModel
 * writes it: q/k/v stay separate (attn_q/attn_k/attn_v, with their biases), every norm keeps its bias,
 * lm_head.bias → output.bias, block_sparse_moe.gate → ffn_gate_inp (always F32), and each layer's
 * experts block_sparse_moe.experts.E.w1 / w2 / w3 are stacked over E into ffn_gate_exps / ffn_down_exps /
 * ffn_up_exps (ggml ne [cols, rows, experts]). Such a file runs llama.cpp's phimoe graph, which is not
 * transformers' (PHIMOE_GRAPH_DIFFERENCES): `convert` says so, and `run <folder>` refuses the folder.
 *
 * `auto` keeps each matrix's stored type (F32, F16, BF16; F64 becomes F32); norms are always F32. A
 * quantized type uses llama-quantize's mix (Q4_K_M: Q6_K output and some ffn_down/attn_v, Q5_K qkv)
 * and its fallbacks for rows that are not a multiple of 256 (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HfFolder, HfFolderError, PHIMOE_GRAPH_DIFFERENCES, type HfTensor } from '../hf/folder.js';
import { kv, writeGguf, type GGUFSpec, type GGUFTensorSpec } from '../gguf/writer.js';
import { GGUFValueType, type GGUFKV } from '../gguf/types.js';
import { GGMLType, GGML_TYPES } from '../quant/ggml-type.js';
import { storeAs } from '../quant/quantize.js';
import { FILE_TYPE, tensorType, type Role } from '../synth/synth.js';
import { UnsupportedModelError } from '../model/config.js';

export const CONVERT_TYPES = ['auto', ...Object.keys(FILE_TYPE)];

/** HF names inside a layer → GGUF names inside blk.N */
const LAYER_NAMES: Readonly<Record<string, string>> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.qkv_proj.weight': 'attn_qkv.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};
const TOP_NAMES: Readonly<Record<string, string>> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};
const MOE_TOP_NAMES: Readonly<Record<string, string>> = { 'model.norm.bias': 'output_norm.bias', 'lm_head.bias': 'output.bias' };

/** rows of a 2-D tensor that llama-quantize cannot give a K-quant get this type instead */
const K_FALLBACK: Partial<Record<GGMLType, GGMLType>> = {
  [GGMLType.Q2_K]: GGMLType.Q4_0,
  [GGMLType.Q3_K]: GGMLType.Q4_0,
  [GGMLType.Q4_K]: GGMLType.Q5_0,
  [GGMLType.Q5_K]: GGMLType.Q5_1,
  [GGMLType.Q6_K]: GGMLType.Q8_0,
};

const STORED: Record<string, GGMLType> = { F32: GGMLType.F32, F64: GGMLType.F32, F16: GGMLType.F16, BF16: GGMLType.BF16 };

interface Source {
  /** HF tensors concatenated along rows (one, or gate + up), or with `stack` a phimoe layer's experts in order */
  parts: HfTensor[];
  stack?: boolean;
  gguf: string;
  role: Role | undefined;
  layer: number;
}

/** phimoe (Phi-3.5-MoE): HF names inside a layer → GGUF names inside blk.N (all unfused, with biases) */
const MOE_LAYER_NAMES: Readonly<Record<string, string>> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'input_layernorm.bias': 'attn_norm.bias',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.o_proj.bias': 'attn_output.bias',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'post_attention_layernorm.bias': 'ffn_norm.bias',
  'block_sparse_moe.gate.weight': 'ffn_gate_inp.weight',
};
/** phimoe experts: block_sparse_moe.experts.E.wK.weight, stacked over E (w1 gate, w2 down, w3 up) */
const MOE_EXPERTS: Readonly<Record<string, string>> = { w1: 'ffn_gate_exps', w2: 'ffn_down_exps', w3: 'ffn_up_exps' };

/** each GGUF tensor and the HF tensors it comes from; unknown names are refused */
function mapTensors(hf: HfFolder): Source[] {
  const out: Source[] = [];
  const c = hf.config, moe = c.moe;
  /** unfused projections, fused as Phi-3 stores them: [q; k; v] and [gate; up] */
  const FUSED: Record<string, [string, number]> = moe ? {} : {
    'self_attn.q_proj.weight': ['attn_qkv', 0], 'self_attn.k_proj.weight': ['attn_qkv', 1], 'self_attn.v_proj.weight': ['attn_qkv', 2],
    'mlp.gate_proj.weight': ['ffn_up', 0], 'mlp.up_proj.weight': ['ffn_up', 1],
  };
  const layerNames = moe ? MOE_LAYER_NAMES : LAYER_NAMES;
  const kind = moe ? 'PhimoeForCausalLM' : 'Phi3ForCausalLM';
  const fused = new Map<string, { layer: number; role: Role; parts: (HfTensor | undefined)[]; stack: boolean }>();
  for (const t of hf.tensors.values()) {
    const n = t.name;
    if (n.endsWith('.rotary_emb.inv_freq')) continue; // a buffer recomputed from config.json
    if (n === 'lm_head.weight' && c.tied) continue; // transformers ties it to the embedding
    if (c.vision && n.startsWith('model.vision_embed_tokens.')) continue; // Phi-3-vision's image side: read from the folder (vision/load.ts)
    const top = TOP_NAMES[n] ?? (moe ? MOE_TOP_NAMES[n] : undefined);
    if (top) {
      out.push({ parts: [t], gguf: top, role: top === 'token_embd.weight' ? (c.tied ? 'output' : 'token_embd') : top === 'output.weight' ? 'output' : undefined, layer: 0 });
      continue;
    }
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(n);
    if (m && Number(m[1]) < c.nLayers) {
      const layer = Number(m[1]);
      const fu = FUSED[m[2]!];
      const ex = moe ? /^block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight$/.exec(m[2]!) : null;
      if (fu || (ex && Number(ex[1]) < moe!.nExpert)) {
        const [g, at] = fu ?? [MOE_EXPERTS[ex![2]!]!, Number(ex![1])];
        const key = `blk.${layer}.${g}.weight`;
        const e = fused.get(key) ?? { layer, role: g as Role, parts: new Array(fu ? (g === 'attn_qkv' ? 3 : 2) : moe!.nExpert).fill(undefined), stack: !fu };
        e.parts[at] = t;
        fused.set(key, e);
        continue;
      }
      const g = layerNames[m[2]!];
      if (g) {
        out.push({ parts: [t], gguf: `blk.${layer}.${g}`, role: g.endsWith('norm.weight') || g.endsWith('.bias') ? undefined : (g.replace('.weight', '') as Role), layer });
        continue;
      }
      if (moe && /^mlp\.(experts|router)\./.test(m[2]!))
        throw new UnsupportedModelError(`${t.file.path}: tensor '${n}' is transformers 5's in-memory expert layout; phi3-ts reads Phi-3.5-MoE checkpoints as released (block_sparse_moe.experts.E.w1/w2/w3, block_sparse_moe.gate)`);
    }
    throw new UnsupportedModelError(`${t.file.path}: tensor '${n}' has no ${moe ? 'phimoe' : 'Phi-3'} GGUF counterpart (phi3-ts converts ${kind} weights only)`);
  }
  for (const [gguf, e] of fused) {
    const names = e.stack ? e.parts.map((_, i) => `expert ${i}`) : e.role === 'attn_qkv' ? ['q_proj', 'k_proj', 'v_proj'] : ['gate_proj', 'up_proj'];
    const missing = names.filter((_, i) => !e.parts[i]);
    if (missing.length) throw new UnsupportedModelError(`${hf.dir}: layer ${e.layer} has ${e.stack ? `${gguf} for ${names.length - missing.length} of ${names.length} experts` : names.filter((x) => !missing.includes(x)).join(', ')} but not ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', …' : ''}`);
    out.push({ parts: e.parts as HfTensor[], gguf, role: e.role, layer: e.layer, stack: e.stack });
  }
  const need = ['token_embd.weight', 'output_norm.weight', ...(c.tied ? [] : ['output.weight']), ...(moe ? Object.values(MOE_TOP_NAMES) : [])];
  const perLayer = moe ? [...Object.values(MOE_LAYER_NAMES), ...Object.values(MOE_EXPERTS).map((x) => `${x}.weight`)] : ['attn_norm', 'attn_output', 'ffn_norm', 'ffn_up', 'ffn_down', 'attn_qkv'].map((x) => `${x}.weight`);
  for (let l = 0; l < c.nLayers; l++) for (const s of perLayer) need.push(`blk.${l}.${s}`);
  const have = new Set(out.map((s) => s.gguf));
  const missing = need.filter((n) => !have.has(n));
  if (missing.length) throw new HfFolderError(`${hf.dir}: missing ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ` and ${missing.length - 4} more` : ''} (and no HF tensor that gives it)`);
  // llama.cpp's order: embedding, layers in order, output norm, output
  const rank = (s: Source) => (s.gguf.startsWith('token_embd') ? -1 : s.gguf.startsWith('blk.') ? s.layer : s.gguf.startsWith('output_norm.') ? 1e9 : 1e9 + 1);
  return out.sort((a, b) => rank(a) - rank(b));
}

/** the f32 values of a source (F16/BF16 widened exactly), rows concatenated */
function readF32(s: Source): Float32Array {
  if (s.parts.length === 1) return s.parts[0]!.file.readF32(s.parts[0]!.name);
  const rows = s.parts.map((p) => p.file.readF32(p.name));
  const out = new Float32Array(rows.reduce((a, r) => a + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

function shapeOf(s: Source, file: string): number[] {
  const shapes = s.parts.map((p) => p.info.shape);
  for (const sh of shapes) if (sh.length !== shapes[0]!.length || sh.slice(s.stack ? 0 : 1).join() !== shapes[0]!.slice(s.stack ? 0 : 1).join() || (s.stack && sh.length !== 2)) throw new HfFolderError(`${file}: '${s.parts.map((p) => p.name).join("' and '")}' have shapes ${shapes.map((x) => `[${x}]`).join(', ')} that cannot be fused`);
  // torch [rows, cols] → ggml ne [cols, rows]; experts stacked as torch.stack(dim=0): ne [cols, rows, experts]
  if (s.stack) return [...shapes[0]!].reverse().concat(shapes.length);
  const hf = [shapes.reduce((a, x) => a + x[0]!, 0), ...shapes[0]!.slice(1)];
  return hf.reverse();
}

export interface ConvertOptions {
  /** auto (keep stored float types) or a GGUF file type: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, … */
  type?: string;
  /** general.name (default: config.json's _name_or_path, else the folder's name). llama.cpp gives
   *  Phi-3's special tokens rstrip when this name contains "phi3" or "phi-3" */
  name?: string;
}

export interface ConvertPlan {
  spec: GGUFSpec;
  /** GGUF tensor → type, for the report; fallbacks named */
  types: Map<string, string>;
  fallbacks: string[];
  /** what the user must know about the file's meaning (phimoe: llama.cpp's graph is not transformers') */
  warnings: string[];
}

export function hfGgufSpec(hf: HfFolder, o: ConvertOptions = {}): ConvertPlan {
  const type = o.type ?? 'auto';
  if (!CONVERT_TYPES.includes(type)) throw new RangeError(`--type ${type} is not one of ${CONVERT_TYPES.join(', ')}`);
  const c = hf.config;
  const sources = mapTensors(hf);
  const v = hf.vocab();
  const types = new Map<string, string>();
  const fallbacks: string[] = [];
  const tensors: GGUFTensorSpec[] = [];
  if (c.longRope) {
    const f32 = (a: number[]) => new Uint8Array(Float32Array.from(a).buffer);
    tensors.push({ name: 'rope_factors_long.weight', type: GGMLType.F32, shape: [c.ropeDim / 2], data: f32(c.longRope.long) });
    tensors.push({ name: 'rope_factors_short.weight', type: GGMLType.F32, shape: [c.ropeDim / 2], data: f32(c.longRope.short) });
  }
  const stored = new Set<string>();
  for (const s of sources) {
    const dtype = s.parts[0]!.info.dtype;
    if (!(dtype in STORED) || s.parts.some((p) => p.info.dtype !== dtype))
      throw new UnsupportedModelError(`${s.parts[0]!.file.path}: tensor '${s.parts[0]!.name}' is ${s.parts.map((p) => p.info.dtype).join('/')}; phi3-ts converts F32, F16, BF16 and F64 weights`);
    const shape = shapeOf(s, s.parts[0]!.file.path);
    let t: GGMLType;
    // the router stays F32 whatever the type, as convert_hf_to_gguf and llama-quantize keep it
    if (shape.length === 1 || s.role === undefined || s.role === 'ffn_gate_inp') t = GGMLType.F32;
    else if (type === 'auto') {
      t = STORED[dtype]!;
      stored.add(GGML_TYPES.get(t)!.name);
    } else t = tensorType(type, s.role, s.layer, c.nLayers);
    const info = GGML_TYPES.get(t)!;
    if (shape[0]! % info.blockSize !== 0) {
      const fb = K_FALLBACK[t] ?? (info.blockSize > 1 ? GGMLType.F16 : undefined);
      if (fb === undefined || shape[0]! % GGML_TYPES.get(fb)!.blockSize !== 0) throw new UnsupportedModelError(`${s.gguf}: rows of ${shape[0]} cannot be stored as ${info.name}`);
      fallbacks.push(`${s.gguf}: rows of ${shape[0]} are not a multiple of ${info.blockSize}: ${GGML_TYPES.get(fb)!.name} instead of ${info.name}`);
      t = fb;
    }
    types.set(s.gguf, GGML_TYPES.get(t)!.name);
    const target = t;
    tensors.push({ name: s.gguf, type: target, shape, data: () => tensorBytes(s, target) });
  }
  const fileType = type === 'auto' ? (stored.size === 1 ? [...stored][0]! : stored.has('F16') ? 'F16' : 'F32') : type;
  const arch = c.moe ? 'phimoe' : 'phi3';
  const a = (k: string) => `${arch}.${k}`;
  const metadata: [string, GGUFKV][] = [
    ['general.architecture', kv.str(arch)],
    ['general.name', kv.str(o.name ?? c.name)],
    [a('context_length'), kv.u32(c.contextLength)],
    [a('rope.scaling.original_context_length'), kv.u32(c.originalContextLength)],
    [a('embedding_length'), kv.u32(c.dim)],
    [a('feed_forward_length'), kv.u32(c.hiddenDim)],
    [a('block_count'), kv.u32(c.nLayers)],
    [a('attention.head_count'), kv.u32(c.nHeads)],
    [a('attention.head_count_kv'), kv.u32(c.nKvHeads)],
    [a('attention.layer_norm_rms_epsilon'), kv.f32(c.rmsEps)],
    [a('rope.dimension_count'), kv.u32(c.ropeDim)],
    [a('rope.freq_base'), kv.f32(c.ropeTheta)],
    ['general.file_type', kv.u32(FILE_TYPE[fileType]!)],
    [a('attention.sliding_window'), kv.u32(c.slidingWindow)],
    ...(c.longRope ? [[a('rope.scaling.attn_factor'), kv.f32(c.longRope.attnFactor)] as [string, GGUFKV]] : []),
    ...(c.moe ? ([[a('expert_used_count'), kv.u32(c.moe.nExpertUsed)], [a('expert_count'), kv.u32(c.moe.nExpert)]] as [string, GGUFKV][]) : []),
    ['tokenizer.ggml.model', kv.str(v.model)],
    ['tokenizer.ggml.pre', kv.str(v.pre)],
    ['tokenizer.ggml.tokens', kv.arr(GGUFValueType.STRING, v.tokens)],
    ...(v.scores ? [['tokenizer.ggml.scores', kv.arr(GGUFValueType.FLOAT32, Float32Array.from(v.scores))] as [string, GGUFKV]] : []),
    ['tokenizer.ggml.token_type', kv.arr(GGUFValueType.INT32, Int32Array.from(v.types))],
    ...(v.merges ? [['tokenizer.ggml.merges', kv.arr(GGUFValueType.STRING, v.merges)] as [string, GGUFKV]] : []),
  ];
  const opt = (k: string, x: GGUFKV | undefined) => x !== undefined && metadata.push([k, x]);
  opt('tokenizer.ggml.add_space_prefix', v.addSpacePrefix === undefined ? undefined : kv.bool(v.addSpacePrefix));
  opt('tokenizer.ggml.bos_token_id', v.bos === undefined ? undefined : kv.u32(v.bos));
  opt('tokenizer.ggml.eos_token_id', v.eos === undefined ? undefined : kv.u32(v.eos));
  opt('tokenizer.ggml.unknown_token_id', v.unk === undefined ? undefined : kv.u32(v.unk));
  opt('tokenizer.ggml.padding_token_id', v.pad === undefined ? undefined : kv.u32(v.pad));
  opt('tokenizer.ggml.add_bos_token', v.addBos === undefined ? undefined : kv.bool(v.addBos));
  opt('tokenizer.ggml.add_eos_token', v.addEos === undefined ? undefined : kv.bool(v.addEos));
  opt('tokenizer.chat_template', v.chatTemplate === undefined ? undefined : kv.str(v.chatTemplate));
  metadata.push(['general.quantization_version', kv.u32(2)]);
  const warnings = c.moe ? [`${hf.dir}: the GGUF runs llama.cpp's phimoe graph, not the folder's: ${PHIMOE_GRAPH_DIFFERENCES}`] : [];
  return { spec: { metadata, tensors }, types, fallbacks, warnings };
}

/** a source's bytes as the GGUF type: raw when the stored type is kept, else through f32 */
function tensorBytes(s: Source, t: GGMLType): Uint8Array {
  const p = s.parts[0]!;
  if (s.parts.length === 1 && STORED[p.info.dtype] === t && p.info.dtype !== 'F64') return p.file.read(p.name);
  return storeAs(t, readF32(s));
}

export interface ConvertResult {
  out: string;
  tensors: number;
  bytes: number;
  types: Map<string, string>;
  fallbacks: string[];
  warnings: string[];
}

/** write the folder as a GGUF at `out` (through a temporary file, renamed when complete) */
export function convertHf(dir: string, out: string, o: ConvertOptions = {}): ConvertResult {
  const hf = HfFolder.open(dir);
  try {
    const plan = hfGgufSpec(hf, o);
    const tmp = `${out}.${process.pid}.partial`;
    try {
      writeGguf(tmp, plan.spec);
      fs.renameSync(tmp, out);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return { out, tensors: plan.spec.tensors.length, bytes: fs.statSync(out).size, types: plan.types, fallbacks: plan.fallbacks, warnings: plan.warnings };
  } finally {
    hf.close();
  }
}

/**
 * A folder whose transformers model computes something else than the GGUF phi3-ts would run for it is
 * not run as if it were that model: Phi-3.5-MoE (PHIMOE_GRAPH_DIFFERENCES). `phi3 convert` still makes
 * llama.cpp's GGUF of it, saying so.
 */
function refuseGraphMismatch(dir: string): void {
  let modelType: unknown;
  try {
    modelType = (JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { model_type?: unknown }).model_type;
  } catch {
    return; // HfFolder.open says what is wrong with config.json
  }
  if (modelType === 'phimoe')
    throw new UnsupportedModelError(`${dir}: a PhimoeForCausalLM folder is not run directly: ${PHIMOE_GRAPH_DIFFERENCES}. To run llama.cpp's graph on these weights, convert the folder first (phi3 convert ${dir} --out model.gguf)`);
}

/** is `p` a Hugging Face model folder (a directory with config.json)? */
export function isHfFolder(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory() && fs.existsSync(path.join(p, 'config.json'));
  } catch {
    return false;
  }
}

/** the default cache: $XDG_CACHE_HOME/phi3-ts or ~/.cache/phi3-ts */
export function defaultCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'phi3-ts');
}

/**
 * The GGUF for an HF folder, converted once into `cacheDir/hf/`: the file's name carries a hash of the
 * folder's JSON files, the names, sizes and modification times of its weights and tokenizer, and the
 * type, so that an edited folder is converted again. Returns the path and whether it was made now.
 */
export function cachedHfGguf(dir: string, o: ConvertOptions & { cacheDir?: string } = {}): { path: string; converted: boolean } {
  const type = o.type ?? 'auto';
  refuseGraphMismatch(dir);
  const h = crypto.createHash('sha256').update(`phi3-ts convert v1 ${type}\n`);
  for (const f of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    const st = fs.statSync(p);
    if (!st.isFile()) continue;
    if (f.endsWith('.json') || f.endsWith('.jinja')) h.update(`${f}\n`).update(fs.readFileSync(p));
    else if (f.endsWith('.safetensors') || f === 'tokenizer.model') h.update(`${f} ${st.size} ${st.mtimeMs}\n`);
  }
  const cache = path.join(o.cacheDir ?? defaultCacheDir(), 'hf');
  const out = path.join(cache, `${path.basename(path.resolve(dir)).replace(/[^\w.-]/g, '_')}-${type}-${h.digest('hex').slice(0, 16)}.gguf`);
  if (fs.existsSync(out)) return { path: out, converted: false };
  fs.mkdirSync(cache, { recursive: true });
  convertHf(dir, out, { type });
  return { path: out, converted: true };
}
