// Every phi3.* key llama.cpp reads is honoured or refused by name; tensors outside the graph, wrong
// tensor types and hyper-parameters out of range are refused before anything is sized by them.
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { GGUFFile } from '../src/gguf/reader.js';
import { openGguf } from '../src/gguf/file-source.js';
import { GgufError, GGUFValueType, type GGUFKV } from '../src/gguf/types.js';
import { kv, writeGguf } from '../src/gguf/writer.js';
import { GGMLType, GGML_TYPES } from '../src/quant/ggml-type.js';
import { configFromGguf, HONOURED_ARCH_KEYS, REFUSED_ARCH_KEYS, UnsupportedModelError, validateTensors } from '../src/model/config.js';
import { synthSpec, PRESETS } from '../src/synth/synth.js';
import { loadModel, NonFiniteLogitsError } from '../src/api.js';
import { routeTopK, tokensPerExpert } from '../src/model/moe.js';
import { tmpDir } from './helpers.js';

const dir = tmpDir();
let n = 0;
/** a tiny synthetic model with its metadata and tensors edited, opened */
function edited(edit: (m: Map<string, GGUFKV>, t: ReturnType<typeof synthSpec>['tensors']) => void, preset = 'phi3.5-mini-tiny'): GGUFFile {
  const spec = synthSpec({ shape: PRESETS[preset]!, type: 'F32', seed: 1 });
  const m = new Map(spec.metadata);
  edit(m, spec.tensors);
  const file = path.join(dir, `m${n++}.gguf`);
  writeGguf(file, { metadata: [...m], tensors: spec.tensors });
  return openGguf(file);
}
const load = (f: GGUFFile) => {
  const c = configFromGguf(f);
  validateTensors(f, c);
  return c;
};

describe('phi3.* keys', () => {
  it('the honoured list covers every key the synthetic real-model presets write', () => {
    for (const p of ['phi3-mini-4k-tiny', 'phi3.5-mini-tiny', 'phi4-mini-tiny', 'phi4-tiny']) {
      const spec = synthSpec({ shape: PRESETS[p]!, type: 'F32', seed: 1 });
      for (const [k] of spec.metadata) if (k.startsWith('phi3.')) expect(HONOURED_ARCH_KEYS, `${p}: ${k}`).toContain(k.slice(5));
    }
  });

  // a value that each refused key may not take (refused keys with an allowed value load fine)
  const badValue: Record<string, GGUFKV> = {
    'attention.key_length': kv.u32(32),
    'attention.value_length': kv.u32(32),
    expert_count: kv.u32(16),
    expert_used_count: kv.u32(2),
    'attention.causal': kv.bool(false),
    pooling_type: kv.u32(1),
  };
  for (const key of REFUSED_ARCH_KEYS) {
    it(`refuses phi3.${key} by name`, () => {
      const f = edited((m) => m.set(`phi3.${key}`, badValue[key] ?? kv.f32(2)));
      expect(() => load(f)).toThrow(UnsupportedModelError);
      expect(() => load(f)).toThrow(`phi3.${key}`);
      f.close();
    });
  }
  it('accepts the allowed values of the conditional keys (key/value length = head size, 0 experts, causal)', () => {
    const f = edited((m) => {
      m.set('phi3.attention.key_length', kv.u32(64));
      m.set('phi3.attention.value_length', kv.u32(64));
      m.set('phi3.expert_count', kv.u32(0));
      m.set('phi3.attention.causal', kv.bool(true));
    });
    expect(load(f).headDim).toBe(64);
    f.close();
  });
  it('refuses rope scaling types other than none, linear and longrope', () => {
    const f = edited((m) => m.set('phi3.rope.scaling.type', kv.str('yarn')));
    expect(() => load(f)).toThrow(/rope\.scaling\.type 'yarn' is not supported/);
    f.close();
    for (const t of ['none', 'linear', 'longrope']) {
      const g = edited((m) => m.set('phi3.rope.scaling.type', kv.str(t)));
      expect(load(g).ropeScalingType).toBe(t);
      g.close();
    }
  });
  it('honours linear rope scaling (freq_scale = 1/factor)', () => {
    const f = edited((m) => m.set('phi3.rope.scaling.factor', kv.f32(4)));
    expect(load(f).ropeFreqScale).toBe(0.25);
    f.close();
  });
  it('warns about keys that neither llama.cpp nor phi3-ts reads', () => {
    const f = edited((m) => m.set('phi3.made_up_key', kv.u32(1)));
    const warnings: { key: string }[] = [];
    configFromGguf(f, warnings);
    expect(warnings.map((w) => w.key)).toEqual(['phi3.made_up_key']);
    f.close();
  });
  it('refuses per-layer arrays of head counts', () => {
    const f = edited((m) => m.set('phi3.attention.head_count', kv.arr(GGUFValueType.INT32, Int32Array.from([4, 4]))));
    expect(() => load(f)).toThrow(/'phi3.attention.head_count' holds per-layer values/);
    f.close();
  });
});

