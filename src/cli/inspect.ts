/**
 * `phi3 inspect <file.gguf> [--json] [--ctx N]`: what a GGUF holds and what it needs to run.
 * Works on vocab-only files (no tensors) and on architectures we cannot run (it reports, not runs).
 */
import { openGguf } from '../gguf/file-source.js';
import { GGUFValueType } from '../gguf/types.js';
import { ggmlTypeName } from '../quant/ggml-type.js';
import type { VisionSummary } from '../vision/load.js';
import { configFromGguf, estimateMemory, ropeFactorSet, SUPPORTED_ARCHS, type ConfigWarning, type MemoryEstimate, type Phi3Config } from '../model/config.js';

export interface InspectReport {
  file: string;
  fileSize: number;
  ggufVersion: number;
  alignment: number;
  architecture: string;
  name: string | undefined;
  supported: boolean;
  hyperParameters: Phi3Config | undefined;
  tokenizer: {
    model: string | undefined;
    pre: string | undefined;
    /** the vocabulary has <|im_start|> and <|im_sep|>: without a template, Phi-4's chat format is used */
    hasPhi4Chat: boolean;
    nTokens: number;
    bos: number | undefined;
    eos: number | undefined;
    addBos: boolean | undefined;
    nControl: number;
    nByte: number;
  } | undefined;
  chatTemplate: string | undefined;
  tensors: { count: number; bytes: number; byType: Record<string, { count: number; bytes: number }> };
  memory: (MemoryEstimate & { ctx: number }) | undefined;
  /** what runs at that context: the LongRoPE factor set, and whether the sliding window applies */
  atCtx: { ctx: number; ropeFactors: 'long' | 'short' | 'none'; slidingWindow: 'none' | 'ignored' } | undefined;
  metadataKeys: number;
  /** keys neither llama.cpp nor phi3-ts reads for this architecture */
  warnings: ConfigWarning[];
  /** a Phi-3.5-vision folder's image side (vision/load.ts) */
  vision?: VisionSummary;
}

