/**
 * Constrained sampling: a grammar over the tokenizer's vocabulary. Each step either keeps the token
 * the sampler drew (when the grammar accepts its text) or masks every token the grammar rejects and
 * draws again, so an unconstrained choice costs one check and a constrained one a walk of the
 * vocabulary's trie (tokens that share a prefix share the work; a rejected prefix prunes its subtree).
 *
 * A token's text is what the stream decoder prints for it (`pieceBytes`). Tokens that print nothing
 * (control tokens) and byte tokens that are not a whole UTF-8 character are never allowed; an
 * end-of-generation token is allowed exactly when the text so far is a whole sentence of the grammar,
 * and is the only choice once nothing may follow.
 *
 * Compiled grammars are cached by their text; vocabulary tries by tokenizer.
 */
import type { SpmTokenizer } from '../tokenizer/spm.js';
import { binaryToBytes } from '../tokenizer/spm.js';
import { GrammarError, GrammarState, parseGbnf, type CompiledGrammar } from './gbnf.js';

interface TrieNode {
  children: Map<number, TrieNode>;
  ids: number[];
}

const tries = new WeakMap<SpmTokenizer, { root: TrieNode; cps: (Int32Array | undefined)[] }>();
const compiled = new Map<string, CompiledGrammar>();
const MAX_CACHED = 64;

/** a grammar's compiled form, parsed once per text (the 64 most recent are kept) */
export function compileGrammar(text: string): CompiledGrammar {
  let g = compiled.get(text);
  if (g) {
    compiled.delete(text);
    compiled.set(text, g);
    return g;
  }
  g = parseGbnf(text);
  compiled.set(text, g);
  if (compiled.size > MAX_CACHED) compiled.delete(compiled.keys().next().value!);
  return g;
}

// ignoreBOM: a token may be U+FEFF itself, which the default decoder would drop from its text
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function vocabTrie(tok: SpmTokenizer) {
  let t = tries.get(tok);
  if (t) return t;
  const root: TrieNode = { children: new Map(), ids: [] };
  const cps: (Int32Array | undefined)[] = [];
  for (let id = 0; id < tok.pieces.length; id++) {
    const bytes = binaryToBytes(tok.pieceBytes(id));
    let text: string | undefined;
    try {
      text = bytes.length ? utf8.decode(bytes) : undefined;
    } catch {
      text = undefined; // part of a character
    }
    if (!text || tok.eog.has(id)) continue;
    const c = Int32Array.from([...text], (ch) => ch.codePointAt(0)!);
    cps[id] = c;
    let n = root;
    for (const cp of c) {
      let m = n.children.get(cp);
      if (!m) n.children.set(cp, (m = { children: new Map(), ids: [] }));
      n = m;
    }
    n.ids.push(id);
  }
  t = { root, cps };
  tries.set(tok, t);
  return t;
}

export class TokenConstraint {
  private state: GrammarState;
  private readonly trie: ReturnType<typeof vocabTrie>;
  private readonly eog: number;

  /** tokens that end the text as an end-of-generation token does: the eog set, and `ends` */
  private readonly ends: Set<number>;

  constructor(
    private readonly tok: SpmTokenizer,
    grammar: string,
    /** more tokens that may end the grammar's text, the first of them the one to end with (a tool call's `<|/tool_call|>`) */
    ends: number[] = [],
  ) {
    this.state = GrammarState.start(compileGrammar(grammar));
    this.trie = vocabTrie(tok);
    this.ends = new Set([...ends, ...tok.eog]);
    this.eog = ends[0] ?? (tok.eog.has(tok.eos) ? tok.eos : [...tok.eog][0] ?? -1);
  }

  /** the text so far is a whole sentence of the grammar */
  get done(): boolean {
    return this.state.done;
  }
  /** nothing may follow: the next token must end generation */
  get final(): boolean {
    return this.state.final;
  }
  /** the token to end with */
  get endToken(): number {
    if (this.eog < 0) throw new GrammarError('the vocabulary has no end-of-generation token to end the grammar with');
    return this.eog;
  }

  allows(id: number): boolean {
    if (this.ends.has(id)) return this.state.done;
    const c = this.trie.cps[id];
    return c !== undefined && this.state.acceptText(c) !== undefined;
  }

  /** the logits with every token the grammar rejects set to −Infinity */
  mask(logits: Float32Array): Float32Array {
    const out = new Float32Array(logits.length).fill(-Infinity);
    const walk = (n: TrieNode, s: GrammarState) => {
      for (const id of n.ids) out[id] = logits[id]!;
      for (const [cp, m] of n.children) {
        const next = s.accept(cp, false);
        if (!next.dead) walk(m, next);
      }
    };
    walk(this.trie.root, this.state);
    if (this.state.done) for (const id of this.ends) out[id] = logits[id]!;
    if (!out.some((x) => x > -Infinity)) throw new GrammarError('no token of the vocabulary can continue the grammar here');
    return out;
  }

  /** move past a chosen token (one the grammar allows) */
  advance(id: number): void {
    if (this.ends.has(id)) return;
    const next = this.state.acceptText(this.trie.cps[id] ?? []);
    if (!next) throw new GrammarError(`token ${id} does not continue the grammar`);
    this.state = next;
  }
}
