/**
 * llama.cpp's SPM ("llama") tokenizer, from GGUF metadata: token ids identical to llama.cpp.
 *
 * Mirrors llama.cpp src/llama-vocab.cpp: llm_tokenizer_spm_session (score-driven bigram merges over
 * UTF-8 characters, resegment through rev_merge, byte fallback `<0xNN>`), tokenizer_st_partition
 * (special tokens split out first, user-defined ones always, control ones only when asked; Phi-3's
 * rstrip rule), impl::tokenize (leading-space rule, BOS) and token_to_piece / detokenize.
 * Text is handled as UTF-8 bytes throughout (a JS string per byte, "binary" keys), as C++ std::string is.
 * The same class runs GPT-2 byte-level BPE vocabularies (tokenizer.ggml.model = "gpt2": Phi-4-mini,
 * Phi-4) through bpe.ts: special-token partition, BOS/EOS and detokenization are shared; only the
 * splitting of plain text differs. Not a SentencePiece trainer.
 */
import type { GGUFFile } from '../gguf/reader.js';
import { GGUFValueType } from '../gguf/types.js';
import { Heap } from './heap.js';
import { BPE_PRE_TOKENIZERS, bpeDecodeText, bpeMerge, byteEncode, preTokenChunks, preTokenize, type BpePre } from './bpe.js';

/** llama_token_type values in tokenizer.ggml.token_type */
export enum TokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

/** llama_token_attr bits (llama.h): what llama.cpp derives from the token type and its text */
export enum TokenAttr {
  UNDEFINED = 0,
  UNKNOWN = 1 << 0,
  UNUSED = 1 << 1,
  NORMAL = 1 << 2,
  CONTROL = 1 << 3,
  USER_DEFINED = 1 << 4,
  BYTE = 1 << 5,
  NORMALIZED = 1 << 6,
  LSTRIP = 1 << 7,
  RSTRIP = 1 << 8,
  SINGLE_WORD = 1 << 9,
}

const TYPE_TO_ATTR: Record<number, TokenAttr> = {
  [TokenType.UNKNOWN]: TokenAttr.UNKNOWN,
  [TokenType.UNUSED]: TokenAttr.UNUSED,
  [TokenType.NORMAL]: TokenAttr.NORMAL,
  [TokenType.CONTROL]: TokenAttr.CONTROL,
  [TokenType.USER_DEFINED]: TokenAttr.USER_DEFINED,
  [TokenType.BYTE]: TokenAttr.BYTE,
};

// llama-vocab.cpp load(): token texts that are made CONTROL (and, for EOG_TEXTS, end generation)
const EOT_TEXTS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>'];
const FIM_TEXTS = [
  ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>'],
  ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>'],
  ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>'],
  ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'],
  ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'],
  ['<|file_sep|>'],
];
const EOG_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>', '<|endoftext|>', '</s>',
  '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>', '<eos>', '<turn|>', '<|tool_response>',
  '<｜end▁of▁sentence｜>', '[e~[',
];

export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

const utf8Encoder = new TextEncoder();
/** Node's Buffer where there is one (not in browsers): latin1 is exactly one char per byte */
const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
/** UTF-8 bytes of a JS string, as a binary string (one char per byte) */
export function toBinary(s: string): string {
  if (NodeBuffer) return NodeBuffer.from(s, 'utf8').toString('latin1'); // native, ≈ 10× the loop below
  const b = utf8Encoder.encode(s);
  let out = '';
  for (let i = 0; i < b.length; i += 8192) out += String.fromCharCode(...b.subarray(i, i + 8192));
  return out;
}
/** a binary string's UTF-8 → JS string (malformed sequences → U+FFFD, as TextDecoder) */
export function fromBinary(s: string): string {
  if (NodeBuffer) return NodeBuffer.from(s, 'latin1').toString('utf8');
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(binaryToBytes(s));
}
export function binaryToBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** unicode_len_utf8: sequence length from the lead byte (continuation bytes count as 1) */
const UTF8_LEN = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
const SPACE = ' ';
const ESCAPED_SPACE = toBinary('▁'); // U+2581 "▁", 3 bytes

