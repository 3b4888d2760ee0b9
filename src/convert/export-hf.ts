/**
 * `phi3 export-hf x.gguf --out folder`: a GGUF (arch phi3, F32/F16/BF16 weights) as a Hugging Face
 * Phi3ForCausalLM folder — config.json, generation_config.json, model.safetensors and the tokenizer
 * (tokenizer.model or tokenizer.json, tokenizer_config.json; src/hf/export-tokenizer.ts) — so that any
 * float GGUF can be run in transformers and its logits compared with ours (`phi3 compare`).
 *
 * The tensors are the GGUF's bytes unchanged (llama.cpp's phi3 converter does not permute q/k: both
 * use NEOX rope), under transformers' names. config.json says what the GGUF says: LongRoPE factors
 * become rope_scaling.long_factor/short_factor, rope.dimension_count becomes partial_rotary_factor,
 * a missing output.weight becomes tie_word_embeddings. `sliding_window` is written as null, because
 * llama.cpp (and phi3-ts by default) run Phi with full attention whatever the key says.
 * A phimoe GGUF (Phi-3.5-MoE) becomes a PhimoeForCausalLM folder in the released checkpoint's layout
 * (block_sparse_moe.experts.E.w1/w2/w3, one per expert; block_sparse_moe.gate), with the biases and
 * rope_scaling's short/long_mscale set to the file's attn_factor. transformers runs such a folder with
 * its own graph, which is not llama.cpp's (PHIMOE_GRAPH_DIFFERENCES): export-hf says so.
 * Quantized files and keys transformers cannot express are refused by name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GGUFFile } from '../gguf/reader.js';
import { openGguf } from '../gguf/file-source.js';
import { GGMLType, GGML_TYPES } from '../quant/ggml-type.js';
import { configFromGguf, type Phi3Config, UnsupportedModelError } from '../model/config.js';
import { longRopeAttnFactor } from '../synth/presets.js';
import { writeSafetensors, type SafetensorsEntry } from '../safetensors/safetensors.js';
import { exportTokenizer } from '../hf/export-tokenizer.js';
import { PHIMOE_GRAPH_DIFFERENCES } from '../hf/folder.js';

/** GGUF tensor name → transformers Phi3 name (per layer: `blk.N.` ↔ `model.layers.N.`) */
export const GGUF_TO_HF: Readonly<Record<string, string>> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
  'attn_norm.weight': 'input_layernorm.weight',
  'attn_qkv.weight': 'self_attn.qkv_proj.weight',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'ffn_up.weight': 'mlp.gate_up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};

/** phimoe (Phi-3.5-MoE): GGUF → transformers Phimoe names; the *_exps stacks become one tensor per expert */
export const PHIMOE_GGUF_TO_HF: Readonly<Record<string, string>> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output_norm.bias': 'model.norm.bias',
  'output.weight': 'lm_head.weight',
  'output.bias': 'lm_head.bias',
  'attn_norm.weight': 'input_layernorm.weight',
  'attn_norm.bias': 'input_layernorm.bias',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'attn_output.bias': 'self_attn.o_proj.bias',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'ffn_norm.bias': 'post_attention_layernorm.bias',
  'ffn_gate_inp.weight': 'block_sparse_moe.gate.weight',
  'ffn_gate_exps.weight': 'block_sparse_moe.experts.{E}.w1.weight',
  'ffn_down_exps.weight': 'block_sparse_moe.experts.{E}.w2.weight',
  'ffn_up_exps.weight': 'block_sparse_moe.experts.{E}.w3.weight',
};

export function hfName(ggufName: string, arch = 'phi3'): string | undefined {
  const names = arch === 'phimoe' ? PHIMOE_GGUF_TO_HF : GGUF_TO_HF;
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  if (m) {
    const hf = names[m[2]!];
    return hf && !hf.startsWith('model.') && !hf.startsWith('lm_head') ? `model.layers.${m[1]}.${hf}` : undefined;
  }
  return names[ggufName];
}

const DTYPE: Partial<Record<number, 'F32' | 'F16' | 'BF16'>> = { [GGMLType.F32]: 'F32', [GGMLType.F16]: 'F16', [GGMLType.BF16]: 'BF16' };
const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

