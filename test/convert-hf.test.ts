// Hugging Face folders: convert (HF → GGUF), export-hf (GGUF → HF) round trips, the SentencePiece
// and tokenizer.json readers, sharded checkpoints, transformers 5 configs, and refusals by name.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { GGUFFile } from '../src/gguf/reader.js';
import { openGguf } from '../src/gguf/file-source.js';
import { RefOps } from '../src/backend/ref/ops.js';
import { NUMERICS } from '../src/backend/numerics.js';
import { Phi3 } from '../src/model/phi3.js';
import { writeSynth, type SynthShape } from '../src/synth/synth.js';
import { SafetensorsFile, writeSafetensors, type SafetensorsEntry } from '../src/safetensors/safetensors.js';
import { exportHf } from '../src/convert/export-hf.js';
import { cachedHfGguf, convertHf } from '../src/convert/convert-hf.js';
import { parseSentencePiece, serializeSentencePiece, SentencePieceError, PieceType } from '../src/hf/sentencepiece.js';
import { SpmTokenizer } from '../src/tokenizer/spm.js';
import { loadModel } from '../src/api.js';
import { GPT2_VOCAB, PHI3_VOCAB, ROOT, tmpDir } from './helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const phi3 = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
const haveVocab = fs.existsSync(PHI3_VOCAB) && fs.existsSync(GPT2_VOCAB);
if (!haveVocab) console.warn(`convert-hf tests need ${PHI3_VOCAB} and ${GPT2_VOCAB}: the tokenizer round trips are skipped`);

const TOKENS = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889, 13, 32010, 29871];
/** Phi-3 shape in small: GQA 6/2, partial rotary 24/32, LongRoPE, tied */
const SHAPE: SynthShape = { dim: 192, hiddenDim: 512, nLayers: 2, nHeads: 6, nKvHeads: 2, ropeDim: 24, tiedEmbeddings: true, contextLength: 256, originalContextLength: 64 };

function logits(file: string, tokens = TOKENS): Float32Array[] {
  const f = openGguf(file);
  try {
    return Phi3.load(f, new RefOps(NUMERICS.exact), { ctx: 64, maxBatch: 64 }).forward(tokens, { allLogits: true });
  } finally {
    f.close();
  }
}

const arr = (f: GGUFFile, k: string) => Array.from((f.metadata.get(k)?.value as { items: ArrayLike<unknown> } | undefined)?.items ?? []);
const readCfg = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
const writeCfg = (d: string, c: unknown) => fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(c));
function copyDir(from: string, to: string): string {
  fs.cpSync(from, to, { recursive: true });
  return to;
}