function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}
/** llama_escape_whitespace on a binary string: every " " becomes "▁" (bytewise: V8's replaceAll takes ≈ 80 ns a match) */
function escapeWhitespace(s: string): string {
  if (!NodeBuffer) return s.replaceAll(SPACE, ESCAPED_SPACE);
  const src = NodeBuffer.from(s, 'latin1');
  let spaces = 0;
  for (let i = 0; i < src.length; i++) if (src[i] === 0x20) spaces++;
  if (spaces === 0) return s;
  const dst = NodeBuffer.allocUnsafe(src.length + 2 * spaces);
  for (let i = 0, j = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b !== 0x20) dst[j++] = b;
    else {
      dst[j++] = 0xe2;
      dst[j++] = 0x96;
      dst[j++] = 0x81;
    }
  }
  return dst.toString('latin1');
}

/** the UTF-8 character (binary) that ends just before byte k of a binary string */
function charBefore(s: string, k: number): string {
  let c = k - 1;
  while (c > 0 && (s.charCodeAt(c) & 0xc0) === 0x80) c--;
  return s.slice(c, k);
}

/** s without its trailing C whitespace (a loop: a regex anchored at $ is quadratic on long runs) */
function trimEndCSpace(s: string): string {
  let e = s.length;
  while (e > 0 && isCSpace(s.charCodeAt(e - 1))) e--;
  return e === s.length ? s : s.slice(0, e);
}

interface Symbol_ {
  text: number; // start offset in the text
  n: number; // byte length; 0 once merged into its left neighbour
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** llm_bigram_spm::comparator's order: highest score first, then leftmost */
const bigramFirst = (a: Bigram, b: Bigram) => a.score > b.score || (a.score === b.score && a.left < b.left);

export interface TokenizeOptions {
  /** add BOS when the vocab says so (tokenizer.ggml.add_bos_token); default true */
  addSpecial?: boolean;
  /** recognise control tokens like <|user|> in text; default false (as llama.cpp's tokenizer tests) */
  parseSpecial?: boolean;
}

export class SpmTokenizer {
  /** token texts as binary (UTF-8 byte) strings */
  readonly pieces: string[];
  readonly scores: Float32Array;
  /** llama_token_attr bits per token */
  readonly attrs: Uint32Array;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  /** end-of-generation tokens: eos, <|end|>, <|endoftext|>, … (llama.cpp's special_eog_ids) */
  readonly eog: Set<number>;
  private readonly toId = new Map<string, number>();
  private readonly special: number[]; // cache_special_tokens: longest text first
  /** 'spm' (tokenizer.ggml.model = llama) or 'bpe' (gpt2) */
  readonly kind: 'spm' | 'bpe';
  /** BPE: the pre-tokenizer, token texts as JS strings, and merge ranks keyed "left right" */
  readonly pre: BpePre | undefined;
  private readonly texts: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly ignoreMerges: boolean = false;
  /** SPM: the characters x (binary) for which some token contains "x▁" with x not "▁": no cut after them */
  private readonly joinsSpace = new Set<string>();

