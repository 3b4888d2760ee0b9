/**
 * GPT-2-style byte-level BPE, as llama.cpp runs it (tokenizer.ggml.model = "gpt2": Phi-4-mini, Phi-4).
 *
 * Three steps, each as llama.cpp does it (src/llama-vocab.cpp llm_tokenizer_bpe_session, src/unicode.cpp):
 * 1. pre-tokenize the text into words with the pre-tokenizer's rules (`tokenizer.ggml.pre`): `gpt-2`
 *    and `dbrx` are llama.cpp's hand-written splitters for their regexes; `gpt-4o` is its general path,
 *    a regex over the text with every code point above 127 "collapsed" to one byte per Unicode
 *    category (so its regex sees all non-ASCII letters alike, and not combining marks as letters);
 * 2. map each word's UTF-8 bytes to the printable code points of GPT-2's byte↔unicode table;
 * 3. merge adjacent symbols, lowest merge rank first (leftmost on ties), then look the pieces up.
 * Unicode categories come from the JS engine's Unicode tables (\p{…}), llama.cpp's from its own
 * generated tables; they agree except on code points assigned in different Unicode versions.
 * Not implemented: other pre-tokenizers (refused by name), and tiktoken's own regex semantics.
 */
import { Heap } from './heap.js';

/** llama.cpp's code point flags (unicode_cpt_flags): one category bit, plus whitespace */
export const enum CptFlag {
  NUMBER = 1 << 0,
  LETTER = 1 << 1,
  SEPARATOR = 1 << 2,
  ACCENT_MARK = 1 << 3,
  PUNCTUATION = 1 << 4,
  SYMBOL = 1 << 5,
  CONTROL = 1 << 6,
  WHITESPACE = 1 << 8,
}
const CATEGORY = CptFlag.NUMBER | CptFlag.LETTER | CptFlag.SEPARATOR | CptFlag.ACCENT_MARK | CptFlag.PUNCTUATION | CptFlag.SYMBOL | CptFlag.CONTROL;

const RE = {
  N: /\p{N}/u, L: /\p{L}/u, Z: /\p{Z}/u, M: /\p{M}/u, P: /\p{P}/u, S: /\p{S}/u,
  C: /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u, // unassigned code points (Cn) have no category, as in llama.cpp's tables
  WS: /\p{White_Space}/u,
};
const flagCache = new Map<number, number>(); // above the BMP
const bmpFlags = new Uint16Array(0x10000); // flags + 1 once known (0: not looked up yet)

/** the flags of a code point (0: unassigned) */
export function cptFlags(cp: number): number {
  if (cp < 0x10000) {
    const known = bmpFlags[cp]!;
    if (known) return known - 1;
  }
  let f = flagCache.get(cp);
  if (f !== undefined) return f;
  f = lookUpFlags(cp);
  if (cp < 0x10000) bmpFlags[cp] = f + 1;
  else flagCache.set(cp, f);
  return f;
}

function lookUpFlags(cp: number): number {
  let f: number;
  const c = String.fromCodePoint(cp);
  f = RE.N.test(c) ? CptFlag.NUMBER : RE.L.test(c) ? CptFlag.LETTER : RE.Z.test(c) ? CptFlag.SEPARATOR : RE.M.test(c) ? CptFlag.ACCENT_MARK
    : RE.P.test(c) ? CptFlag.PUNCTUATION : RE.S.test(c) ? CptFlag.SYMBOL : RE.C.test(c) ? CptFlag.CONTROL : 0;
  if (RE.WS.test(c)) f |= CptFlag.WHITESPACE;
  return f;
}

// ── pre-tokenizers ────────────────────────────────────────────────────────────────────────────

export const BPE_PRE_TOKENIZERS = ['gpt-2', 'dbrx', 'gpt-4o'] as const;
export type BpePre = (typeof BPE_PRE_TOKENIZERS)[number];

/** words of `text` (code points in, strings out) */
export function preTokenize(text: string, pre: BpePre): string[] {
  // code points (a lone surrogate stands for itself), and where each starts in the string
  const all = new Int32Array(text.length), u16 = new Int32Array(text.length + 1);
  let k = 0;
  for (let i = 0; i < text.length; k++) {
    const c = text.codePointAt(i)!;
    all[k] = c;
    u16[k] = i;
    i += c > 0xffff ? 2 : 1;
  }
  u16[k] = text.length;
  const cpts = all.subarray(0, k);
  const lens = pre === 'gpt-2' ? splitGpt2(cpts) : pre === 'dbrx' ? splitLlama3(cpts) : splitCollapsed(cpts, GPT4O_COLLAPSED, GPT4O_STICKY);
  const words: string[] = [];
  let at = 0;
  for (const n of lens) {
    words.push(text.slice(u16[at], u16[at + n]));
    at += n;
  }
  return words;
}