describe.runIf(haveVocab)('convert: HF folder → GGUF (SentencePiece Phi-3 tokenizer)', () => {
  const dir = tmpDir();
  const gguf = path.join(dir, 'orig.gguf');
  writeSynth(gguf, { shape: SHAPE, type: 'F16', seed: 11, vocabFile: PHI3_VOCAB });
  const hf = path.join(dir, 'hf');
  exportHf(gguf, hf);
  const back = path.join(dir, 'back.gguf');
  convertHf(hf, back);

  it('export-hf then convert gives the same tensors, bytes, hyper-parameters and tokenizer (PAD fillers aside)', () => {
    const a = openGguf(gguf), b = openGguf(back);
    try {
      expect(b.tensors.map((t) => t.name).sort()).toEqual(a.tensors.map((t) => t.name).sort());
      for (const t of a.tensors) {
        const u = b.tensor(t.name)!;
        expect([u.type, u.shape], t.name).toEqual([t.type, t.shape]);
        expect(Buffer.from(b.readTensor(u)).equals(Buffer.from(a.readTensor(t))), t.name).toBe(true);
      }
      for (const k of ['context_length', 'embedding_length', 'feed_forward_length', 'block_count', 'attention.head_count', 'attention.head_count_kv', 'rope.dimension_count', 'rope.scaling.original_context_length'])
        expect(b.getNumber(`phi3.${k}`), k).toBe(a.getNumber(`phi3.${k}`));
      for (const k of ['rope.freq_base', 'rope.scaling.attn_factor', 'attention.layer_norm_rms_epsilon']) expect(b.getNumber(`phi3.${k}`), k).toBeCloseTo(a.getNumber(`phi3.${k}`), 6);
      expect(b.getStringArray('tokenizer.ggml.tokens')).toEqual(a.getStringArray('tokenizer.ggml.tokens'));
      const tokens = a.getStringArray('tokenizer.ggml.tokens');
      const pad = (i: number) => tokens[i] === `[PAD${i}]`;
      const [ta, tb, sa, sb] = [arr(a, 'tokenizer.ggml.token_type'), arr(b, 'tokenizer.ggml.token_type'), arr(a, 'tokenizer.ggml.scores'), arr(b, 'tokenizer.ggml.scores')];
      const differ = tokens.map((_, i) => i).filter((i) => ta[i] !== tb[i] || sa[i] !== sb[i]);
      // this vocabulary's fillers are typed 2 by an older converter; today's llama.cpp (and we) write 5 (unused)
      expect(differ.every(pad), `ids that differ: ${differ.filter((i) => !pad(i)).slice(0, 5)}`).toBe(true);
      for (const k of ['bos_token_id', 'eos_token_id', 'unknown_token_id', 'padding_token_id']) expect(b.optNumber(`tokenizer.ggml.${k}`), k).toBe(a.optNumber(`tokenizer.ggml.${k}`));
      expect(b.optBool('tokenizer.ggml.add_bos_token')).toBe(a.optBool('tokenizer.ggml.add_bos_token'));
      expect(b.optString('tokenizer.chat_template')).toBe(a.optString('tokenizer.chat_template'));
      const text = 'Hello world! <|user|>\nHow are you?<|end|> 123 ünïcödé  two  spaces';
      expect(new SpmTokenizer(b).encode(text, { parseSpecial: true })).toEqual(new SpmTokenizer(a).encode(text, { parseSpecial: true }));
    } finally {
      a.close();
      b.close();
    }
  });

  it('the converted file computes the same logits as the original', () => {
    const x = logits(gguf), y = logits(back);
    expect(y.map((r) => Array.from(r))).toEqual(x.map((r) => Array.from(r)));
  });

  it('reads shards with an index, transformers 5 rope_parameters, BF16, and unfused q/k/v and gate/up', () => {
    const d = copyDir(hf, path.join(dir, 'hf5'));
    const st = SafetensorsFile.open(path.join(d, 'model.safetensors'));
    const entries: SafetensorsEntry[] = [];
    const bf16 = (name: string, shape: number[], x: Float32Array): SafetensorsEntry => {
      const u = new Uint16Array(x.length);
      const v = new Uint32Array(x.buffer, x.byteOffset, x.length);
      for (let i = 0; i < x.length; i++) u[i] = v[i]! >>> 16; // exact: the values were cut to BF16 first
      return { name, dtype: 'BF16', shape, data: new Uint8Array(u.buffer) };
    };
    // make every value BF16-exact first, so that the reference GGUF can hold the same numbers as F32
    const exact = new Map<string, Float32Array>();
    const shapes = new Map<string, number[]>();
    for (const [name, t] of st.tensors) {
      const x = st.readF32(name);
      const v = new Uint32Array(x.buffer);
      for (let i = 0; i < v.length; i++) v[i] = v[i]! & 0xffff0000;
      exact.set(name, x);
      shapes.set(name, t.shape);
      const [rows, cols] = t.shape;
      if (name.endsWith('qkv_proj.weight')) {
        const q = SHAPE.dim, kv = (SHAPE.dim / SHAPE.nHeads) * SHAPE.nKvHeads;
        const base = name.replace('qkv_proj.weight', '');
        entries.push(bf16(`${base}q_proj.weight`, [q, cols!], x.subarray(0, q * cols!)));
        entries.push(bf16(`${base}k_proj.weight`, [kv, cols!], x.subarray(q * cols!, (q + kv) * cols!)));
        entries.push(bf16(`${base}v_proj.weight`, [kv, cols!], x.subarray((q + kv) * cols!)));
      } else if (name.endsWith('gate_up_proj.weight')) {
        const base = name.replace('gate_up_proj.weight', '');
        entries.push(bf16(`${base}gate_proj.weight`, [rows! / 2, cols!], x.subarray(0, (rows! / 2) * cols!)));
        entries.push(bf16(`${base}up_proj.weight`, [rows! / 2, cols!], x.subarray((rows! / 2) * cols!)));
      } else entries.push(bf16(name, t.shape, x));
    }
    st.close();
    fs.rmSync(path.join(d, 'model.safetensors'));
    const half = Math.ceil(entries.length / 2);
    const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    writeSafetensors(path.join(d, shards[0]!), entries.slice(0, half), { format: 'pt' });
    writeSafetensors(path.join(d, shards[1]!), entries.slice(half), { format: 'pt' });
    const weight_map = Object.fromEntries(entries.map((e, i) => [e.name, shards[i < half ? 0 : 1]]));
    fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map }));
    const c = readCfg(d);
    c.rope_parameters = { rope_type: 'longrope', rope_theta: c.rope_theta, partial_rotary_factor: c.partial_rotary_factor, long_factor: c.rope_scaling.long_factor, short_factor: c.rope_scaling.short_factor, original_max_position_embeddings: c.original_max_position_embeddings };
    for (const k of ['rope_theta', 'rope_scaling', 'partial_rotary_factor', 'original_max_position_embeddings']) delete c[k];
    writeCfg(d, c);
    const out = path.join(dir, 'hf5.gguf');
    const r = convertHf(d, out);
    expect(new Set(r.types.values())).toEqual(new Set(['BF16', 'F32']));
    // the reference: the original folder with the same BF16-exact values stored as F32
    const ref = copyDir(hf, path.join(dir, 'hf-f32'));
    writeSafetensors(path.join(ref, 'model.safetensors'), [...exact].map(([name, x]) => ({ name, dtype: 'F32', shape: shapes.get(name)!, data: new Uint8Array(x.buffer) })));
    const refOut = path.join(dir, 'hf-f32.gguf');
    convertHf(ref, refOut);
    const x = logits(refOut), y = logits(out);
    let worst = 0;
    x.forEach((row, p) => row.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - y[p]![k]!)))));
    expect(worst, 'fused and unfused, BF16 and F32 of the same values: the same model').toBeLessThan(1e-4);
  });

  it('quantizes on conversion with llama-quantize\'s mix (Q4_K_M: Q6_K for the tied embedding, Q5_K for qkv)', () => {
    const out = path.join(dir, 'q4km.gguf');
    const r = convertHf(hf, out, { type: 'Q4_K_M' });
    expect(r.fallbacks.length).toBeGreaterThan(0); // dim 192 rows are not a multiple of 256
    const f = openGguf(out);
    try {
      expect(f.getNumber('general.file_type')).toBe(15);
      const x = logits(gguf), y = logits(out);
      let agree = 0;
      x.forEach((row, p) => (agree += Number(row.indexOf(Math.max(...row)) === y[p]!.indexOf(Math.max(...y[p]!)))));
      expect(agree / x.length).toBeGreaterThan(0.5);
    } finally {
      f.close();
    }
  });

  it('run, logits and the library take the folder itself, converted once into the cache', async () => {
    const cache = tmpDir();
    const a = cachedHfGguf(hf, { cacheDir: cache });
    expect(a.converted).toBe(true);
    expect(cachedHfGguf(hf, { cacheDir: cache })).toEqual({ path: a.path, converted: false });
    const m = await loadModel(hf, { cacheDir: cache, backend: 'ref', ctx: 64 });
    try {
      expect(m.config.nLayers).toBe(2);
    } finally {
      await m.close();
    }
    const r = phi3(['run', hf, '-p', 'Hello', '-n', '3', '--temp', '0', '--type', 'Q8_0'], { XDG_CACHE_HOME: cache });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/converted the Hugging Face folder .* \(kept for next time\)/);
    const again = phi3(['run', hf, '-p', 'Hello', '-n', '3', '--temp', '0', '--type', 'Q8_0'], { XDG_CACHE_HOME: cache });
    expect(again.stderr).not.toMatch(/converted/);
    expect(again.stdout).toBe(r.stdout);
  });
});