  constructor(f: GGUFFile) {
    const model = f.getString('tokenizer.ggml.model');
    if (model !== 'llama' && model !== 'gpt2') throw new TokenizerError(`${f.path}: tokenizer model '${model}' is not supported (phi3-ts runs 'llama' SPM and 'gpt2' BPE)`);
    this.kind = model === 'llama' ? 'spm' : 'bpe';
    const bpe = this.kind === 'bpe';
    if (bpe) {
      const pre = f.optString('tokenizer.ggml.pre') ?? 'default';
      if (!(BPE_PRE_TOKENIZERS as readonly string[]).includes(pre))
        throw new TokenizerError(`${f.path}: pre-tokenizer tokenizer.ggml.pre = '${pre}' is not supported (phi3-ts runs ${BPE_PRE_TOKENIZERS.join(', ')})`);
      this.pre = pre as BpePre;
      if (!f.has('tokenizer.ggml.merges')) throw new TokenizerError(`${f.path}: a gpt2 (BPE) vocabulary needs tokenizer.ggml.merges`);
      f.getStringArray('tokenizer.ggml.merges').forEach((m, rank) => {
        const at = m.indexOf(' ', 1); // llama.cpp splits at the first space after the first character
        if (at < 0) throw new TokenizerError(`${f.path}: tokenizer.ggml.merges[${rank}] = ${JSON.stringify(m)} is not two pieces`);
        const key = `${m.slice(0, at)} ${m.slice(at + 1)}`;
        if (!this.ranks.has(key)) this.ranks.set(key, rank);
      });
    }
    const raw = f.getStringArray('tokenizer.ggml.tokens').map((t, i) => (t === '' ? `[EMPTY_${i}]` : t));
    if (bpe) this.texts = raw;
    this.pieces = raw.map(toBinary);
    const n = this.pieces.length;
    const scores = f.has('tokenizer.ggml.scores') ? f.getArray('tokenizer.ggml.scores') : undefined;
    const types = f.has('tokenizer.ggml.token_type') ? f.getArray('tokenizer.ggml.token_type') : undefined;
    if (scores && (scores.itemType !== GGUFValueType.FLOAT32 || scores.items.length !== n))
      throw new TokenizerError(`${f.path}: tokenizer.ggml.scores must be ${n} FLOAT32 values`);
    if (types && (types.itemType !== GGUFValueType.INT32 || types.items.length !== n))
      throw new TokenizerError(`${f.path}: tokenizer.ggml.token_type must be ${n} INT32 values`);
    this.scores = scores ? (scores.items as Float32Array) : new Float32Array(n);
    const tt = types ? (types.items as Int32Array) : undefined;
    this.attrs = new Uint32Array(n).map((_, i) => (tt ? (TYPE_TO_ATTR[tt[i]!] ?? TokenAttr.UNDEFINED) : TokenAttr.NORMAL));
    for (let i = 0; i < n; i++) this.toId.set(this.pieces[i]!, i);
    if (!bpe)
      for (const p of this.pieces)
        for (let k = p.indexOf(ESCAPED_SPACE, 1); k > 0; k = p.indexOf(ESCAPED_SPACE, k + 1)) {
          const x = charBefore(p, k);
          if (x !== ESCAPED_SPACE) this.joinsSpace.add(x);
        }
    const byText = (t: string) => this.toId.get(toBinary(t));
    const id = (key: string, dflt: number) => {
      const v = f.optNumber(key);
      if (v !== undefined && !Number.isInteger(v)) throw new TokenizerError(`${f.path}: ${key} = ${v} is not a token id (a whole number)`);
      return v !== undefined && v >= 0 && v < n ? v : dflt; // out of range: the default, as llama.cpp ("bad special token")
    };
    // llama.cpp's defaults per vocabulary type, then the file's keys
    this.bos = id('tokenizer.ggml.bos_token_id', bpe ? 11 : 1);
    this.eos = id('tokenizer.ggml.eos_token_id', bpe ? 11 : 2);
    this.unk = id('tokenizer.ggml.unknown_token_id', bpe ? -1 : 0);
    const eot = id('tokenizer.ggml.eot_token_id', -1);
    const eom = id('tokenizer.ggml.eom_token_id', -1);
    this.addBos = f.optBool('tokenizer.ggml.add_bos_token') ?? !bpe;
    this.addEos = f.optBool('tokenizer.ggml.add_eos_token') ?? false;
    this.addSpacePrefix = f.optBool('tokenizer.ggml.add_space_prefix') ?? !bpe;

    // auto-detect special tokens by text, as llama-vocab.cpp load() does: the first EOT/EOM/FIM
    // candidate (when the file names none) and every end-of-generation text become CONTROL
    const makeControl = (i: number) => (this.attrs[i] = this.attrs[i]! | TokenAttr.CONTROL);
    const firstOf = (texts: string[]) => texts.map(byText).filter((i) => i !== undefined).sort((a, b) => a - b)[0];
    const autoEot = eot < 0 ? firstOf(EOT_TEXTS) : undefined;
    if (autoEot !== undefined) makeControl(autoEot);
    const autoEom = eom < 0 ? byText('<|eom_id|>') : undefined;
    if (autoEom !== undefined) makeControl(autoEom);
    for (const texts of FIM_TEXTS) {
      const i = firstOf(texts);
      if (i !== undefined) makeControl(i);
    }
    for (let i = 0; i < n; i++)
      if (this.attrs[i]! & TokenAttr.CONTROL && this.pieces[i]!.includes('unused')) this.attrs[i] = this.attrs[i]! | TokenAttr.UNUSED;
    this.eog = new Set<number>();
    for (const t of EOG_TEXTS) {
      const i = byText(t);
      if (i === undefined) continue;
      this.eog.add(i);
      makeControl(i);
    }
    for (const i of [this.eos, eot >= 0 ? eot : autoEot, eom >= 0 ? eom : autoEom]) if (i !== undefined && i >= 0) this.eog.add(i);
    const has = (t: string) => [...this.eog].some((i) => this.pieces[i] === toBinary(t));
    const endId = byText('<|end|>');
    if (endId !== undefined && this.eog.has(endId) && ((has('<|return|>') && has('<|call|>')) || (has('<|calls|>') && has('<|flush|>')))) {
      this.eog.delete(endId);
      this.attrs[endId] = TokenAttr.USER_DEFINED;
    }
    const sId = byText('</s>');
    if (sId !== undefined && this.eog.has(sId) && has('<|tool_response>')) {
      this.eog.delete(sId);
      this.attrs[sId] = TokenAttr.NORMAL;
    }

    // cache_special_tokens: longest text first
    this.special = [...Array(n).keys()]
      .filter((i) => this.attrs[i]! & (TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN))
      .sort((a, b) => this.pieces[b]!.length - this.pieces[a]!.length || a - b);

    // per-model attributes: Phi-3 strips whitespace after its special tokens (by general.name)
    const name = (f.optString('general.name') ?? '').toLowerCase();
    if (name.includes('phi-3') || name.includes('phi3')) {
      for (const i of this.special) this.attrs[i] = this.attrs[i]! | TokenAttr.RSTRIP;
      if (sId !== undefined) this.attrs[sId] = this.attrs[sId]! | TokenAttr.RSTRIP;
      for (const t of ['<unk>', '<s>', '<|endoftext|>']) {
        const i = byText(t);
        if (i !== undefined) this.attrs[i] = this.attrs[i]! & ~TokenAttr.RSTRIP;
      }
    }
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  tokenId(text: string): number | undefined {
    return this.toId.get(toBinary(text));
  }

  /** text → ids exactly as llama_tokenize(vocab, text, add_special, parse_special) */
  encode(text: string, opts: TokenizeOptions = {}): number[] {
    return this.encodeSegments([{ text, parseSpecial: opts.parseSpecial ?? false }], opts);
  }

  /**
   * Several texts tokenized as their concatenation would be, except that special-token text is
   * parsed only in the segments that allow it: a chat prompt's template markup parses its control
   * tokens while message content stays text (no forged turns). With one segment this is encode().
   */
  encodeSegments(segments: { text: string; parseSpecial: boolean }[], opts: { addSpecial?: boolean } = {}): number[] {
    const out: number[] = [];
    for (const _ of this.encodeSteps(segments, opts.addSpecial ?? true, out));
    return out;
  }

  /**
   * encodeSegments that gives the event loop a turn every `sliceMs` (default 10 ms) of work, so a
   * server stays responsive while a megabyte prompt is tokenized; an aborted `signal` stops it with
   * the signal's reason. Same ids as encodeSegments.
   */
  async encodeSegmentsAsync(
    segments: { text: string; parseSpecial: boolean }[],
    opts: { addSpecial?: boolean; signal?: AbortSignal; sliceMs?: number } = {},
  ): Promise<number[]> {
    const out: number[] = [];
    const sliceMs = opts.sliceMs ?? 10;
    opts.signal?.throwIfAborted();
    let t = performance.now();
    for (const _ of this.encodeSteps(segments, opts.addSpecial ?? true, out)) {
      if (performance.now() - t < sliceMs) continue;
      await new Promise((r) => setTimeout(r, 0));
      opts.signal?.throwIfAborted();
      t = performance.now();
    }
    return out;
  }

  /** the work of encodeSegments, pausing (yield) after every bounded step: a special token's scan, a chunk of text */
  private *encodeSteps(segments: { text: string; parseSpecial: boolean }[], addSpecial: boolean, out: number[]): Generator<void> {
    if (addSpecial && this.addBos) {
      if (this.bos < 0) throw new TokenizerError('the vocabulary has no BOS token but add_bos_token is set');
      out.push(this.bos);
    }
    // each segment split at its special tokens; adjacent text of neighbouring segments joined
    const frags: (string | number)[] = [];
    for (const seg of segments)
      for (const f of yield* this.partition(toBinary(seg.text), seg.parseSpecial)) {
        const last = frags.length - 1;
        if (typeof f === 'string' && typeof frags[last] === 'string') frags[last] += f;
        else frags.push(f);
      }
    // a special token's lstrip/rstrip reaches across segment boundaries, as in the joined text
    for (let i = 0; i < frags.length; i++) {
      const f = frags[i]!;
      if (typeof f !== 'number') continue;
      const attr = this.attrs[f]!;
      if (attr & TokenAttr.LSTRIP && typeof frags[i - 1] === 'string') frags[i - 1] = trimEndCSpace(frags[i - 1] as string);
      if (attr & TokenAttr.RSTRIP && typeof frags[i + 1] === 'string') {
        const next = frags[i + 1] as string;
        let k = 0;
        while (k < next.length && isCSpace(next.charCodeAt(k))) k++;
        frags[i + 1] = next.slice(k);
      }
    }
    let isPrevSpecial = true; // prefix with space if first token
    for (const frag of frags) {
      if (frag === '') continue;
      if (typeof frag === 'number') {
        out.push(frag);
        isPrevSpecial = true;
        continue;
      }
      if (this.kind === 'bpe') {
        yield* this.bpe(frag, out);
        continue;
      }
      yield* this.spm(this.addSpacePrefix && isPrevSpecial ? SPACE + frag : frag, out); // llama_escape_whitespace inside
      isPrevSpecial = false;
    }
    if (addSpecial && this.addEos) out.push(this.eos);
    return out;
  }

  /** tokenizer_st_partition: split special-token texts out of the raw text, in cache order */
  private *partition(raw: string, parseSpecial: boolean): Generator<void, (string | number)[]> {
    let frags: (string | number)[] = raw.length ? [raw] : [];
    for (const id of this.special) {
      yield;
      const attr = this.attrs[id]!;
      if (!parseSpecial && attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) continue;
      const text = this.pieces[id]!;
      if (!text.length) continue;
      const next: (string | number)[] = [];
      for (const f of frags) {
        if (typeof f === 'number') {
          next.push(f);
          continue;
        }
        let rest = f;
        for (;;) {
          const m = rest.indexOf(text);
          if (m < 0) {
            if (rest.length) next.push(rest);
            break;
          }
          let left = rest.slice(0, m);
          if (attr & TokenAttr.LSTRIP) left = trimEndCSpace(left);
          if (left.length) next.push(left);
          next.push(id);
          rest = rest.slice(m + text.length);
          if (attr & TokenAttr.RSTRIP) {
            let k = 0;
            while (k < rest.length && isCSpace(rest.charCodeAt(k))) k++;
            rest = rest.slice(k);
          }
        }
      }
      frags = next;
    }
    return frags;
  }

  /**
   * llm_tokenizer_spm_session::tokenize over a binary string, in linear time: the text is cut before
   * each "▁" that follows a character x after which no token has a "▁" (the bigram merges can never
   * join across such a cut, so each piece merges alone, as it would inside the whole), and pieces
   * seen before come from a cache. Same ids as one pass over the whole text (tested).
   */
  private *spm(raw: string, out: number[]): Generator<void> {
    // `raw` has its spaces still unescaped: it is escaped and merged about 32 KiB at a time, cut at a
    // space that is a cut, so that each step is short
    for (let start = 0; start < raw.length; ) {
      let end = raw.length;
      for (let k = start + 32768; k < raw.length; k++)
        if (raw.charCodeAt(k) === 0x20 && this.cutsBefore(raw, k)) {
          end = k;
          break;
        }
      this.spmPieces(escapeWhitespace(raw.slice(start, end)), out);
      start = end;
      if (start < raw.length) yield;
    }
  }

  private spmPieces(text: string, out: number[]): void {
    let start = 0;
    for (let k = 1; k < text.length - 2; k++) {
      // "▁" is E2 96 81 (a loop over char codes: indexOf costs ≈ 250 ns a call here)
      if (text.charCodeAt(k) !== 0xe2 || text.charCodeAt(k + 1) !== 0x96 || text.charCodeAt(k + 2) !== 0x81 || !this.cutsBefore(text, k)) continue;
      this.spmCached(text.slice(start, k), out);
      start = k;
    }
    this.spmCached(start ? text.slice(start) : text, out);
  }

  /** may the text be cut before the "▁" (or the space to become one) at k: the character before it is neither, and no token joins it to a "▁" */
  private cutsBefore(text: string, k: number): boolean {
    const b = text.charCodeAt(k - 1);
    if (b === 0x20) return false;
    if (this.joinsSpace.size === 0 && b < 0x80) return true;
    const x = charBefore(text, k);
    return x !== ESCAPED_SPACE && !this.joinsSpace.has(x);
  }

  private spmCached(piece: string, out: number[]): void {
    this.cached(piece, out, () => {
      const ids: number[] = [];
      this.spmMerge(piece, ids);
      return ids;
    });
  }

  /** pieces (SPM) or pre-tokenized words (BPE) seen before → their ids (natural text repeats itself) */
  private readonly pieceCache = new Map<string, number[]>();

  /** append the ids of `key`, from the cache or computed (bounded: a piece's ids never change, so clearing is safe) */
  private cached(key: string, out: number[], compute: () => number[]): void {
    let ids = this.pieceCache.get(key);
    if (!ids) {
      ids = compute();
      if (this.pieceCache.size >= 65536) this.pieceCache.clear();
      this.pieceCache.set(key, ids);
    }
    for (const id of ids) out.push(id);
  }

  /** the merge of one piece: score-driven bigrams, then resegment through rev_merge */
  private spmMerge(text: string, out: number[]): void {
    const symbols: Symbol_[] = [];
    for (let offs = 0, index = 0; offs < text.length; index++) {
      const len = Math.min(UTF8_LEN[text.charCodeAt(offs) >> 4]!, text.length - offs);
      const next = offs + len;
      symbols.push({ text: offs, n: len, prev: index - 1, next: next === text.length ? -1 : index + 1 });
      offs = next;
    }
    const queue = new Heap<Bigram>(bigramFirst);
    const revMerge = new Map<string, [number, number]>();
    const tryAddBigram = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const l = symbols[left]!, r = symbols[right]!;
      const s = text.substr(l.text, l.n + r.n);
      const id = this.toId.get(s);
      if (id === undefined) return;
      queue.push({ left, right, score: this.scores[id]!, size: s.length });
      revMerge.set(s, [left, right]);
    };
    for (let i = 1; i < symbols.length; i++) tryAddBigram(i - 1, i);
    while (queue.size) {
      const b = queue.pop();
      const l = symbols[b.left]!, r = symbols[b.right]!;
      if (l.n === 0 || r.n === 0 || l.n + r.n !== b.size) continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[r.next]!.prev = b.left;
      tryAddBigram(l.prev, b.left);
      tryAddBigram(b.left, l.next);
    }
    const resegment = (sym: Symbol_) => {
      const s = text.substr(sym.text, sym.n);
      const id = this.toId.get(s);
      if (id !== undefined) {
        out.push(id);
        return;
      }
      const p = revMerge.get(s);
      if (!p) {
        for (let j = 0; j < s.length; j++) out.push(this.byteToken(s.charCodeAt(j)));
        return;
      }
      resegment(symbols[p[0]]!);
      resegment(symbols[p[1]]!);
    };
    for (let i = symbols.length ? 0 : -1; i !== -1; i = symbols[i]!.next) resegment(symbols[i]!);
  }