export function inspectGguf(path: string, ctx?: number): InspectReport {
  const f = openGguf(path);
  try {
    const arch = f.optString('general.architecture') ?? '';
    const byType: Record<string, { count: number; bytes: number }> = {};
    let bytes = 0;
    for (const t of f.tensors) {
      const n = ggmlTypeName(t.type);
      byType[n] ??= { count: 0, bytes: 0 };
      byType[n].count++;
      byType[n].bytes += t.byteSize;
      bytes += t.byteSize;
    }
    let hp: Phi3Config | undefined;
    const warnings: ConfigWarning[] = [];
    if (SUPPORTED_ARCHS.includes(arch)) hp = configFromGguf(f, warnings);
    let tokenizer: InspectReport['tokenizer'];
    if (f.has('tokenizer.ggml.tokens')) {
      const types = f.has('tokenizer.ggml.token_type') ? f.getArray('tokenizer.ggml.token_type') : undefined;
      const count = (v: number) => (types && types.itemType === GGUFValueType.INT32 ? (types.items as Int32Array).filter((x) => x === v).length : 0);
      tokenizer = {
        model: f.optString('tokenizer.ggml.model'),
        pre: f.optString('tokenizer.ggml.pre'),
        hasPhi4Chat: ['<|im_start|>', '<|im_sep|>'].every((x) => f.getStringArray('tokenizer.ggml.tokens').includes(x)),
        nTokens: f.getArray('tokenizer.ggml.tokens').items.length,
        bos: f.optNumber('tokenizer.ggml.bos_token_id'),
        eos: f.optNumber('tokenizer.ggml.eos_token_id'),
        addBos: f.optBool('tokenizer.ggml.add_bos_token'),
        nControl: count(3),
        nByte: count(6),
      };
    }
    const c = ctx ?? hp?.contextLength;
    return {
      file: path,
      fileSize: f.header.fileSize,
      ggufVersion: f.header.version,
      alignment: f.header.alignment,
      architecture: arch,
      name: f.optString('general.name'),
      supported: hp !== undefined && f.tensors.length > 0,
      hyperParameters: hp,
      tokenizer,
      chatTemplate: f.optString('tokenizer.chat_template'),
      tensors: { count: f.tensors.length, bytes, byType },
      memory: hp && c ? { ctx: c, ...estimateMemory(hp, bytes, c) } : undefined,
      atCtx: hp && c ? { ctx: c, ropeFactors: ropeFactorSet(hp, c), slidingWindow: hp.slidingWindow ? 'ignored' : 'none' } : undefined,
      metadataKeys: f.metadata.size,
      warnings,
    };
  } finally {
    f.close();
  }
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export function formatInspect(r: InspectReport): string {
  const L: string[] = [];
  L.push(`file          ${r.file} (${mib(r.fileSize)}, GGUF v${r.ggufVersion}, alignment ${r.alignment})`);
  L.push(`architecture  ${r.architecture}${r.supported ? '' : r.tensors.count === 0 ? '  (vocabulary only: no tensors)' : '  (not supported by phi3-ts)'}${r.name ? `  "${r.name}"` : ''}`);
  const h = r.hyperParameters;
  if (h) {
    L.push(`dims          dim ${h.dim}, hidden ${h.hiddenDim}, layers ${h.nLayers}, heads ${h.nHeads} (kv ${h.nKvHeads}), head ${h.headDim}, vocab ${h.vocabSize}`);
    if (h.nExpert > 0) L.push(`experts       ${h.nExpert} of hidden ${h.hiddenDim}, top-${h.nExpertUsed} softmax routing (renormalised), as llama.cpp's phimoe`);
    L.push(`rope          ${h.ropeDim} dims, base ${h.ropeFreqBase}; context ${h.contextLength} (original ${h.originalContextLength}); rms eps ${h.rmsEps}`);
    if (h.ropeFactors.long || h.ropeFactors.short || h.ropeAttnFactor !== 1)
      L.push(`LongRoPE      factors ${[h.ropeFactors.long && 'long', h.ropeFactors.short && 'short'].filter(Boolean).join(' + ')}, attn_factor ${h.ropeAttnFactor}`);
    if (h.ropeScalingType === 'linear' && h.ropeFreqScale !== 1) L.push(`rope scaling  linear, freq_scale ${h.ropeFreqScale}`);
    if (h.tiedEmbeddings) L.push('output        tied to token_embd');
    if (h.slidingWindow !== undefined)
      L.push(`sliding window ${h.slidingWindow}${h.slidingWindow ? ': ignored, as llama.cpp does for Phi (full attention)' : ' (none)'}`);
  }
  const t = r.tokenizer;
  if (t) L.push(`tokenizer     ${t.model}${t.pre && t.model === 'gpt2' ? ` (pre-tokenizer ${t.pre})` : ''} with ${t.nTokens} tokens (${t.nControl} control, ${t.nByte} byte); bos ${t.bos}, eos ${t.eos}, add_bos ${t.addBos}`);
  L.push(`chat template ${r.chatTemplate ? `${r.chatTemplate.length} chars: ${JSON.stringify(r.chatTemplate.slice(0, 60))}…` : r.tokenizer && r.tokenizer.hasPhi4Chat ? 'none (the Phi-4 <|im_start|>…<|im_sep|> format is used)' : 'none (the Phi-3 format is used)'}`);
  L.push(`tensors       ${r.tensors.count}, ${mib(r.tensors.bytes)}`);
  for (const [n, v] of Object.entries(r.tensors.byType).sort((a, b) => b[1].bytes - a[1].bytes))
    L.push(`  ${n.padEnd(6)} ${String(v.count).padStart(5)} tensors  ${mib(v.bytes).padStart(12)}`);
  const m = r.memory;
  const a = r.atCtx;
  if (a) L.push(`at ctx ${a.ctx}   rope factors: ${a.ropeFactors === 'none' ? 'none' : `${a.ropeFactors} (rope_factors_${a.ropeFactors}.weight)`}${a.slidingWindow === 'ignored' ? '; sliding window ignored' : ''}`);
  if (m) L.push(`memory @ctx ${m.ctx}: ${mib(m.totalBytes)} (weights ${mib(m.weightsBytes)} + f16 KV cache ${mib(m.kvCacheBytes)} + scratch ${mib(m.scratchBytes)})`);
  const v = r.vision;
  if (v)
    L.push(
      `vision        CLIP ViT ${v.image}² in ${v.patch}² patches: hidden ${v.hidden}, mlp ${v.intermediate}, heads ${v.heads}, ${v.layersRun} of ${v.layersInFile} layers run (layer_idx ${v.layerIdx}); HD ${v.order}, num_crops ${v.numCrops}; projection ${4 * v.hidden} → ${v.dim} → ${v.dim}; ${(v.params / 1e6).toFixed(1)} M params, F32 ${mib(v.params * 4)}`,
    );
  for (const w of r.warnings) L.push(`warning       ${w.message}`);
  return L.join('\n');
}
