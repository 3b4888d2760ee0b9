// Grammars: the GBNF parser and recognizer, JSON Schema → GBNF, and constrained generation on the
// embedded demo model (fast-check: random schemas and seeds; every completion parses and validates).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GrammarError, GrammarState, parseGbnf } from '../src/grammar/gbnf.js';
import { jsonObjectGrammar, jsonSchemaGrammar } from '../src/grammar/json-schema.js';
import { loadModel, type Model } from '../src/api.js';
import { demoModelPath } from '../src/demo-model.js';

/** 'done' (a whole sentence), 'prefix' (may go on) or 'no' */
function run(grammar: string, text: string): 'done' | 'prefix' | 'no' {
  const s = GrammarState.start(parseGbnf(grammar)).acceptText([...text].map((c) => c.codePointAt(0)!));
  return s ? (s.done ? 'done' : 'prefix') : 'no';
}

describe('GBNF', () => {
  it('literals, classes, negation, any, groups, alternatives, * + ? {m} {m,} {m,n}, escapes and comments', () => {
    const g = `
      # a comment
      root ::= greeting (" " name)+ "!"? tail
      greeting ::= "hi" | "hello"
      name ::= [A-Z] [a-z]{1,3}
      tail ::= digits{0,1} | [^0-9\\n]
      digits ::= [0-9]{2,}
    `;
    expect(run(g, 'hi Bob')).toBe('done');
    expect(run(g, 'hello Al Bea!')).toBe('done');
    expect(run(g, 'hello Al Bea!42')).toBe('done');
    expect(run(g, 'hi Bob!4')).toBe('prefix');
    expect(run(g, 'hi Bobbbbb')).toBe('no'); // four lowercase letters at most, then one tail character
    expect(run(g, 'hi bob')).toBe('no');
    expect(run(g, 'hi Bob!x')).toBe('done');
    expect(run('root ::= "\\x41\\u00e9\\n" .', 'Aé\nz')).toBe('done');
    expect(run('root ::= ("ab")*', 'abab')).toBe('done');
    expect(run('root ::= ("ab")*', 'aba')).toBe('prefix');
  });
  it('end states: done when a sentence is complete, final when nothing may follow', () => {
    const g = parseGbnf('root ::= "a" "b"?');
    const a = GrammarState.start(g).accept(97);
    expect([a.done, a.final]).toEqual([true, false]);
    const ab = a.accept(98);
    expect([ab.done, ab.final]).toEqual([true, true]);
    expect(ab.accept(98).dead).toBe(true);
  });
  it('refuses bad grammars by line and offset: undefined rules, left recursion, syntax', () => {
    expect(() => parseGbnf('root ::= x')).toThrow(/grammar line 1, offset 9: rule 'x' is used but not defined/);
    expect(() => parseGbnf('root ::= root "a" | "b"')).toThrow(/rule 'root' is left-recursive/);
    expect(() => parseGbnf('root ::= a\na ::= "x"? root')).toThrow(/left-recursive/);
    expect(() => parseGbnf('root ::= "abc')).toThrow(/unterminated "literal"/);
    expect(() => parseGbnf('root := "a"')).toThrow(/expected ::= after rule name 'root'/);
    expect(() => parseGbnf('start ::= "a"')).toThrow(/no root rule/);
    expect(() => parseGbnf('root ::= [z-a]')).toThrow(GrammarError);
    expect(() => parseGbnf('root ::= "a"{3,1}')).toThrow(/bad \{m,n\}|out of range/);
  });
});

describe('JSON Schema → GBNF', () => {
  const person = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 5 },
      age: { type: 'integer' },
      tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 3 },
      ok: { type: 'boolean' },
      score: { anyOf: [{ type: 'number' }, { type: 'null' }] },
    },
    required: ['name', 'age'],
    additionalProperties: false,
  };
  it('accepts what the schema allows (optional properties skippable, in order) and nothing else', () => {
    const g = jsonSchemaGrammar(person);
    for (const t of ['{"name":"bob","age":3}', '{"name":"","age":-12,"tags":[],"ok":true,"score":null}', '{"name":"a\\"b","age":0,"score":-1.5e3}', '{"name":"x","age":7,"tags":["a","b","a"]}'])
      expect(run(g, t), t).toBe('done');
    for (const t of ['{"age":3}', '{"name":"bobbyb","age":3}', '{"name":"b","age":03}', '{"name":"b","age":1,"tags":["c"]}', '{"name":"b","age":1,"tags":["a","a","a","a"]}', '{"age":1,"name":"b"}', '{"name":"b","age":1,"extra":1}'])
      expect(run(g, t), t).toBe('no');
  });
  it('$defs and $ref, const, type lists, json_object', () => {
    const g = jsonSchemaGrammar({ $defs: { pt: { type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] } }, type: 'array', items: { $ref: '#/$defs/pt' }, maxItems: 2 });
    expect(run(g, '[{"x":1},{"x":2}]')).toBe('done');
    expect(run(jsonSchemaGrammar({ const: { a: [1, 'z'] } }), '{"a":[1,"z"]}')).toBe('done');
    expect(run(jsonSchemaGrammar({ type: ['integer', 'null'] }), 'null')).toBe('done');
    expect(run(jsonObjectGrammar(), '{"a":[1,2,{"b":null}],"c":"x\\n"}')).toBe('done');
    expect(run(jsonObjectGrammar(), '[1]')).toBe('no');
  });
  it('refuses keywords it would otherwise ignore, by name and place', () => {
    expect(() => jsonSchemaGrammar({ type: 'string', pattern: '^a' })).toThrow(/: keyword 'pattern' is not supported/);
    expect(() => jsonSchemaGrammar({ type: 'object', properties: { d: { type: 'string', format: 'date' } } })).toThrow(/\/properties\/d: keyword 'format' is not supported/);
    expect(() => jsonSchemaGrammar({ type: 'object', properties: { a: {} }, additionalProperties: true })).toThrow(/additionalProperties must be false/);
    expect(() => jsonSchemaGrammar({ type: 'object', properties: {}, required: ['z'] })).toThrow(/required property 'z' is not in properties/);
    expect(() => jsonSchemaGrammar({ $ref: 'http://x/y' })).toThrow(/\$ref 'http:\/\/x\/y' is not supported/);
    expect(() => jsonSchemaGrammar({ type: 'integer', minimum: 3 })).toThrow(/keyword 'minimum'/);
  });
});