describe.runIf(haveVocab)('convert: byte-level BPE (Phi-4-mini tokenizer.json)', () => {
  it('export-hf writes tokenizer.json; convert reads back the same tokens, types, merges and pre-tokenizer', () => {
    const dir = tmpDir();
    const gguf = path.join(dir, 'p4.gguf');
    writeSynth(gguf, { shape: { ...SHAPE, tokenizerPre: 'gpt-4o' }, type: 'F32', seed: 3, vocabFile: GPT2_VOCAB, pre: 'gpt-4o' });
    exportHf(gguf, path.join(dir, 'hf'));
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'hf', 'tokenizer_config.json'), 'utf8')).tokenizer_class).toBe('GPT2Tokenizer');
    convertHf(path.join(dir, 'hf'), path.join(dir, 'back.gguf'));
    const a = openGguf(gguf), b = openGguf(path.join(dir, 'back.gguf'));
    try {
      expect(b.optString('tokenizer.ggml.pre')).toBe('gpt-4o');
      for (const k of ['tokenizer.ggml.tokens', 'tokenizer.ggml.merges']) expect(b.getStringArray(k), k).toEqual(a.getStringArray(k));
      expect(arr(b, 'tokenizer.ggml.token_type')).toEqual(arr(a, 'tokenizer.ggml.token_type'));
      const text = "Hello World's 12345 <|endoftext|> ünïcödé\n\n  x";
      expect(new SpmTokenizer(b).encode(text, { parseSpecial: true })).toEqual(new SpmTokenizer(a).encode(text, { parseSpecial: true }));
      expect(logits(path.join(dir, 'back.gguf'), [1, 2, 3, 4]).map((r) => Array.from(r))).toEqual(logits(gguf, [1, 2, 3, 4]).map((r) => Array.from(r)));
    } finally {
      a.close();
      b.close();
    }
  });
});