const isAsciiAlnum = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);

/**
 * `text` in pieces of about `size` UTF-16 units whose words are the words of the whole: cut only
 * before a " " or "\n" that has an ASCII letter or digit on both sides. Every pre-tokenizer here
 * ends a word there (letter and digit runs stop at the space; the space starts the next word, and no
 * rule reaches back over a letter or digit), and none looks ahead past such a run, so the words on
 * either side do not depend on the other side. A text without such places stays whole.
 */
export function* preTokenChunks(text: string, size = 32768): Generator<string> {
  let start = 0;
  while (text.length - start > size) {
    let cut = -1;
    for (let i = start + size; i < text.length - 1 && cut < 0; i++) {
      const c = text.charCodeAt(i);
      if ((c === 0x20 || c === 0x0a) && isAsciiAlnum(text.charCodeAt(i - 1)) && isAsciiAlnum(text.charCodeAt(i + 1))) cut = i;
    }
    if (cut < 0) break;
    yield text.slice(start, cut);
    start = cut;
  }
  yield start ? text.slice(start) : text;
}

const OUT = -1;
const isRN = (c: number) => c === 0x0d || c === 0x0a;
const lower = (c: number) => (c < 0 ? c : String.fromCodePoint(c).toLowerCase().codePointAt(0)!);

/** a contraction 's 't 'm 'd 're 've 'll at i (case-insensitive when `fold`): its length, or 0 */
function contraction(cp: (i: number) => number, i: number, end: number, fold: boolean): number {
  if (cp(i) !== 0x27 || i + 1 >= end) return 0;
  const f = fold ? lower : (c: number) => c;
  const a = f(cp(i + 1));
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return 2; // s t m d
  if (i + 2 >= end) return 0;
  const b = f(cp(i + 2));
  return (a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c) ? 3 : 0; // re ve ll
}

/** what llama.cpp's hand-written splitters share: code points and flags by position (OUT / 0 past the
 *  end), and `cut(to)`: the text since the last cut becomes a word */
function scanner(cpts: Int32Array) {
  const end = cpts.length;
  const out: number[] = [];
  const flags = new Uint16Array(end);
  for (let i = 0; i < end; i++) flags[i] = cptFlags(cpts[i]!);
  let prev = 0;
  return {
    end,
    out,
    cp: (i: number) => (i >= 0 && i < end ? cpts[i]! : OUT),
    fl: (i: number) => (i >= 0 && i < end ? flags[i]! : 0),
    cut: (to: number) => {
      if (to > prev) out.push(to - prev);
      prev = to;
    },
  };
}

/** 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ — llama.cpp's hand-written form */
function splitGpt2(cpts: Int32Array): number[] {
  const { end, cp, fl, cut, out } = scanner(cpts);
  for (let pos = 0; pos < end; ) {
    const c = cp(pos);
    const k = contraction(cp, pos, end, false);
    if (k) {
      cut((pos += k));
      continue;
    }
    let f2 = c === 0x20 ? fl(pos + 1) : fl(pos);
    const run = (ok: (f: number) => boolean) => {
      pos += c === 0x20 ? 1 : 0;
      while (ok(f2)) f2 = fl(++pos);
      cut(pos);
    };
    if (f2 & CptFlag.LETTER) {
      run((f) => (f & CptFlag.LETTER) !== 0);
      continue;
    }
    if (f2 & CptFlag.NUMBER) {
      run((f) => (f & CptFlag.NUMBER) !== 0);
      continue;
    }
    const other = (f: number) => !(f & (CptFlag.WHITESPACE | CptFlag.LETTER | CptFlag.NUMBER)) && f !== 0;
    if (other(f2)) {
      run(other);
      continue;
    }
    let ws = 0;
    while (fl(pos + ws) & CptFlag.WHITESPACE) ws++;
    if (ws > 1 && cp(pos + ws) !== OUT) {
      cut((pos += ws - 1)); // \s+(?!\S): leave the last space to the word after it
      continue;
    }
    if (ws > 0) {
      cut((pos += ws));
      continue;
    }
    cut(++pos);
  }
  return out;
}

