// Real-size BPE vocabularies from tiktoken's ranks (npm js-tiktoken): o200k_base as Phi-4-mini's
// (200,064 ids, pre-tokenizer gpt-4o) and cl100k_base as Phi-4's (100,352 ids, dbrx), each with its
// model's special tokens, written as GGUF tokenizer metadata the way convert_hf_to_gguf.py writes a
// GPT-2-style vocabulary: token texts in GPT-2's byte↔unicode alphabet, and merges derived from the
// ranks (a token's two parts are what byte-pair merging of its bytes with the lower ranks leaves).
import o200k from 'js-tiktoken/ranks/o200k_base';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import { openGguf } from '../../dist/src/gguf/file-source.js';
import { GGUFValueType } from '../../dist/src/gguf/types.js';
import { kv } from '../../dist/src/gguf/writer.js';
import { BYTE_TO_CHAR } from '../../dist/src/tokenizer/bpe.js';

const PHI4_MINI_SPECIALS = { 199999: '<|endoftext|>', 200018: '<|endofprompt|>', 200019: '<|assistant|>', 200020: '<|end|>', 200021: '<|user|>', 200022: '<|system|>', 200023: '<|tool|>', 200024: '<|/tool|>', 200025: '<|tool_call|>', 200026: '<|/tool_call|>', 200027: '<|tool_response|>', 200028: '<|tag|>' };
const PHI4_SPECIALS = { 100257: '<|endoftext|>', 100258: '<|fim_prefix|>', 100259: '<|fim_middle|>', 100260: '<|fim_suffix|>', 100264: '<|im_start|>', 100265: '<|im_end|>', 100266: '<|im_sep|>', 100276: '<|endofprompt|>' };
export const TIKTOKEN_VOCABS = {
  'o200k-phi4-mini': { ranks: o200k, size: 200064, pre: 'gpt-4o', specials: PHI4_MINI_SPECIALS, eos: 199999 },
  'cl100k-phi4': { ranks: cl100k, size: 100352, pre: 'dbrx', specials: PHI4_SPECIALS, eos: 100257 },
};

/** rank of each token's bytes (as a latin1 string), from js-tiktoken's compact format: "name offset b64 b64 …" per line */
function ranksOf(r) {
  const m = new Map();
  for (const line of r.bpe_ranks.split('\n')) {
    if (!line) continue;
    const [, off, ...toks] = line.split(' ');
    toks.forEach((t, i) => m.set(Buffer.from(t, 'base64').toString('latin1'), Number(off) + i));
  }
  return m;
}

/** the two parts that merging `bytes` by rank (below its own) leaves, or undefined */
function lastMerge(bytes, ranks, own) {
  let parts = [...bytes];
  for (;;) {
    let best = -1, bestRank = own;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(parts[i] + parts[i + 1]);
      if (r !== undefined && r < bestRank) (bestRank = r), (best = i);
    }
    if (best < 0) break;
    parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
  }
  return parts.length === 2 ? parts : undefined;
}

const gpt2Text = (latin1) => Array.from(latin1, (c) => BYTE_TO_CHAR[c.charCodeAt(0)]).join('');

/** tokenizer metadata (plus the gpt2 architecture keys llama.cpp reads even for a vocabulary, from `gpt2File`) */
export function tiktokenVocabMetadata(name, gpt2File) {
  const v = TIKTOKEN_VOCABS[name];
  const ranks = ranksOf(v.ranks);
  const tokens = new Array(v.size), types = new Int32Array(v.size);
  for (const [bytes, r] of ranks) {
    tokens[r] = gpt2Text(bytes);
    types[r] = 1; // NORMAL
  }
  for (let i = 0, d = 0; i < v.size; i++) {
    if (tokens[i] !== undefined) continue;
    tokens[i] = v.specials[i] ?? `<|dummy_${d++}|>`;
    types[i] = 3; // CONTROL
  }
  const merges = [];
  for (const [bytes, r] of [...ranks].sort((a, b) => a[1] - b[1])) {
    if (bytes.length < 2) continue;
    const p = lastMerge(bytes, ranks, r);
    if (p) merges.push(`${gpt2Text(p[0])} ${gpt2Text(p[1])}`);
  }
  const f = openGguf(gpt2File);
  const arch = [...f.metadata].filter(([k]) => !k.startsWith('tokenizer.') && k !== 'general.name');
  f.close();
  return [
    ...arch,
    ['general.name', kv.str(`${name} tokens, ${v.pre} pre-tokenizer`)],
    ['tokenizer.ggml.model', kv.str('gpt2')],
    ['tokenizer.ggml.pre', kv.str(v.pre)],
    ['tokenizer.ggml.tokens', kv.arr(GGUFValueType.STRING, tokens)],
    ['tokenizer.ggml.token_type', kv.arr(GGUFValueType.INT32, types)],
    ['tokenizer.ggml.merges', kv.arr(GGUFValueType.STRING, merges)],
    ['tokenizer.ggml.bos_token_id', kv.u32(v.eos)],
    ['tokenizer.ggml.eos_token_id', kv.u32(v.eos)],
    ['tokenizer.ggml.add_bos_token', kv.bool(false)],
  ];
}