describe('hyper-parameters are checked before anything is sized by them', () => {
  const cases: [string, GGUFKV, RegExp][] = [
    ['phi3.block_count', kv.i32(-1), /expected a whole number in \[1, 2\], found -1.*key 'phi3.block_count'/],
    ['phi3.block_count', kv.u32(1_000_000), /found 1000000.*key 'phi3.block_count'/],
    ['phi3.block_count', kv.f32(NaN), /found NaN.*key 'phi3.block_count'/],
    ['phi3.embedding_length', kv.u32(0), /key 'phi3.embedding_length'/],
    ['phi3.embedding_length', kv.u32(2 ** 31), /key 'phi3.embedding_length'/],
    ['phi3.feed_forward_length', kv.f32(1.5), /found 1.5.*key 'phi3.feed_forward_length'/],
    ['phi3.context_length', kv.i32(0), /key 'phi3.context_length'/],
    ['phi3.attention.head_count', kv.u32(5), /not divisible by head_count 5.*key 'phi3.attention.head_count'/],
    ['phi3.attention.head_count_kv', kv.u32(3), /key 'phi3.attention.head_count_kv'/],
    ['phi3.rope.dimension_count', kv.u32(33), /key 'phi3.rope.dimension_count'/],
    ['phi3.attention.layer_norm_rms_epsilon', kv.f32(-1), /key 'phi3.attention.layer_norm_rms_epsilon'/],
    ['phi3.rope.freq_base', kv.f32(Infinity), /key 'phi3.rope.freq_base'/],
  ];
  for (const [key, value, re] of cases)
    it(`${key} = ${JSON.stringify(value.value)} is a GgufError naming the key`, () => {
      const f = edited((m) => m.set(key, value));
      expect(() => load(f)).toThrow(GgufError);
      expect(() => load(f)).toThrow(re);
      f.close();
    });
  it('a vocabulary shorter than token_embd is refused at load, naming the key', () => {
    const f = edited((m) => {
      const t = m.get('tokenizer.ggml.tokens')!.value as { itemType: GGUFValueType; items: string[] };
      m.set('tokenizer.ggml.tokens', kv.arr(GGUFValueType.STRING, t.items.slice(0, -1)));
    });
    expect(() => load(f)).toThrow(/vocabulary has 855 tokens but token_embd.weight has 856 rows.*tokenizer.ggml.tokens/);
    f.close();
  });
});