describe.runIf(haveVocab)('convert: Phi-3.5-MoE (PhimoeForCausalLM ↔ GGUF arch phimoe)', () => {
  const dir = tmpDir();
  // 4 experts, top-2, GQA 4:1, LongRoPE 256/64, biases everywhere: phimoe-tiny's features, smaller
  const MOE: SynthShape = { arch: 'phimoe', nExpert: 4, nExpertUsed: 2, dim: 128, hiddenDim: 256, nLayers: 2, nHeads: 4, nKvHeads: 1, contextLength: 256, originalContextLength: 64 };
  const gguf = path.join(dir, 'moe.gguf');
  writeSynth(gguf, { shape: MOE, type: 'F16', seed: 5, vocabFile: PHI3_VOCAB });
  const hf = path.join(dir, 'hf');
  const exported = exportHf(gguf, hf);
  const back = path.join(dir, 'back.gguf');
  const converted = convertHf(hf, back);

  it('export-hf writes the released checkpoint layout: one w1/w2/w3 per expert, the router, the biases, mscale', () => {
    const c = readCfg(hf);
    expect([c.model_type, c.architectures, c.num_local_experts, c.num_experts_per_tok, c.attention_bias, c.lm_head_bias]).toEqual(['phimoe', ['PhimoeForCausalLM'], 4, 2, true, true]);
    const f = openGguf(gguf);
    try {
      expect(c.rope_scaling.short_mscale).toBeCloseTo(f.getNumber('phimoe.rope.scaling.attn_factor'), 6);
      expect(c.rope_scaling.long_mscale).toBe(c.rope_scaling.short_mscale);
      const st = SafetensorsFile.open(path.join(hf, 'model.safetensors'));
      try {
        const stack = f.tensor('blk.1.ffn_down_exps.weight')!;
        const [cols, rows] = stack.shape;
        const all = f.readTensor(stack), per = all.byteLength / 4;
        for (let e = 0; e < 4; e++) {
          const name = `model.layers.1.block_sparse_moe.experts.${e}.w2.weight`;
          expect(st.tensor(name).shape, name).toEqual([rows, cols]);
          expect(Buffer.from(st.read(name)).equals(Buffer.from(all.subarray(e * per, (e + 1) * per))), name).toBe(true);
        }
        for (const n of ['model.layers.0.block_sparse_moe.gate.weight', 'model.layers.0.self_attn.k_proj.bias', 'model.layers.0.input_layernorm.bias', 'model.norm.bias', 'lm_head.bias']) expect(st.tensors.has(n), n).toBe(true);
        expect(st.tensor('model.layers.0.block_sparse_moe.gate.weight').dtype).toBe('F32');
      } finally {
        st.close();
      }
    } finally {
      f.close();
    }
    // transformers' Phimoe is not llama.cpp's graph: both directions say so
    expect(exported.warnings.join()).toMatch(/LayerNorm.*sparsemixer.*mscale/);
    expect(converted.warnings.join()).toMatch(/llama\.cpp's phimoe graph, not the folder's/);
  });

  it('convert gives back the same tensors, bytes and phimoe.* keys, and the same logits', () => {
    const a = openGguf(gguf), b = openGguf(back);
    try {
      expect(b.getString('general.architecture')).toBe('phimoe');
      expect(b.tensors.map((t) => t.name).sort()).toEqual(a.tensors.map((t) => t.name).sort());
      for (const t of a.tensors) {
        const u = b.tensor(t.name)!;
        expect([u.type, u.shape], t.name).toEqual([t.type, t.shape]);
        expect(Buffer.from(b.readTensor(u)).equals(Buffer.from(a.readTensor(t))), t.name).toBe(true);
      }
      for (const k of ['expert_count', 'expert_used_count', 'context_length', 'embedding_length', 'feed_forward_length', 'block_count', 'attention.head_count', 'attention.head_count_kv', 'rope.dimension_count', 'rope.scaling.original_context_length'])
        expect(b.getNumber(`phimoe.${k}`), k).toBe(a.getNumber(`phimoe.${k}`));
      for (const k of ['rope.freq_base', 'rope.scaling.attn_factor', 'attention.layer_norm_rms_epsilon']) expect(b.getNumber(`phimoe.${k}`), k).toBeCloseTo(a.getNumber(`phimoe.${k}`), 6);
    } finally {
      a.close();
      b.close();
    }
    const x = logits(gguf), y = logits(back);
    expect(y.map((r) => Array.from(r))).toEqual(x.map((r) => Array.from(r)));
  });

  it('quantizes the experts with the mix and keeps the router F32', () => {
    const out = path.join(dir, 'q8.gguf');
    const r = convertHf(hf, out, { type: 'Q8_0' });
    expect(r.types.get('blk.0.ffn_gate_inp.weight')).toBe('F32');
    expect(r.types.get('blk.0.ffn_up_exps.weight')).toBe('Q8_0');
    expect(r.types.get('blk.1.attn_q.bias')).toBe('F32');
    const x = logits(gguf), y = logits(out);
    let agree = 0;
    x.forEach((row, p) => (agree += Number(row.indexOf(Math.max(...row)) === y[p]!.indexOf(Math.max(...y[p]!)))));
    expect(agree / x.length).toBeGreaterThan(0.5);
  });

  it('run and the library refuse the folder itself, naming the graph differences; convert is the way', async () => {
    await expect(loadModel(hf, { cacheDir: tmpDir(), backend: 'ref', ctx: 64 })).rejects.toThrow(/PhimoeForCausalLM folder is not run directly: .*LayerNorm.*phi3 convert/);
    const r = phi3(['run', hf, '-p', 'Hello', '-n', '2'], { XDG_CACHE_HOME: tmpDir() });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/not run directly/);
    const c = phi3(['convert', hf, '--out', path.join(dir, 'cli.gguf')]);
    expect(c.status, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/llama\.cpp's phimoe graph, not the folder's/);
  });

  it('refuses, by name: a missing expert, missing biases, transformers 5\'s fused expert layout', () => {
    let n = 0;
    const variant = (edit: (entries: SafetensorsEntry[], cfg: Record<string, unknown>) => SafetensorsEntry[]) => {
      const d = copyDir(hf, path.join(dir, `v${n++}`));
      const st = SafetensorsFile.open(path.join(d, 'model.safetensors'));
      const entries = [...st.tensors.keys()].map((name) => ({ name, dtype: st.tensor(name).dtype, shape: st.tensor(name).shape, data: st.read(name) }) as SafetensorsEntry);
      st.close();
      const cfg = readCfg(d);
      writeSafetensors(path.join(d, 'model.safetensors'), edit(entries, cfg));
      writeCfg(d, cfg);
      return d;
    };
    const refuse = (d: string, re: RegExp) => expect(() => convertHf(d, path.join(dir, `out${n}.gguf`))).toThrow(re);
    refuse(variant((e) => e.filter((t) => t.name !== 'model.layers.1.block_sparse_moe.experts.2.w3.weight')), /layer 1 has blk\.1\.ffn_up_exps\.weight for 3 of 4 experts but not expert 2/);
    refuse(variant((e) => e.filter((t) => t.name !== 'lm_head.bias')), /missing output\.bias/);
    refuse(variant((e, c) => ((c.attention_bias = false), e)), /attention_bias: false is not supported/);
    refuse(variant((e, c) => ((c.num_experts_per_tok = 5), e)), /num_experts_per_tok 5 is more than num_local_experts 4/);
    refuse(
      variant((e) => [...e.filter((t) => !t.name.includes('.experts.')), { name: 'model.layers.0.mlp.experts.gate_up_proj', dtype: 'F32', shape: [4, 512, 128], data: new Uint8Array(4 * 512 * 128 * 4) }]),
      /transformers 5's in-memory expert layout/,
    );
  });
});