/** (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ (llama3, dbrx) */
function splitLlama3(cpts: Int32Array): number[] {
  const { end, cp, fl, cut, out } = scanner(cpts);
  for (let pos = 0; pos < end; ) {
    const c = cp(pos), f = fl(pos);
    const k = contraction(cp, pos, end, true);
    if (k) {
      cut((pos += k));
      continue;
    }
    if (!(isRN(c) || f & CptFlag.NUMBER) && (f & CptFlag.LETTER || fl(pos + 1) & CptFlag.LETTER)) {
      pos++;
      while (fl(pos) & CptFlag.LETTER) pos++;
      cut(pos);
      continue;
    }
    if (f & CptFlag.NUMBER) {
      let from = pos;
      while (fl(pos) & CptFlag.NUMBER) if (++pos - from >= 3) cut((from = pos));
      cut(pos);
      continue;
    }
    let f2 = c === 0x20 ? fl(pos + 1) : f;
    const other = (x: number) => !(x & (CptFlag.WHITESPACE | CptFlag.LETTER | CptFlag.NUMBER));
    if (other(f2) && f !== 0) {
      pos += c === 0x20 ? 1 : 0;
      while (other(f2) && f2 !== 0) f2 = fl(++pos);
      while (isRN(cp(pos))) pos++;
      cut(pos);
      continue;
    }
    let ws = 0, lastRN = 0;
    while (fl(pos + ws) & CptFlag.WHITESPACE) {
      if (isRN(cp(pos + ws))) lastRN = pos + ws + 1;
      ws++;
    }
    if (lastRN > 0) {
      cut((pos = lastRN)); // \s*[\r\n]+
      continue;
    }
    if (ws > 1 && cp(pos + ws) !== OUT) {
      cut((pos += ws - 1));
      continue;
    }
    if (ws > 0) {
      cut((pos += ws));
      continue;
    }
    cut(++pos);
  }
  return out;
}

/**
 * The regex path: each code point ≥ 128 becomes one stand-in byte for its category (whitespace 0x0B,
 * number 0xD1, letter 0xD2, punctuation 0xD3, mark 0xD4, symbol 0xD5, other 0xD0) and the regex's
 * \p{…} classes become those bytes plus their ASCII members; matches cut the text, and the text
 * between matches is a word of its own.
 */
const COLLAPSE: Record<number, number> = { [CptFlag.NUMBER]: 0xd1, [CptFlag.LETTER]: 0xd2, [CptFlag.PUNCTUATION]: 0xd3, [CptFlag.ACCENT_MARK]: 0xd4, [CptFlag.SYMBOL]: 0xd5 };
function collapse(cpts: Int32Array): string {
  const codes = new Uint8Array(cpts.length);
  for (let i = 0; i < cpts.length; i++) {
    const c = cpts[i]!;
    if (c < 128) codes[i] = c;
    else {
      const f = cptFlags(c);
      codes[i] = f & CptFlag.WHITESPACE ? 0x0b : (COLLAPSE[f & CATEGORY] ?? 0xd0);
    }
  }
  return LATIN1.decode(codes); // (windows-1252 differs from Latin-1 only at 0x80–0x9F, never used here)
}
const LATIN1 = new TextDecoder('latin1');

// gpt-4o (o200k) as llama.cpp writes it for std::regex: upper/lower letter classes by lookahead,
// contractions spelled out, then \p{L} → [\xD2A-Za-z] and \p{N} → [\xD10-9]
const L = '\\xD2A-Za-z', N = '\\xD10-9';
const CONTRACTION = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?";
const UPPER = `(?:(?=[${L}])[^a-z])`, LOWER = `(?:(?=[${L}])[^A-Z])`;
const GPT4O_COLLAPSED = new RegExp(
  [
    `[^\\r\\n${L}${N}]?${UPPER}*${LOWER}+${CONTRACTION}`,
    `[^\\r\\n${L}${N}]?${UPPER}+${LOWER}*${CONTRACTION}`,
    `[${N}]{1,3}`,
    ` ?[^\\s${L}${N}]+[\\r\\n/]*`,
    '\\s*[\\r\\n]+',
    '\\s+(?!\\S)',
    '\\s+',
  ].join('|'),
  'g',
);