describe('tensors', () => {
  it('a tensor outside the phi3 graph is refused by name (as llama.cpp does)', () => {
    const f = edited((_, t) => t.push({ name: 'blk.0.attn_q_norm.weight', type: GGMLType.F32, shape: [64], data: () => new Uint8Array(256) }));
    expect(() => load(f)).toThrow(/tensor 'blk.0.attn_q_norm.weight' is not part of the phi3 graph/);
    f.close();
  });
  it('a norm stored as a quantized type is refused at load, naming the tensor', () => {
    const f = edited((_, t) => {
      const i = t.findIndex((x) => x.name === 'blk.1.ffn_norm.weight');
      t[i] = { ...t[i]!, type: GGMLType.Q8_0, data: () => new Uint8Array((256 / 32) * 34) };
    });
    expect(() => load(f)).toThrow(/tensor 'blk.1.ffn_norm.weight' has ggml type Q8_0; this tensor must be F32/);
    f.close();
  });
  for (const type of [GGMLType.Q8_K, GGMLType.Q8_1])
    it(`a weight stored as the activation type ${GGMLType[type]} is refused at load (found by the GGUF fuzzer)`, () => {
      const f = edited((_, t) => {
        const i = t.findIndex((x) => x.name === 'blk.0.ffn_down.weight');
        const elems = t[i]!.shape.reduce((a, d) => a * d, 1);
        const ti = GGML_TYPES.get(type)!;
        t[i] = { ...t[i]!, type, data: () => new Uint8Array((elems / ti.blockSize) * ti.typeSize) };
      });
      expect(() => load(f)).toThrow(new RegExp(`tensor 'blk.0.ffn_down.weight' has ggml type ${GGMLType[type]}, an activation type`));
      f.close();
    });
  it('rope factors of the wrong length are refused, naming the tensor', () => {
    const f = edited((_, t) => {
      const i = t.findIndex((x) => x.name === 'rope_factors_long.weight');
      t[i] = { ...t[i]!, shape: [16], data: () => new Uint8Array(64) };
    });
    expect(() => load(f)).toThrow(/tensor 'rope_factors_long.weight' has shape \[16\], expected \[32\]/);
    f.close();
  });
});

describe('Inf and NaN in the weights are found at load, naming the tensor', () => {
  const poisoned = (type: string, tensor: string, poison: (b: Uint8Array) => void) => {
    const spec = synthSpec({ shape: PRESETS.tiny!, type, seed: 2 });
    const i = spec.tensors.findIndex((t) => t.name === tensor);
    const data = spec.tensors[i]!.data;
    spec.tensors[i] = { ...spec.tensors[i]!, data: () => {
      const b = new Uint8Array(data());
      poison(b);
      return b;
    } };
    const file = path.join(dir, `poison-${type}-${n++}.gguf`);
    writeGguf(file, spec);
    return file;
  };
  it('F32: a NaN element', async () => {
    const file = poisoned('F32', 'blk.1.ffn_down.weight', (b) => new DataView(b.buffer).setFloat32(4 * 1000, NaN, true));
    await expect(loadModel(file, { ctx: 32, backend: 'ref' })).rejects.toThrow(/tensor 'blk.1.ffn_down.weight' holds Inf or NaN at element 1000/);
    // and without the scan it loads (the check can be turned off)
    const m = await loadModel(file, { ctx: 32, backend: 'ref', checkWeights: false });
    await m.close();
  });
  it('F16: an Inf element', async () => {
    const file = poisoned('F16', 'output.weight', (b) => new DataView(b.buffer).setUint16(2 * 77, 0x7c00, true));
    await expect(loadModel(file, { ctx: 32, backend: 'ref' })).rejects.toThrow(/tensor 'output.weight' holds Inf or NaN at element 77/);
  });
  for (const backend of ['ref', 'wasm'] as const)
    for (const [type, tensor, at, half] of [['F16', 'output.weight', 2 * 77, 0x7e00], ['Q8_0', 'blk.0.attn_qkv.weight', 34 * 5, 0x7c00], ['Q4_0', 'token_embd.weight', 0, 0xfc00]] as const)
      it(`unscanned (checkWeights false), a non-finite ${type} half in ${tensor} gives NonFiniteLogitsError from generate, not text (${backend})`, async () => {
        const file = poisoned(type, tensor, (b) => new DataView(b.buffer).setUint16(at, half, true));
        const m = await loadModel(file, { ctx: 32, backend, checkWeights: false, threads: 2 });
        try {
          // every token's embedding row 0 holds the poisoned block for token_embd: prompt with token 0
          const gen = m.generate([1, 0, 5], { maxTokens: 2, temperature: 0 });
          await expect((async () => { for await (const _ of gen); })()).rejects.toThrow(NonFiniteLogitsError);
          expect((await m.logits([1, 0, 5])).some((v) => !Number.isFinite(v))).toBe(true);
        } finally {
          await m.close();
        }
      });
  it('Q8_0: a block whose f16 scale is Inf', async () => {
    const file = poisoned('Q8_0', 'blk.0.attn_qkv.weight', (b) => new DataView(b.buffer).setUint16(34 * 5, 0x7c00, true));
    await expect(loadModel(file, { ctx: 32, backend: 'ref' })).rejects.toThrow(/tensor 'blk.0.attn_qkv.weight' holds Inf or NaN at block 5 \(a scale\)/);
  });
});