  /** llm_tokenizer_bpe_session::tokenize over one text fragment (binary string) */
  private *bpe(frag: string, out: number[]): Generator<void> {
    for (const chunk of preTokenChunks(fromBinary(frag))) {
      this.bpeChunk(chunk, out);
      yield;
    }
  }

  private bpeChunk(chunk: string, out: number[]): void {
    for (const word of preTokenize(chunk, this.pre!)) this.cached(word, out, () => this.bpeWord(word));
  }

  private bpeWord(word: string): number[] {
    const out: number[] = [];
    const isToken = (s: string) => this.toId.has(toBinary(s));
    for (const piece of bpeMerge(byteEncode(word), this.ranks, isToken, this.ignoreMerges)) {
      const id = this.toId.get(toBinary(piece));
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // not a token: its single bytes, where those are tokens (llama.cpp drops the rest)
      for (const b of toBinary(piece)) {
        const bid = this.toId.get(b);
        if (bid !== undefined) out.push(bid);
      }
    }
    return out;
  }

  private byteToken(b: number): number {
    const id = this.toId.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    if (id === undefined) {
      if (this.unk >= 0) return this.unk;
      throw new TokenizerError(`byte 0x${b.toString(16)} has no <0xNN> token and the vocabulary has no unknown token`);
    }
    return id;
  }

