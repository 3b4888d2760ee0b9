/**
 * Test vocabularies for the GPT-2 BPE tokenizer: an existing gpt2 GGUF vocabulary (../shared/models/
 * ggml-vocab-gpt-2.gguf) given another pre-tokenizer and Phi-4's special tokens, so that each
 * pre-tokenizer llama.cpp runs for a Phi model (gpt-2, dbrx for Phi-4, gpt-4o for Phi-4-mini) can be
 * checked against llama.cpp on the same tokens and merges. Not a real Phi-4 vocabulary (no weights
 * or tokenizer files can be downloaded here).
 */
import { openGguf } from '../gguf/file-source.js';
import { GGUFValueType, type GGUFKV } from '../gguf/types.js';
import { kv } from '../gguf/writer.js';

/** Phi-4-mini's special tokens (Phi-4's are <|im_start|> <|im_sep|> <|im_end|> <|endoftext|>) */
export const PHI4_SPECIAL_TOKENS = [
  '<|endoftext|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<|tool|>', '<|/tool|>', '<|tool_call|>', '<|/tool_call|>',
  '<|tool_response|>', '<|tag|>', '<|im_start|>', '<|im_sep|>', '<|im_end|>', '<|dummy_0|>',
];

/** tokenizer.* metadata of `file` with `pre` as the pre-tokenizer and the special tokens appended as CONTROL */
export function bpeVocabMetadata(file: string, pre: string, specials = PHI4_SPECIAL_TOKENS): [string, GGUFKV][] {
  const f = openGguf(file);
  try {
    const tokens = [...f.getStringArray('tokenizer.ggml.tokens')];
    const types = f.has('tokenizer.ggml.token_type') ? [...(f.getArray('tokenizer.ggml.token_type').items as Int32Array)] : tokens.map(() => 1);
    const at = new Map(tokens.map((t, i) => [t, i]));
    for (const s of specials) {
      if (at.has(s)) types[at.get(s)!] = 3;
      else {
        at.set(s, tokens.length);
        tokens.push(s);
        types.push(3); // CONTROL
      }
    }
    const eos = at.get('<|endoftext|>')!;
    const out: [string, GGUFKV][] = [];
    for (const [k, v] of f.metadata) {
      if (!k.startsWith('tokenizer.')) {
        if (k !== 'general.name') out.push([k, v]); // the architecture's hyper-parameters (llama.cpp reads them even for a vocabulary)
        continue;
      }
      if (k === 'tokenizer.ggml.tokens' || k === 'tokenizer.ggml.token_type' || k === 'tokenizer.ggml.pre' || k === 'tokenizer.ggml.scores' || k.endsWith('_token_id') || k === 'tokenizer.chat_template') continue;
      out.push([k, v]);
    }
    out.push(
      ['tokenizer.ggml.pre', kv.str(pre)],
      ['tokenizer.ggml.tokens', kv.arr(GGUFValueType.STRING, tokens)],
      ['tokenizer.ggml.token_type', kv.arr(GGUFValueType.INT32, Int32Array.from(types))],
      ['tokenizer.ggml.bos_token_id', kv.u32(eos)],
      ['tokenizer.ggml.eos_token_id', kv.u32(eos)],
      ['tokenizer.ggml.add_bos_token', kv.bool(false)],
    );
    return out;
  } finally {
    f.close();
  }
}
