/**
 * GBNF grammars (llama.cpp's `grammar` field) and the recognizer that constrained sampling runs.
 *
 * Syntax, as llama.cpp's grammar parser reads it: `name ::= alternatives` rules, `|` between
 * alternatives, "literals" with \n \r \t \" \\ \xHH \uHHHH \UHHHHHHHH escapes, [a-z0-9_] classes and
 * [^…] negated ones, `.` (any character), rule names, ( groups ), and the repetitions `*`, `+`, `?`,
 * `{m}`, `{m,}`, `{m,n}`; `#` comments. The start rule is `root`.
 *
 * The recognizer keeps the set of parse stacks that the text so far allows (llama.cpp's method): each
 * stack is a linked list of positions in rule alternatives, its top always a character class. A code
 * point advances every stack whose top accepts it; a stack that runs out has matched the whole grammar.
 * States are immutable, so a candidate token can be tried without disturbing the current one.
 */

export class GrammarError extends Error {
  override name = 'GrammarError';
}

/** a terminal: sorted code point ranges [lo, hi] (inclusive), or their complement */
interface Chars {
  t: 'chars';
  ranges: number[];
  negate: boolean;
}
interface Ref {
  t: 'ref';
  rule: number;
}
type Elem = Chars | Ref;
type Alt = Elem[];

export interface CompiledGrammar {
  rules: Alt[][];
  names: string[];
  root: number;
}

// ── parser ──────────────────────────────────────────────────────────────────────────────────────

const MAX_REPEAT = 10_000;