describe('phimoe (Phi-3.5-MoE): keys and tensors as llama.cpp loads them', () => {
  const moe = (edit: Parameters<typeof edited>[0]) => edited(edit, 'phimoe-tiny');
  it('the honoured list covers every phimoe.* key the phimoe preset writes, and the config reads the experts', () => {
    const spec = synthSpec({ shape: PRESETS['phimoe-tiny']!, type: 'F32', seed: 1 });
    for (const [k] of spec.metadata) if (k.startsWith('phimoe.')) expect(HONOURED_ARCH_KEYS.concat(['expert_count', 'expert_used_count']), k).toContain(k.slice(7));
    const f = moe(() => {});
    const c = load(f);
    expect([c.arch, c.nExpert, c.nExpertUsed, c.hiddenDim]).toEqual(['phimoe', 16, 2, 256]);
    f.close();
  });
  const bad: [string, (m: Map<string, GGUFKV>) => void, RegExp][] = [
    ['no expert_count', (m) => m.delete('phimoe.expert_count'), /required key is missing.*key 'phimoe.expert_count'/],
    ['0 experts', (m) => m.set('phimoe.expert_count', kv.u32(0)), /expected a whole number in \[1, 1024\], found 0.*phimoe.expert_count/],
    ['more experts used than exist', (m) => m.set('phimoe.expert_used_count', kv.u32(17)), /expected a whole number in \[1, 16\], found 17.*phimoe.expert_used_count/],
    ['0 experts used', (m) => m.set('phimoe.expert_used_count', kv.u32(0)), /found 0.*phimoe.expert_used_count/],
  ];
  for (const [what, edit, re] of bad)
    it(`${what}: a GgufError naming the key`, () => {
      const f = moe(edit);
      expect(() => load(f)).toThrow(GgufError);
      expect(() => load(f)).toThrow(re);
      f.close();
    });
  it('expert groups are refused by name', () => {
    const f = moe((m) => m.set('phimoe.expert_group_count', kv.u32(4)));
    expect(() => load(f)).toThrow(/key 'phimoe.expert_group_count' = 4: only no expert groups/);
    f.close();
  });
  for (const name of ['blk.0.attn_q.bias', 'blk.1.ffn_norm.bias', 'output_norm.bias', 'output.bias', 'blk.0.ffn_gate_inp.weight', 'blk.1.ffn_down_exps.weight'])
    it(`a missing ${name} is refused by name`, () => {
      const f = moe((_, t) => t.splice(t.findIndex((x) => x.name === name), 1));
      expect(() => load(f)).toThrow(`missing tensor '${name}'`);
      f.close();
    });
  it('a fused attn_qkv in a phimoe file is refused by name (llama.cpp reads phimoe q, k, v separately, with biases)', () => {
    const f = moe((_, t) => {
      const i = t.findIndex((x) => x.name === 'blk.0.attn_q.weight');
      t[i] = { ...t[i]!, name: 'blk.0.attn_qkv.weight', shape: [256, 384], data: () => new Uint8Array(256 * 384 * 4) };
    });
    expect(() => load(f)).toThrow(/a fused attn_qkv tensor in a phimoe file is not supported \(tensor 'blk.0.attn_q.weight' expected\)/);
    f.close();
  });
  it('an expert stack of the wrong expert count is refused, naming the tensor and both shapes', () => {
    const f = moe((_, t) => {
      const i = t.findIndex((x) => x.name === 'blk.0.ffn_up_exps.weight');
      t[i] = { ...t[i]!, shape: [256, 256, 8], data: () => new Uint8Array(256 * 256 * 8 * 4) };
    });
    expect(() => load(f)).toThrow(/tensor 'blk.0.ffn_up_exps.weight' has shape \[256,256,8\], expected \[256,256,16\]/);
    f.close();
  });
  it('a bias stored as F16 is refused by name (biases are F32, as the converter writes them)', () => {
    const f = moe((_, t) => {
      const i = t.findIndex((x) => x.name === 'blk.0.attn_k.bias');
      t[i] = { ...t[i]!, type: GGMLType.F16, data: () => new Uint8Array(64 * 2) };
    });
    expect(() => load(f)).toThrow(/tensor 'blk.0.attn_k.bias' has ggml type F16; this tensor must be F32/);
    f.close();
  });
  it('a phi3 file with phimoe tensors is refused by name', () => {
    const spec = synthSpec({ shape: PRESETS['phimoe-tiny']!, type: 'F32', seed: 1 });
    const m = new Map(spec.metadata.map(([k, v]) => [k.replace(/^phimoe\./, 'phi3.'), v] as [string, GGUFKV]));
    m.set('general.architecture', kv.str('phi3'));
    m.delete('phi3.expert_count');
    m.delete('phi3.expert_used_count');
    const file = path.join(dir, `m${n++}.gguf`);
    writeGguf(file, { metadata: [...m], tensors: spec.tensors });
    const f = openGguf(file);
    expect(() => load(f)).toThrow(/separate attn_q\/attn_k\/attn_v tensors in a phi3 file are not supported/);
    f.close();
  });
});