const GPT4O_STICKY = new RegExp(GPT4O_COLLAPSED.source, 'y');

function splitCollapsed(cpts: Int32Array, re: RegExp, sticky: RegExp): number[] {
  const text = collapse(cpts);
  const out: number[] = [];
  // where a match starts right at the last one's end (nearly always), a sticky test() finds it
  // without building a match array; elsewhere exec() searches on, and the skipped text is a word
  let at = 0;
  while (at < text.length) {
    sticky.lastIndex = at;
    if (sticky.test(text) && sticky.lastIndex > at) {
      out.push(sticky.lastIndex - at);
      at = sticky.lastIndex;
      continue;
    }
    re.lastIndex = at;
    let m = re.exec(text);
    while (m && m[0].length === 0) {
      re.lastIndex = m.index + 1;
      m = re.exec(text);
    }
    if (!m) break;
    if (m.index > at) out.push(m.index - at);
    out.push(m[0].length);
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(text.length - at);
  return out;
}

// ── bytes ↔ unicode (GPT-2's table) ───────────────────────────────────────────────────────────

/** byte → the code point GPT-2 prints it as: printable Latin-1 stays, the rest maps to 256 + n */
export const BYTE_TO_CHAR: string[] = (() => {
  const map: string[] = new Array(256);
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCharCode(keep(b) ? b : 256 + n++);
  return map;
})();
export const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const enc = new TextEncoder();
/** a word's UTF-8 bytes as GPT-2 characters */
export function byteEncode(word: string): string {
  let s = '';
  for (const b of enc.encode(word)) s += BYTE_TO_CHAR[b];
  return s;
}

// ── merges ──────────────────────────────────────────────────────────────────────────────────

interface Sym {
  start: number; // offset in the word
  n: number; // length; 0 once merged into its left neighbour
  prev: number;
  next: number;
}
interface Pair {
  left: number;
  right: number;
  rank: number;
  text: string;
}

/** llm_bigram_bpe's order: lowest rank first, then leftmost */
const pairFirst = (a: Pair, b: Pair) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

/**
 * The pieces of one byte-encoded word after its merges: each character starts as a symbol; the
 * adjacent pair with the lowest merge rank is merged until no pair has a rank. `ranks` is keyed
 * "left right". With `ignoreMerges`, a word that is itself a token stays whole.
 */
export function bpeMerge(word: string, ranks: Map<string, number>, isToken: (s: string) => boolean, ignoreMerges = false): string[] {
  if (ignoreMerges && isToken(word)) return [word];
  const chars = Array.from(word);
  const syms: Sym[] = [];
  let at = 0;
  chars.forEach((c, i) => {
    syms.push({ start: at, n: c.length, prev: i - 1, next: i + 1 < chars.length ? i + 1 : -1 });
    at += c.length;
  });
  const text = (s: Sym) => word.substr(s.start, s.n);
  const q = new Heap<Pair>(pairFirst);
  const add = (l: number, r: number) => {
    if (l < 0 || r < 0) return;
    const a = text(syms[l]!), b = text(syms[r]!);
    const rank = ranks.get(`${a} ${b}`);
    if (rank !== undefined) q.push({ left: l, right: r, rank, text: a + b });
  };
  for (let i = 1; i < syms.length; i++) add(i - 1, i);
  while (q.size) {
    const p = q.pop();
    const l = syms[p.left]!, r = syms[p.right]!;
    if (l.n === 0 || r.n === 0 || text(l) + text(r) !== p.text) continue; // outdated
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next]!.prev = p.left;
    add(l.prev, p.left);
    add(p.left, l.next);
  }
  const out: string[] = [];
  for (let i = syms.length ? 0 : -1; i !== -1; i = syms[i]!.next) out.push(text(syms[i]!));
  return out;
}

/** a normal token's text → its bytes (binary string); a character outside the table prints as llama.cpp does */
export function bpeDecodeText(text: string): string {
  let out = '';
  for (const c of text) {
    const b = CHAR_TO_BYTE.get(c);
    if (b !== undefined) out += String.fromCharCode(b);
    else {
      const u = enc.encode(c);
      out += `[UNK_BYTE_0x${[...u].map((x) => x.toString(16).padStart(2, '0')).join('')}${String.fromCharCode(...enc.encode(text))}]`;
    }
  }
  return out;
}