  /** token_to_piece: the bytes one token prints (control/unknown print only when `special`) */
  pieceBytes(id: number, special = false): string {
    if (id < 0 || id >= this.pieces.length) throw new TokenizerError(`token id ${id} is outside the vocabulary of ${this.pieces.length}`);
    const attr = this.attrs[id]!;
    if (!special && attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) return '';
    const text = this.pieces[id]!;
    if (attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN | TokenAttr.USER_DEFINED)) return text;
    if (attr & TokenAttr.NORMAL) return this.kind === 'bpe' ? bpeDecodeText(this.texts[id]!) : text.split(ESCAPED_SPACE).join(SPACE);
    if (attr & TokenAttr.BYTE) return String.fromCharCode(parseInt(text.slice(3, 5), 16));
    return ''; // UNDEFINED / UNUSED print nothing, as in llama.cpp
  }

  /** llama_detokenize(tokens, remove_special, unparse_special) → UTF-8 bytes (binary string) */
  decodeBytes(ids: number[], opts: { removeSpecial?: boolean; special?: boolean } = {}): string {
    let removeSpace = this.addSpacePrefix;
    let toks = ids;
    if (opts.removeSpecial && this.addBos && toks.length && toks[0] === this.bos) {
      removeSpace = false;
      toks = toks.slice(1);
    }
    if (opts.removeSpecial && this.addEos && toks.length && toks.at(-1) === this.eos) toks = toks.slice(0, -1);
    let out = '';
    for (const id of toks) {
      let p = this.pieceBytes(id, opts.special ?? false);
      if (removeSpace && p.startsWith(SPACE)) p = p.slice(1);
      removeSpace = false;
      out += p;
    }
    // BPE vocabularies clean up spaces as llama.cpp's detokenize does (tokenizer_clean_spaces; not gpt-4o's):
    // no space before ? ! . ,; " ' " loses both spaces; none before the contractions 's 'm 're 've
    if (this.kind === 'bpe' && this.pre !== 'gpt-4o') out = out.replace(/ ([?!.,])/g, '$1').replace(/ ' /g, "'").replace(/ '(?=s|m|re|ve)/g, "'");
    return out;
  }

  /** ids → text (invalid UTF-8 becomes U+FFFD, as TextDecoder does) */
  decode(ids: number[], opts: { removeSpecial?: boolean; special?: boolean } = {}): string {
    return fromBinary(this.decodeBytes(ids, opts));
  }
}

/**
 * Streaming detokenizer: feed generated ids, get text whose characters are complete (a character
 * split across byte tokens is held back until its last byte arrives).
 */
export class StreamDecoder {
  private readonly td = new TextDecoder('utf-8', { ignoreBOM: true });
  constructor(
    private readonly tok: SpmTokenizer,
    private readonly special = false,
  ) {}
  push(id: number): string {
    return this.td.decode(binaryToBytes(this.tok.pieceBytes(id, this.special)), { stream: true });
  }
  flush(): string {
    return this.td.decode();
  }
}
