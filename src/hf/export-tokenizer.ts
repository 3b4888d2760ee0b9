/**
 * A GGUF's tokenizer as Hugging Face files, the inverse of what src/hf/folder.ts reads:
 *   - SPM (tokenizer.ggml.model llama): tokenizer.model (SentencePiece protobuf) with the pieces up to
 *     the last normal or byte token, and tokenizer_config.json whose added_tokens_decoder holds every
 *     control and user-defined token (special = control). `[PAD{i}]` fillers are not written: the
 *     reader makes them again from config.json's vocab_size.
 *   - BPE (gpt2): tokenizer.json (byte-level BPE: vocab, merges, added tokens, the pre-tokenizer's
 *     regex) and tokenizer_config.json naming GPT2Tokenizer.
 * Both get the special tokens, add_bos/add_eos and the chat template.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GGUFFile } from '../gguf/reader.js';
import { UnsupportedModelError } from '../model/config.js';
import { PieceType, serializeSentencePiece } from './sentencepiece.js';
import { SPLIT_REGEX_OF } from './tokenizer-json.js';

function items<T>(f: GGUFFile, key: string): T[] {
  const v = f.metadata.get(key)?.value as { items: ArrayLike<T> } | undefined;
  return v ? Array.from(v.items) : [];
}

export function exportTokenizer(f: GGUFFile, dir: string): string[] {
  const model = f.optString('tokenizer.ggml.model');
  if (model === undefined) return [];
  const tokens = f.getStringArray('tokenizer.ggml.tokens');
  const types = items<number>(f, 'tokenizer.ggml.token_type');
  const isAdded = (i: number) => types[i] === PieceType.CONTROL || types[i] === PieceType.USER_DEFINED;
  const isPad = (i: number) => tokens[i] === `[PAD${i}]`;
  const id = (k: string) => f.optNumber(`tokenizer.ggml.${k}_token_id`);
  const text = (i: number | undefined) => (i === undefined ? undefined : tokens[i]);
  const files: string[] = [];
  const cfg: Record<string, unknown> = {
    add_bos_token: f.optBool('tokenizer.ggml.add_bos_token') ?? model === 'llama',
    add_eos_token: f.optBool('tokenizer.ggml.add_eos_token') ?? false,
    bos_token: text(id('bos')),
    eos_token: text(id('eos')),
    unk_token: text(id('unknown')),
    pad_token: text(id('padding')),
    clean_up_tokenization_spaces: false,
    chat_template: f.optString('tokenizer.chat_template'),
  };
  const decoder: Record<string, unknown> = {};
  if (model === 'llama') {
    let spSize = 0;
    tokens.forEach((_, i) => {
      if (types[i] === PieceType.NORMAL || types[i] === PieceType.BYTE) spSize = i + 1;
    });
    const scores = items<number>(f, 'tokenizer.ggml.scores');
    for (let i = spSize; i < tokens.length; i++)
      if (!isAdded(i) && !isPad(i)) throw new UnsupportedModelError(`${f.path}: token ${i} ${JSON.stringify(tokens[i])} (type ${types[i]}) comes after the SentencePiece pieces but is neither an added token nor a [PAD] filler`);
    const sp = serializeSentencePiece({
      pieces: tokens.slice(0, spSize).map((piece, i) => ({ piece, score: scores[i] ?? 0, type: (types[i] ?? PieceType.NORMAL) as PieceType })),
      modelType: 2,
      byteFallback: types.includes(PieceType.BYTE),
      normalizer: { name: 'identity', charsmapBytes: 0, addDummyPrefix: f.optBool('tokenizer.ggml.add_space_prefix') ?? true, removeExtraWhitespaces: false, escapeWhitespaces: true },
    });
    files.push(path.join(dir, 'tokenizer.model'));
    fs.writeFileSync(files.at(-1)!, sp);
    cfg.tokenizer_class = 'LlamaTokenizer';
    cfg.legacy = false;
  } else if (model === 'gpt2') {
    const pre = f.optString('tokenizer.ggml.pre') ?? 'gpt-2';
    const regex = SPLIT_REGEX_OF[pre];
    if (pre !== 'gpt-2' && !regex) throw new UnsupportedModelError(`${f.path}: pre-tokenizer '${pre}' has no tokenizer.json form here`);
    const vocab: Record<string, number> = {};
    const added: Record<string, unknown>[] = [];
    tokens.forEach((t, i) => {
      if (isAdded(i)) added.push({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[i] === PieceType.CONTROL });
      else if (!isPad(i)) vocab[t] = i;
    });
    const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
    const tj = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: regex ? { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, byteLevel(false)] } : byteLevel(true),
      post_processor: null,
      decoder: byteLevel(true),
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: f.getStringArray('tokenizer.ggml.merges') },
    };
    files.push(path.join(dir, 'tokenizer.json'));
    fs.writeFileSync(files.at(-1)!, JSON.stringify(tj));
    cfg.tokenizer_class = 'GPT2Tokenizer';
  } else throw new UnsupportedModelError(`${f.path}: tokenizer model '${model}' has no Hugging Face form here`);
  tokens.forEach((t, i) => {
    if (isAdded(i)) decoder[String(i)] = { content: t, lstrip: false, normalized: false, rstrip: false, single_word: false, special: types[i] === PieceType.CONTROL };
  });
  cfg.added_tokens_decoder = decoder;
  files.push(path.join(dir, 'tokenizer_config.json'));
  fs.writeFileSync(files.at(-1)!, JSON.stringify(cfg, null, 2) + '\n');
  return files;
}