export function parseGbnf(src: string): CompiledGrammar {
  const rules: Alt[][] = [];
  const names: string[] = [];
  const ids = new Map<string, number>();
  const defined = new Set<number>();
  const firstUse = new Map<number, number>();
  let pos = 0;
  const fail = (msg: string, at = pos): never => {
    const line = src.slice(0, at).split('\n').length;
    throw new GrammarError(`grammar line ${line}, offset ${at}: ${msg}`);
  };
  const idOf = (name: string): number => {
    let id = ids.get(name);
    if (id === undefined) {
      id = rules.length;
      ids.set(name, id);
      names.push(name);
      rules.push([]);
    }
    return id;
  };
  const fresh = (base: string): number => {
    let k = 1;
    while (ids.has(`${base}-${k}`)) k++;
    return idOf(`${base}-${k}`);
  };
  const skip = (newlines: boolean) => {
    for (;;) {
      const c = src[pos];
      if (c === '#') while (pos < src.length && src[pos] !== '\n') pos++;
      else if (c === ' ' || c === '\t' || c === '\r' || (newlines && c === '\n')) pos++;
      else break;
    }
  };
  const isWord = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_-]/.test(c);
  const name = (): string => {
    const s = pos;
    while (isWord(src[pos])) pos++;
    if (s === pos) fail(`expected a rule name, found ${JSON.stringify(src[pos] ?? 'end of grammar')}`);
    return src.slice(s, pos);
  };
  const escaped = (): number => {
    const c = src[pos++];
    const hex = (n: number) => {
      const h = src.slice(pos, pos + n);
      if (!/^[0-9a-fA-F]+$/.test(h) || h.length !== n) fail(`bad \\${c} escape`);
      pos += n;
      return parseInt(h, 16);
    };
    switch (c) {
      case 'n': return 10;
      case 'r': return 13;
      case 't': return 9;
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      case '\\': case '"': case '[': case ']': case '-': case '^': return c.codePointAt(0)!;
      default: return fail(`unknown escape \\${c ?? ''}`);
    }
  };
  const char = (): number => {
    if (pos >= src.length) fail('unexpected end of grammar');
    if (src[pos] === '\\') {
      pos++;
      return escaped();
    }
    const cp = src.codePointAt(pos)!;
    pos += cp > 0xffff ? 2 : 1;
    return cp;
  };
  const seq = (rule: string, nested: boolean): Alt[] => {
    const alts: Alt[] = [[]];
    for (;;) {
      skip(nested);
      const c = src[pos];
      if (c === undefined || (!nested && c === '\n')) break;
      if (c === ')') {
        if (!nested) fail('unmatched )');
        break;
      }
      if (c === '|') {
        pos++;
        alts.push([]);
        skip(true);
        continue;
      }
      const alt = alts[alts.length - 1]!;
      let elem: Elem[];
      if (c === '"') {
        pos++;
        elem = [];
        while (src[pos] !== '"') {
          if (pos >= src.length) fail('unterminated "literal"');
          const cp = char();
          elem.push({ t: 'chars', ranges: [cp, cp], negate: false });
        }
        pos++;
      } else if (c === '[') {
        pos++;
        const negate = src[pos] === '^';
        if (negate) pos++;
        const ranges: number[] = [];
        while (src[pos] !== ']') {
          if (pos >= src.length) fail('unterminated [class]');
          const lo = char();
          let hi = lo;
          if (src[pos] === '-' && src[pos + 1] !== ']') {
            pos++;
            hi = char();
          }
          if (hi < lo) fail(`range ${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)} is backwards`);
          ranges.push(lo, hi);
        }
        pos++;
        elem = [{ t: 'chars', ranges, negate }];
      } else if (c === '.') {
        pos++;
        elem = [{ t: 'chars', ranges: [], negate: true }];
      } else if (c === '(') {
        pos++;
        const id = fresh(rule);
        rules[id] = seq(rule, true);
        defined.add(id);
        if (src[pos] !== ')') fail('expected )');
        pos++;
        elem = [{ t: 'ref', rule: id }];
      } else if (isWord(c)) {
        const at = pos;
        const id = idOf(name());
        if (!firstUse.has(id)) firstUse.set(id, at);
        elem = [{ t: 'ref', rule: id }];
      } else return fail(`unexpected ${JSON.stringify(c)}`);
      // repetitions apply to the last element (a literal's last character, as llama.cpp does for one char;
      // a multi-character literal is grouped first so that "ab"* repeats "ab")
      skip(false);
      let rep = src[pos];
      while (rep === '*' || rep === '+' || rep === '?' || rep === '{') {
        let min = 0, max = Infinity;
        pos++;
        if (rep === '+') min = 1;
        else if (rep === '?') max = 1;
        else if (rep === '{') {
          const m = /^\s*(\d+)\s*(?:(,)\s*(\d*)\s*)?\}/.exec(src.slice(pos)) ?? fail('bad {m,n} repetition');
          min = Number(m[1]);
          max = m[2] ? (m[3] ? Number(m[3]) : Infinity) : min;
          if (max < min || min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) fail(`repetition {${m[1]},${m[3] ?? ''}} is out of range`);
          pos += m[0].length;
        }
        const item = fresh(rule);
        rules[item] = [elem];
        defined.add(item);
        elem = [repeat(item, min, max, rule)];
        skip(false);
        rep = src[pos];
      }
      alt.push(...elem);
    }
    return alts;
  };
  // x{min,max}: min copies of x, then (max − min) optional ones nested, or x* for an open end
  const repeat = (item: number, min: number, max: number, rule: string): Ref => {
    const id = fresh(rule);
    const x: Ref = { t: 'ref', rule: item };
    const alt: Alt = Array.from({ length: min }, () => x);
    if (max === Infinity) {
      const star = fresh(rule);
      rules[star] = [[x, { t: 'ref', rule: star }], []];
      defined.add(star);
      alt.push({ t: 'ref', rule: star });
    } else {
      let tail: Alt = [];
      for (let k = 0; k < max - min; k++) {
        const opt = fresh(rule);
        rules[opt] = [[x, ...tail], []];
        defined.add(opt);
        tail = [{ t: 'ref', rule: opt }];
      }
      alt.push(...tail);
    }
    rules[id] = [alt];
    defined.add(id);
    return { t: 'ref', rule: id };
  };
  skip(true);
  while (pos < src.length) {
    const at = pos;
    const n = name();
    skip(false);
    if (src.slice(pos, pos + 3) !== '::=') fail(`expected ::= after rule name '${n}'`);
    pos += 3;
    const id = idOf(n);
    if (defined.has(id)) fail(`rule '${n}' is defined twice`, at);
    rules[id] = seq(n, false);
    defined.add(id);
    skip(true);
  }
  for (const [id, at] of firstUse) if (!defined.has(id)) fail(`rule '${names[id]}' is used but not defined`, at);
  const root = ids.get('root');
  if (root === undefined) throw new GrammarError('grammar has no root rule');
  checkLeftRecursion(rules, names);
  return { rules, names, root };
}