describe('SentencePiece tokenizer.model', () => {
  it('round-trips pieces, scores, types and the normalizer flags', () => {
    const m = {
      pieces: [
        { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
        { piece: '<s>', score: 0, type: PieceType.CONTROL },
        { piece: '<0x0A>', score: 0, type: PieceType.BYTE },
        { piece: '▁the', score: -1.5, type: PieceType.NORMAL },
        { piece: 'ü', score: -3.25, type: PieceType.NORMAL },
      ],
      modelType: 2,
      byteFallback: true,
      normalizer: { name: 'identity', charsmapBytes: 0, addDummyPrefix: false, removeExtraWhitespaces: false, escapeWhitespaces: true },
    };
    expect(parseSentencePiece(serializeSentencePiece(m))).toEqual(m);
  });
  it('refuses truncated and malformed files with the offset and the field', () => {
    const good = serializeSentencePiece({ pieces: [{ piece: 'a', score: 0, type: PieceType.NORMAL }], modelType: 2, byteFallback: false, normalizer: { name: 'identity', charsmapBytes: 0, addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true } });
    expect(() => parseSentencePiece(good.subarray(0, 5), 'x.model')).toThrow(SentencePieceError);
    expect(() => parseSentencePiece(good.subarray(0, 5), 'x.model')).toThrow(/x\.model: offset \d+: .*(runs past|truncated)/);
    expect(() => parseSentencePiece(Uint8Array.of(0x3b), 'y.model')).toThrow(/wire type 3 is not valid/);
    expect(() => parseSentencePiece(Uint8Array.of(0x0a, 0x02, 0x18, 0x09), 'z.model')).toThrow(/pieces\[0\]: type 9 is not a sentencepiece piece type/);
    expect(() => parseSentencePiece(new Uint8Array(0), 'e.model')).toThrow(/no pieces/);
  });
});

describe.runIf(haveVocab)('convert refuses what it does not run, by name', () => {
  const dir = tmpDir();
  const gguf = path.join(dir, 'small.gguf');
  writeSynth(gguf, { shape: { dim: 64, hiddenDim: 128, nLayers: 1, nHeads: 2, nKvHeads: 2, contextLength: 64 }, type: 'F32', seed: 2, vocabFile: PHI3_VOCAB });
  const hf = path.join(dir, 'hf');
  exportHf(gguf, hf);
  let n = 0;
  const variant = (edit: (d: string) => void) => {
    const d = copyDir(hf, path.join(dir, `v${n++}`));
    edit(d);
    return d;
  };
  const refuse = (d: string, re: RegExp) => expect(() => convertHf(d, path.join(dir, `out${n}.gguf`))).toThrow(re);
  it('another architecture, rope type, activation or biases (config.json)', () => {
    refuse(variant((d) => writeCfg(d, { ...readCfg(d), model_type: 'phi3small', architectures: ['Phi3SmallForCausalLM'] })), /model_type 'phi3small' \(Phi3SmallForCausalLM\) is not supported/);
    refuse(variant((d) => writeCfg(d, { ...readCfg(d), model_type: 'phimoe', architectures: ['PhiMoEForCausalLM'], num_local_experts: 4, num_experts_per_tok: 2 })), /attention_bias: false is not supported \(llama\.cpp's phimoe/);
    refuse(variant((d) => writeCfg(d, { ...readCfg(d), rope_scaling: { type: 'yarn', factor: 4 } })), /rope type 'yarn' is not supported/);
    refuse(variant((d) => writeCfg(d, { ...readCfg(d), hidden_act: 'gelu' })), /hidden_act 'gelu' is not supported/);
    refuse(variant((d) => writeCfg(d, { ...readCfg(d), attention_bias: true })), /attention_bias: true is not supported/);
    refuse(variant((d) => fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": ')), /config\.json: not valid JSON/);
  });
  it('an unknown tensor, a missing one, a shard the index does not match', () => {
    refuse(
      variant((d) => {
        const st = SafetensorsFile.open(path.join(d, 'model.safetensors'));
        const entries = [...st.tensors.keys()].map((name) => ({ name, dtype: st.tensor(name).dtype, shape: st.tensor(name).shape, data: st.read(name) }));
        st.close();
        writeSafetensors(path.join(d, 'model.safetensors'), [...entries, { name: 'model.layers.0.self_attn.q_norm.weight', dtype: 'F32', shape: [2], data: new Uint8Array(8) }]);
      }),
      /tensor 'model\.layers\.0\.self_attn\.q_norm\.weight' has no Phi-3 GGUF counterpart/,
    );
    refuse(
      variant((d) => {
        const st = SafetensorsFile.open(path.join(d, 'model.safetensors'));
        const entries = [...st.tensors.keys()].filter((x) => !x.includes('down_proj')).map((name) => ({ name, dtype: st.tensor(name).dtype, shape: st.tensor(name).shape, data: st.read(name) }));
        st.close();
        writeSafetensors(path.join(d, 'model.safetensors'), entries);
      }),
      /missing blk\.0\.ffn_down\.weight/,
    );
    refuse(
      variant((d) => fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.norm.weight': 'model-00002-of-00002.safetensors' } }))),
      /shard model-00002-of-00002\.safetensors is missing/,
    );
    refuse(
      variant((d) => fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.norm.weight': '../x.safetensors' } }))),
      /is not a \.safetensors file in this folder/,
    );
  });
  it('a tokenizer it cannot reproduce: no tokenizer at all, a unigram model, whitespace folding', () => {
    refuse(variant((d) => fs.rmSync(path.join(d, 'tokenizer.model'))), /no tokenizer\.model/);
    const edit = (mut: (m: ReturnType<typeof parseSentencePiece>) => void) => (d: string) => {
      const m = parseSentencePiece(new Uint8Array(fs.readFileSync(path.join(d, 'tokenizer.model'))));
      mut(m);
      fs.writeFileSync(path.join(d, 'tokenizer.model'), serializeSentencePiece(m));
    };
    refuse(variant(edit((m) => (m.modelType = 1))), /model_type unigram is not supported/);
    refuse(variant(edit((m) => (m.normalizer.removeExtraWhitespaces = true))), /remove_extra_whitespaces is true/);
  });
  it('CLI: one line, exit 1 for a bad folder; exit 2 for --type on a GGUF', () => {
    const bad = variant((d) => writeCfg(d, { ...readCfg(d), rope_scaling: { type: 'dynamic', factor: 2 } }));
    const r = phi3(['convert', bad, '--out', path.join(dir, 'x.gguf')]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/rope type 'dynamic' is not supported/);
    expect(fs.existsSync(path.join(dir, 'x.gguf'))).toBe(false);
    const t = phi3(['run', gguf, '-p', 'x', '--type', 'Q8_0']);
    expect(t.status).toBe(2);
    expect(t.stderr).toMatch(/--type applies to a Hugging Face folder/);
  });
});
