/**
 * Byte-level BPE vocabularies from Hugging Face `tokenizer.json` (Phi-4-mini's GPT2Tokenizer), as
 * llama.cpp's converter turns them into tokenizer.ggml.* values: tokens by id (holes become
 * `[PAD{id}]`, unused), added tokens control when special and user-defined otherwise, merges as
 * "left right".
 *
 * The pre-tokenizer is recognised from tokenizer.json's own regex, not guessed: GPT-2's ByteLevel
 * splitter, the cl100k/Llama-3 regex (llama.cpp's `dbrx` path) and the o200k regex (`gpt-4o`).
 * Any other pre-tokenizer, a normalizer or byte fallback is refused by name.
 */
import { UnsupportedModelError } from '../model/config.js';
import { PieceType } from './sentencepiece.js';

type Json = Record<string, unknown>;

const CONTRACTIONS = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
/** tokenizer.json Split regexes and llama.cpp's tokenizer.ggml.pre for each */
const SPLIT_REGEXES: Record<string, string> = {
  // o200k (Phi-4, GPT-4o)
  [`[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+${CONTRACTIONS}?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*${CONTRACTIONS}?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`]: 'gpt-4o',
  // cl100k / Llama-3 (llama.cpp runs dbrx with this regex)
  [`${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`]: 'dbrx',
};

function fail(file: string, msg: string): never {
  throw new UnsupportedModelError(`${file}: ${msg}`);
}

/** tokenizer.ggml.pre for this tokenizer.json's pre_tokenizer */
export function hfPreTokenizer(tj: Json, file: string): string {
  if (tj.normalizer !== null && tj.normalizer !== undefined) fail(file, `normalizer ${JSON.stringify((tj.normalizer as Json).type)} is not supported for byte-level BPE`);
  const pt = tj.pre_tokenizer as Json | null | undefined;
  if (!pt) fail(file, 'no pre_tokenizer: a byte-level BPE needs one');
  if (pt.type === 'ByteLevel' && pt.use_regex !== false && pt.add_prefix_space !== true) return 'gpt-2';
  if (pt.type === 'Sequence') {
    const parts = (pt.pretokenizers as Json[] | undefined) ?? [];
    const [split, byteLevel] = parts;
    const pattern = ((split?.pattern as Json | undefined)?.Regex ?? '') as string;
    if (parts.length === 2 && split?.type === 'Split' && split.behavior === 'Isolated' && split.invert !== true && byteLevel?.type === 'ByteLevel' && byteLevel.use_regex === false && byteLevel.add_prefix_space !== true) {
      const pre = SPLIT_REGEXES[pattern];
      if (pre) return pre;
      fail(file, `pre-tokenizer regex ${JSON.stringify(pattern).slice(0, 160)} is not supported (phi3-ts runs gpt-2, cl100k/Llama-3 and o200k/gpt-4o)`);
    }
  }
  fail(file, `pre_tokenizer ${JSON.stringify(pt).slice(0, 160)} is not supported (phi3-ts runs gpt-2, cl100k/Llama-3 and o200k/gpt-4o)`);
}

export function bpeVocabFromTokenizerJson(tj: Json, file: string, vocabSize: number): { tokens: string[]; types: number[]; merges: string[] } {
  const model = tj.model as Json | undefined;
  if (!model || model.type !== 'BPE') fail(file, `model.type ${JSON.stringify(model?.type)} is not supported here (a GPT2Tokenizer is byte-level BPE)`);
  if (model.byte_fallback === true) fail(file, 'model.byte_fallback is true: not a byte-level BPE');
  const vocab = model.vocab as Record<string, number> | undefined;
  if (!vocab || typeof vocab !== 'object') fail(file, 'model.vocab is missing');
  const tokens = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types = new Array<number>(vocabSize).fill(PieceType.UNUSED);
  const set = (id: number, text: string, type: number) => {
    if (!Number.isInteger(id) || id < 0) fail(file, `token ${JSON.stringify(text)} has id ${id}`);
    if (id >= vocabSize) fail(file, `token ${JSON.stringify(text)} has id ${id}, past config.json's vocab_size ${vocabSize}`);
    tokens[id] = text;
    types[id] = type;
  };
  for (const [text, id] of Object.entries(vocab)) set(id, text, PieceType.NORMAL);
  for (const t of (tj.added_tokens as Json[] | undefined) ?? []) set(Number(t.id), String(t.content), t.special === true ? PieceType.CONTROL : PieceType.USER_DEFINED);
  const raw = (model.merges as unknown[] | undefined) ?? [];
  const merges = raw.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return `${m[0]} ${m[1]}`;
    fail(file, `model.merges[${i}] is neither "a b" nor ["a", "b"]`);
  });
  return { tokens, types, merges };
}

/** tokenizer.ggml.pre → its tokenizer.json Split regex (export-hf) */
export const SPLIT_REGEX_OF: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(SPLIT_REGEXES).map(([re, pre]) => [pre, re]));