/** a rule that can reach itself without consuming a character would loop: refuse it (llama.cpp does) */
function checkLeftRecursion(rules: Alt[][], names: string[]): void {
  const nullable = new Array<boolean>(rules.length).fill(false);
  for (let changed = true; changed; ) {
    changed = false;
    rules.forEach((alts, r) => {
      if (!nullable[r] && alts.some((a) => a.every((e) => e.t === 'ref' && nullable[e.rule]))) changed = nullable[r] = true;
    });
  }
  const state = new Uint8Array(rules.length); // 0 new, 1 on the path, 2 done
  const visit = (r: number) => {
    if (state[r] === 2) return;
    if (state[r] === 1) throw new GrammarError(`rule '${names[r]}' is left-recursive (it can reach itself without consuming a character)`);
    state[r] = 1;
    for (const alt of rules[r]!)
      for (const e of alt) {
        if (e.t === 'chars') break;
        visit(e.rule);
        if (!nullable[e.rule]) break;
      }
    state[r] = 2;
  };
  rules.forEach((_, r) => visit(r));
}

// ── recognizer ──────────────────────────────────────────────────────────────────────────────────

/** a parse stack: the element `alt[i]` to match next, then the rest (`next`); null: all matched */
interface Frame {
  alt: Alt;
  i: number;
  next: Frame | null;
}

const MAX_STACKS = 4096;

function matches(c: Chars, cp: number): boolean {
  let inside = false;
  for (let k = 0; k < c.ranges.length; k += 2) if (cp >= c.ranges[k]! && cp <= c.ranges[k + 1]!) inside = true;
  return inside !== c.negate;
}

/**
 * The set of stacks after some text. `accept(cp)` gives the state after one more code point (empty
 * when the grammar rejects it); `done` says the text so far is a whole sentence of the grammar;
 * `final` that nothing may follow.
 */
export class GrammarState {
  private constructor(
    readonly g: CompiledGrammar,
    /** stacks whose top is a character class */
    private readonly stacks: Frame[],
    readonly done: boolean,
  ) {}

  static start(g: CompiledGrammar): GrammarState {
    const out: Frame[] = [];
    const done = expand(g, { alt: [{ t: 'ref', rule: g.root }], i: 0, next: null }, out, 0);
    return new GrammarState(g, out, done);
  }

  get dead(): boolean {
    return this.stacks.length === 0 && !this.done;
  }
  get final(): boolean {
    return this.stacks.length === 0;
  }

  /** `merge`: drop duplicate stacks (for states that are kept; a vocabulary walk's throwaway states skip it) */
  accept(cp: number, merge = true): GrammarState {
    const out: Frame[] = [];
    let done = false;
    for (const s of this.stacks) if (matches(s.alt[s.i] as Chars, cp)) done = expand(this.g, { alt: s.alt, i: s.i + 1, next: s.next }, out, 0) || done;
    if (out.length > MAX_STACKS) throw new GrammarError(`the grammar is too ambiguous: over ${MAX_STACKS} parses of the text so far`);
    return new GrammarState(this.g, merge ? dedupe(out) : out, done);
  }

  /** the state after a string (code points), or undefined where the grammar rejects it */
  acceptText(cps: ArrayLike<number>): GrammarState | undefined {
    let s: GrammarState = this;
    for (let k = 0; k < cps.length; k++) {
      s = s.accept(cps[k]!);
      if (s.dead) return undefined;
    }
    return s;
  }
}

/** push every stack `f` can become whose top is a character class; true if one of them is empty */
function expand(g: CompiledGrammar, f: Frame | null, out: Frame[], depth: number): boolean {
  if (depth > 10_000) throw new GrammarError('grammar nesting is too deep');
  while (f && f.i >= f.alt.length) f = f.next;
  if (!f) return true;
  const e = f.alt[f.i]!;
  if (e.t === 'chars') {
    out.push(f);
    return false;
  }
  const rest: Frame = { alt: f.alt, i: f.i + 1, next: f.next };
  let done = false;
  for (const alt of g.rules[e.rule]!) done = expand(g, { alt, i: 0, next: rest }, out, depth + 1) || done;
  return done;
}

/** stacks that are the same all the way down, by identity of their frames' positions */
function dedupe(stacks: Frame[]): Frame[] {
  if (stacks.length < 2) return stacks;
  const seen = new Set<string>();
  const ids = new Map<Alt, number>();
  const key = (f: Frame | null): string => {
    let k = '';
    for (; f; f = f.next) {
      let id = ids.get(f.alt);
      if (id === undefined) ids.set(f.alt, (id = ids.size));
      k += `${id}.${f.i},`;
    }
    return k;
  };
  return stacks.filter((s) => {
    const k = key(s);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
