/**
 * JSON Schema → GBNF, for `response_format: {type: "json_schema"}` and `{type: "json_object"}`.
 *
 * The subset that OpenAI's strict mode allows, and a little more: `type` (object, array, string,
 * number, integer, boolean, null, or a list of them), `properties` with `required` (properties are
 * written in the schema's order; those not required may be left out), `additionalProperties: false`
 * (or absent: no other keys are generated either way), `items`, `minItems`/`maxItems`, `enum`, `const`,
 * `anyOf`/`oneOf`, `$ref` to `#/$defs/…` or `#/definitions/…`, `minLength`/`maxLength` for strings, and
 * the annotations `description`, `title`, `default`, `examples`, `$schema`, `$id`, `strict`. Any other
 * keyword changes what is valid and is refused by name (`pattern`, `format`, `minimum`, …).
 *
 * Output is compact JSON (no whitespace between tokens), strings any JSON string, numbers as JSON
 * writes them with at most 15 integer and 15 fraction digits and a 2-digit exponent (so that every value
 * terminates and is a finite double).
 */
import { GrammarError } from './gbnf.js';

type Schema = Record<string, unknown> | boolean;

const ANNOTATIONS = new Set(['description', 'title', 'default', 'examples', '$schema', '$id', 'strict', '$comment']);
const HONOURED = new Set(['type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'enum', 'const', 'anyOf', 'oneOf', '$ref', '$defs', 'definitions', 'minLength', 'maxLength']);

const PRIMITIVES: Record<string, string> = {
  'json-ws': '', // compact output
  'json-char': '[^"\\\\\\x00-\\x1f] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})',
  'json-string': '"\\"" json-char* "\\""',
  'json-integer': '"-"? ("0" | [1-9] [0-9]{0,14})',
  'json-number': 'json-integer ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,2})?', // finite: below 1e115
  'json-boolean': '"true" | "false"',
  'json-null': '"null"',
  'json-value': 'json-object | json-array | json-string | json-number | json-boolean | json-null',
  'json-object': '"{" (json-string ":" json-value ("," json-string ":" json-value)*)? "}"',
  'json-array': '"[" (json-value ("," json-value)*)? "]"',
};

/** GBNF for any JSON object (response_format json_object) */
export function jsonObjectGrammar(): string {
  return `root ::= json-object\n` + primitives(['json-object']);
}

/** the primitive rules that `used` needs, transitively */
function primitives(used: Iterable<string>): string {
  const need = new Set<string>();
  const add = (n: string) => {
    if (need.has(n) || !(n in PRIMITIVES)) return;
    need.add(n);
    for (const m of PRIMITIVES[n]!.match(/json-[a-z]+/g) ?? []) add(m);
  };
  for (const u of used) add(u);
  return [...need].map((n) => `${n} ::= ${PRIMITIVES[n]}`).join('\n') + '\n';
}

/** GBNF literal for a JSON text */
const lit = (json: string) => '"' + json.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';

export function jsonSchemaGrammar(schema: unknown): string {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new GrammarError('json_schema.schema must be a JSON Schema object');
  const rules = new Map<string, string>();
  const used = new Set<string>();
  const defs = new Map<string, string>(); // $ref → rule name
  const root = schema as Record<string, unknown>;
  const prim = (n: string) => (used.add(n), n);
  let count = 0;
  const fresh = (base: string) => `${base.replace(/[^A-Za-z0-9-]/g, '-').replace(/^-+|-+$/g, '') || 's'}-${++count}`;

  const resolve = (ref: string, at: string): string => {
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    if (!m) throw new GrammarError(`${at}: $ref '${ref}' is not supported (only #/$defs/… and #/definitions/…)`);
    const key = `${m[1]}/${m[2]}`;
    let name = defs.get(key);
    if (name === undefined) {
      const target = (root[m[1]!] as Record<string, unknown> | undefined)?.[m[2]!];
      if (target === undefined) throw new GrammarError(`${at}: $ref '${ref}' points at nothing`);
      name = fresh(`def-${m[2]}`);
      defs.set(key, name);
      rules.set(name, ''); // reserve (recursive schemas)
      rules.set(name, body(target as Schema, `${ref}`));
    }
    return name;
  };

  /** the GBNF expression for a schema at JSON pointer `at` */
  const body = (s: Schema, at: string): string => {
    if (s === true || (typeof s === 'object' && Object.keys(s).length === 0)) return prim('json-value');
    if (s === false) throw new GrammarError(`${at}: the schema false allows nothing`);
    for (const k of Object.keys(s)) if (!HONOURED.has(k) && !ANNOTATIONS.has(k)) throw new GrammarError(`${at}: keyword '${k}' is not supported in structured output`);
    if (s.$ref !== undefined) {
      if (Object.keys(s).some((k) => HONOURED.has(k) && k !== '$ref' && k !== '$defs' && k !== 'definitions')) throw new GrammarError(`${at}: $ref beside other keywords is not supported`);
      return resolve(String(s.$ref), at);
    }
    if (s.const !== undefined) return lit(JSON.stringify(s.const));
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) throw new GrammarError(`${at}: enum must be a non-empty array`);
      return '(' + s.enum.map((v) => lit(JSON.stringify(v))).join(' | ') + ')';
    }
    const alts = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
    if (alts !== undefined) {
      if (!Array.isArray(alts) || alts.length === 0) throw new GrammarError(`${at}: anyOf must be a non-empty array`);
      return '(' + alts.map((a, i) => ref(a, `${at}/anyOf/${i}`)).join(' | ') + ')';
    }
    const type = s.type;
    if (Array.isArray(type)) return '(' + type.map((t) => body({ ...s, type: t }, at)).join(' | ') + ')';
    switch (type) {
      case 'object':
        if (s.properties !== undefined) return objectRule(s, at);
        return s.additionalProperties === false ? '"{}"' : prim('json-object');
      case 'array': {
        const item = s.items === undefined ? prim('json-value') : ref(s.items as Schema, `${at}/items`);
        const min = (s.minItems as number | undefined) ?? 0, max = s.maxItems as number | undefined;
        if (!Number.isInteger(min) || min < 0 || (max !== undefined && (!Number.isInteger(max) || max < min))) throw new GrammarError(`${at}: minItems/maxItems must be whole numbers with min ≤ max`);
        if (max === 0) return '"[]"';
        const rest = max === undefined ? `("," ${item})*` : `("," ${item}){${Math.max(0, min - 1)},${max - 1}}`;
        const some = `${item} ${min > 1 && max === undefined ? `("," ${item}){${min - 1}} ` : ''}${max === undefined && min > 1 ? `("," ${item})*` : rest}`;
        return `"[" ${min === 0 ? `(${some})?` : some} "]"`;
      }
      case 'string': {
        const min = (s.minLength as number | undefined) ?? 0, max = s.maxLength as number | undefined;
        if (min === 0 && max === undefined) return prim('json-string');
        prim('json-char');
        return `"\\"" json-char{${min},${max ?? ''}} "\\""`;
      }
      case 'integer':
        return prim('json-integer');
      case 'number':
        return prim('json-number');
      case 'boolean':
        return prim('json-boolean');
      case 'null':
        return prim('json-null');
      case undefined:
        return prim('json-value');
      default:
        throw new GrammarError(`${at}: type '${String(type)}' is not a JSON Schema type`);
    }
  };
  /** a rule name for a sub-schema (its own rule, so that repetitions and alternatives stay small) */
  const ref = (s: Schema, at: string): string => {
    const b = body(s, at);
    if (/^[A-Za-z0-9-]+$/.test(b)) return b;
    const name = fresh(at);
    rules.set(name, b);
    return name;
  };
  const objectRule = (s: Record<string, unknown>, at: string): string => {
    for (const k of Object.keys(s)) if (!HONOURED.has(k) && !ANNOTATIONS.has(k)) throw new GrammarError(`${at}: keyword '${k}' is not supported in structured output`);
    const props = (s.properties ?? {}) as Record<string, Schema>;
    const required = new Set((s.required as string[] | undefined) ?? []);
    for (const r of required) if (!(r in props)) throw new GrammarError(`${at}: required property '${r}' is not in properties`);
    if (s.additionalProperties !== undefined && s.additionalProperties !== false)
      throw new GrammarError(`${at}: additionalProperties must be false (or absent): other keys are not generated`);
    const keys = Object.keys(props);
    const name = fresh(at || 'root-object');
    if (keys.length === 0) {
      rules.set(name, '"{}"');
      return name;
    }
    const kv = keys.map((k) => `${lit(JSON.stringify(k))} ":" ${ref(props[k]!, `${at}/properties/${k}`)}`);
    // tail[i]: the properties from i on, each after a comma, optional ones skippable
    // (tail[0] is never needed: the first property written has no comma before it)
    const tail: string[] = new Array(keys.length + 1).fill('');
    for (let i = keys.length - 1; i >= 1; i--) {
      const t = fresh(`${name}-after`);
      const next = tail[i + 1] ? ` ${tail[i + 1]}` : '';
      rules.set(t, required.has(keys[i]!) ? `"," ${kv[i]}${next}` : `"," ${kv[i]}${next} | ${tail[i + 1] || '""'}`);
      tail[i] = t;
    }
    // the first property written: any optional one up to (and including) the first required one
    const firstRequired = keys.findIndex((k) => required.has(k));
    const upTo = firstRequired < 0 ? keys.length - 1 : firstRequired;
    const firsts: string[] = [];
    for (let i = 0; i <= upTo; i++) firsts.push(`${kv[i]}${tail[i + 1] ? ' ' + tail[i + 1] : ''}`);
    if (firstRequired < 0) firsts.push('""');
    rules.set(name, `"{" (${firsts.join(' | ')}) "}"`);
    return name;
  };
  const top = ref(root, '');
  return `root ::= ${top}\n` + [...rules].map(([n, b]) => `${n} ::= ${b}`).join('\n') + '\n' + primitives(used);
}