/** config.json of transformers' Phi3ForCausalLM for this GGUF's hyper-parameters */
export function hfConfig(c: Phi3Config, f: GGUFFile, dtype: 'F32' | 'F16' | 'BF16'): Record<string, unknown> {
  const moe = c.arch === 'phimoe';
  const factors = (n: string) => {
    const t = f.tensor(n);
    if (!t) return undefined;
    const b = f.readTensor(t);
    return Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  };
  let rope_scaling: Record<string, unknown> | null = null;
  if (c.ropeFactors.long || c.ropeFactors.short) {
    const long = factors('rope_factors_long.weight'), short = factors('rope_factors_short.weight');
    if (!long || !short) throw new UnsupportedModelError(`${f.path}: transformers' LongRoPE needs both rope_factors_long.weight and rope_factors_short.weight; the file has only ${long ? 'long' : 'short'}`);
    rope_scaling = { type: 'longrope', long_factor: long, short_factor: short };
    if (moe) {
      // transformers' Phimoe scales cos and sin by short_mscale / long_mscale (both required): the file's factor
      rope_scaling.short_mscale = c.ropeAttnFactor;
      rope_scaling.long_mscale = c.ropeAttnFactor;
      rope_scaling.original_max_position_embeddings = c.originalContextLength;
    } else {
      // transformers computes √(1 + ln(s)/ln(original)) itself; a file that says otherwise gets it written
      const computed = longRopeAttnFactor(c.contextLength, c.originalContextLength);
      if (Math.abs(Math.fround(computed) - c.ropeAttnFactor) > 1e-6) rope_scaling.attention_factor = c.ropeAttnFactor;
    }
  } else if (c.ropeFreqScale !== 1) {
    rope_scaling = { type: 'linear', factor: 1 / c.ropeFreqScale };
  }
  if (!rope_scaling && c.ropeAttnFactor !== 1)
    throw new UnsupportedModelError(`${f.path}: ${c.arch}.rope.scaling.attn_factor ${c.ropeAttnFactor} without LongRoPE factors has no transformers Phi3 equivalent`);
  const id = (k: string) => f.optNumber(`tokenizer.ggml.${k}_token_id`);
  const name = f.optString('general.name');
  return {
    // general.name travels: llama.cpp gives Phi-3's special tokens rstrip when the name says phi3
    ...(name ? { _name_or_path: name } : {}),
    architectures: [moe ? 'PhimoeForCausalLM' : 'Phi3ForCausalLM'],
    model_type: moe ? 'phimoe' : 'phi3',
    vocab_size: c.vocabSize,
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    hidden_act: 'silu',
    max_position_embeddings: c.contextLength,
    original_max_position_embeddings: rope_scaling?.type === 'longrope' ? c.originalContextLength : c.contextLength,
    rms_norm_eps: c.rmsEps,
    rope_theta: c.ropeFreqBase,
    rope_scaling,
    partial_rotary_factor: c.ropeDim / c.headDim,
    sliding_window: null,
    tie_word_embeddings: c.tiedEmbeddings,
    attention_bias: moe,
    ...(moe
      ? {
          lm_head_bias: true,
          num_local_experts: c.nExpert,
          num_experts_per_tok: c.nExpertUsed,
          // Phi-3.5-MoE-instruct's values; in eval mode router_jitter_noise is sparsemixer's threshold
          router_jitter_noise: 0.01,
          input_jitter_noise: 0.01,
        }
      : {}),
    attention_dropout: 0,
    embd_pdrop: 0,
    resid_pdrop: 0,
    initializer_range: 0.02,
    use_cache: true,
    bos_token_id: id('bos') ?? null,
    eos_token_id: id('eos') ?? null,
    pad_token_id: id('padding') ?? null,
    torch_dtype: TORCH_DTYPE[dtype],
  };
}

export interface ExportResult {
  files: string[];
  tensors: number;
  dtype: string;
  /** what the user must know about the folder's meaning (phimoe: transformers' graph is not llama.cpp's) */
  warnings: string[];
}

export function exportHf(ggufPath: string, outDir: string): ExportResult {
  const f = openGguf(ggufPath);
  try {
    const c = configFromGguf(f);
    if (c.arch !== 'phi3' && c.arch !== 'phimoe') throw new UnsupportedModelError(`${ggufPath}: export-hf writes transformers' Phi3ForCausalLM and PhimoeForCausalLM; arch '${c.arch}' is not supported`);
    const entries: SafetensorsEntry[] = [];
    const dtypes = new Set<string>();
    for (const t of f.tensors) {
      if (t.name.startsWith('rope_factors_')) continue; // into config.json
      const name = hfName(t.name, c.arch);
      if (!name) throw new UnsupportedModelError(`${ggufPath}: tensor '${t.name}' has no transformers ${c.arch === 'phimoe' ? 'Phimoe' : 'Phi3'} counterpart`);
      const dtype = DTYPE[t.type];
      if (!dtype) throw new UnsupportedModelError(`${ggufPath}: export-hf needs F32, F16 or BF16 weights; '${t.name}' is ${GGML_TYPES.get(t.type)?.name ?? t.type}`);
      if (t.shape.length >= 2 && !t.name.endsWith('ffn_gate_inp.weight')) dtypes.add(dtype);
      const data = f.readTensor(t);
      if (t.shape.length === 3) {
        // a phimoe expert stack, ne [cols, rows, experts]: one [rows, cols] tensor per expert
        const [cols, rows, n] = t.shape as [number, number, number];
        const bytes = data.byteLength / n;
        for (let e = 0; e < n; e++) entries.push({ name: name.replace('{E}', String(e)), dtype, shape: [rows, cols], data: data.subarray(e * bytes, (e + 1) * bytes) });
        continue;
      }
      // ggml ne = [cols, rows] → torch shape [rows, cols]; 1-D stays
      entries.push({ name, dtype, shape: [...t.shape].reverse(), data });
    }
    const dtype = dtypes.size === 1 ? ([...dtypes][0] as 'F32' | 'F16' | 'BF16') : 'F32';
    fs.mkdirSync(outDir, { recursive: true });
    const config = hfConfig(c, f, dtype);
    const files = ['config.json', 'generation_config.json', 'model.safetensors'].map((n) => path.join(outDir, n));
    fs.writeFileSync(files[0]!, JSON.stringify(config, null, 2) + '\n');
    fs.writeFileSync(files[1]!, JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, pad_token_id: config.pad_token_id }, null, 2) + '\n');
    writeSafetensors(files[2]!, entries, { format: 'pt', source: `phi3-ts export-hf from ${path.basename(ggufPath)}` });
    files.push(...exportTokenizer(f, outDir));
    const warnings = c.arch === 'phimoe' ? [`${outDir}: transformers runs this folder with its own graph, not the GGUF's: ${PHIMOE_GRAPH_DIFFERENCES}`] : [];
    return { files, tensors: entries.length, dtype, warnings };
  } finally {
    f.close();
  }
}