describe('routeTopK (llama.cpp build_moe_ffn, softmax gating, renormalised)', () => {
  it('picks the k most probable experts in descending order, weights = their probabilities / their sum (float64 brute force)', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 6 - 3;
    for (const [nExpert, k] of [[16, 2], [8, 3], [4, 4], [5, 1]] as const) {
      const T = 50;
      const logits = Float32Array.from({ length: T * nExpert }, rnd);
      const r = routeTopK(logits, T, nExpert, k);
      for (let t = 0; t < T; t++) {
        const row = [...logits.subarray(t * nExpert, (t + 1) * nExpert)];
        const ex = row.map((x) => Math.exp(x - Math.max(...row)));
        const p = ex.map((e) => e / ex.reduce((a, b) => a + b, 0));
        const top = [...p.keys()].sort((a, b) => p[b]! - p[a]!).slice(0, k);
        const sum = top.reduce((a, e) => a + p[e]!, 0);
        expect([...r.experts.subarray(t * k, (t + 1) * k)]).toEqual(top);
        top.forEach((e, j) => expect(r.weights[t * k + j]).toBeCloseTo(p[e]! / sum, 6));
      }
      if (k === nExpert) expect(r.margin).toBe(Infinity);
      else expect(r.margin).toBeGreaterThan(0);
    }
  });
  it('tokensPerExpert lists each (token, slot) once, under its expert, tokens ascending', () => {
    const r = { experts: Int32Array.from([3, 1, 1, 0, 3, 2]), weights: new Float32Array(6), margin: 1 };
    expect(tokensPerExpert(r, 4)).toEqual([[3], [1, 2], [5], [0, 4]]);
  });
});