// ── constrained generation on the demo model ─────────────────────────────────────────────────

type S = Record<string, unknown>;
/** an independent validator for the subset the generator draws */
function valid(s: S, v: unknown): boolean {
  if (s.enum) return (s.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(v));
  if (s.anyOf) return (s.anyOf as S[]).some((a) => valid(a, v));
  switch (s.type) {
    case 'null': return v === null;
    case 'boolean': return typeof v === 'boolean';
    case 'integer': return Number.isInteger(v);
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'string': return typeof v === 'string' && v.length <= ((s.maxLength as number | undefined) ?? Infinity);
    case 'array': return Array.isArray(v) && v.length <= ((s.maxItems as number | undefined) ?? Infinity) && v.every((x) => valid(s.items as S, x));
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
      const props = s.properties as Record<string, S>;
      const o = v as Record<string, unknown>;
      return Object.keys(o).every((k) => k in props && valid(props[k]!, o[k])) && ((s.required as string[]) ?? []).every((k) => k in o);
    }
  }
  return false;
}

const leaf = fc.oneof(
  fc.constant<S>({ type: 'integer' }),
  fc.constant<S>({ type: 'number' }),
  fc.constant<S>({ type: 'boolean' }),
  fc.constant<S>({ type: 'null' }),
  fc.integer({ min: 0, max: 10 }).map<S>((n) => ({ type: 'string', maxLength: n })),
  fc.uniqueArray(fc.constantFrom('red', 'green', 'blue', 'yes', 'no', 'maybe'), { minLength: 1, maxLength: 3 }).map<S>((e) => ({ enum: e })),
);
const schemaArb: fc.Arbitrary<S> = fc.letrec<{ node: S }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ items: tie('node'), maxItems: fc.integer({ min: 0, max: 3 }) }).map<S>((r) => ({ type: 'array', ...r })),
    fc.tuple(tie('node'), tie('node')).map<S>(([a, b]) => ({ anyOf: [a, b] })),
    fc
      .uniqueArray(fc.tuple(fc.constantFrom('name', 'age', 'city', 'list', 'flag', 'kind'), tie('node'), fc.boolean()), { minLength: 1, maxLength: 3, selector: (t) => t[0] })
      .map<S>((ps) => ({ type: 'object', properties: Object.fromEntries(ps.map(([k, s]) => [k, s])), required: ps.filter((p) => p[2]).map((p) => p[0]), additionalProperties: false })),
  ),
})).node.map((s) => (s.type === 'object' ? s : { type: 'object', properties: { value: s }, required: ['value'], additionalProperties: false }));

describe('constrained generation (demo model)', () => {
  let model: Model;
  const gen = async (grammar: string, seed: number, prompt = 'The jury said that', maxTokens = 400) => {
    let text = '';
    const g = model.generate(prompt, { grammar, temperature: 0.8, seed, maxTokens });
    for await (const t of g) text += t;
    return { text, stats: await g.stats };
  };
  it('a finite grammar: exactly one of its sentences, then the end', async () => {
    model = await loadModel(demoModelPath(), { threads: 2 });
    for (const seed of [1, 2, 3]) {
      const r = await gen('root ::= "yes" | "no" | "maybe so"', seed);
      expect(['yes', 'no', 'maybe so']).toContain(r.text);
      expect(r.stats.finishReason).toBe('stop');
    }
  }, 60_000);
  it('fast-check: random schemas and seeds — every completion ends, parses and validates', async () => {
    await fc.assert(
      fc.asyncProperty(schemaArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (schema, seed) => {
        const r = await gen(jsonSchemaGrammar(schema), seed);
        expect(r.stats.finishReason, r.text).toBe('stop');
        const v = JSON.parse(r.text) as unknown;
        expect(valid(schema, v), `${JSON.stringify(schema)} → ${r.text}`).toBe(true);
      }),
      { numRuns: 10 },
    );
    await model.close();
  }, 240_000);
});
