/**
 * Tool calls (OpenAI's `tools` / `tool_choice`) for models whose chat format has them. Phi-4-mini is
 * told its tools in the system turn, `<|system|>…<|tool|>[{"name": …, "parameters": …}]<|/tool|><|end|>`,
 * and answers with `<|tool_call|>[{"name": "f", "arguments": {…}}]<|/tool_call|>`.
 *
 * The call is a lazy grammar: text is sampled freely until the model draws `<|tool_call|>` (or that
 * token is forced first, for `required` and a named function); from there on only a JSON array of
 * calls to the given functions, each with arguments valid against that function's `parameters`
 * schema (json-schema.ts), can be sampled, and `<|/tool_call|>` or an end-of-generation token closes it.
 * `none` bans `<|tool_call|>`.
 */
import { GrammarError } from '../grammar/gbnf.js';
import { jsonSchemaGrammar } from '../grammar/json-schema.js';
import type { SpmTokenizer } from '../tokenizer/spm.js';

export interface FunctionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}

export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

/** one call the model made: arguments as the JSON text it wrote (OpenAI's `function.arguments`) */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** the model or its chat template cannot take tools, and says why */
export class ToolsUnsupportedError extends Error {
  override name = 'ToolsUnsupportedError';
}

/** how a model takes tools and writes calls */
export interface ToolFormat {
  /** `<|tool_call|>`, `<|/tool_call|>` */
  open: number;
  close: number;
  openText: string;
  closeText: string;
  /** the template reads the tools from the system message's `tools` field (Phi-4-mini), or from a `tools` variable */
  inSystemMessage: boolean;
  /** the template renders an assistant message's `tool_calls` itself (else they are written into its content) */
  rendersToolCalls: boolean;
}

/** a function without `parameters` takes none: its arguments are `{}` */
const NO_PARAMETERS = { type: 'object', properties: {} };
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** the model's tool-call format, or why it has none */
export function toolFormat(tok: SpmTokenizer, template: string | undefined): ToolFormat {
  const open = tok.tokenId('<|tool_call|>'), close = tok.tokenId('<|/tool_call|>');
  if (open === undefined || close === undefined)
    throw new ToolsUnsupportedError("this model's vocabulary has no <|tool_call|> and <|/tool_call|> tokens, so it cannot make tool calls (Phi-4-mini-instruct can)");
  if (template === undefined || !/\btools\b/.test(template))
    throw new ToolsUnsupportedError("this model's chat template takes no tools (it never reads 'tools')");
  return {
    open, close, openText: '<|tool_call|>', closeText: '<|/tool_call|>',
    inSystemMessage: /message\s*(\[\s*['"]tools['"]\s*\]|\.tools\b)/.test(template),
    rendersToolCalls: /\btool_calls\b/.test(template),
  };
}

/** `tools` and `tool_choice` as OpenAI defines them; a TypeError names the field that is wrong */
export function validateTools(tools: unknown, choice: unknown, name = (k: string) => k): { tools: FunctionTool[]; choice: ToolChoice } {
  if (!Array.isArray(tools) || tools.length === 0) throw new TypeError(`${name('tools')} must be a non-empty array of {type: 'function', function: {name, parameters}}`);
  const seen = new Set<string>();
  for (const [i, t] of tools.entries()) {
    const at = `${name('tools')}[${i}]`;
    if (!t || typeof t !== 'object' || (t as FunctionTool).type !== 'function') throw new TypeError(`${at}.type must be 'function'`);
    const f = (t as FunctionTool).function;
    if (!f || typeof f !== 'object') throw new TypeError(`${at}.function must be an object`);
    for (const k of Object.keys(t)) if (k !== 'type' && k !== 'function') throw new TypeError(`${at}: unknown field '${k}'`);
    for (const k of Object.keys(f)) if (!['name', 'description', 'parameters', 'strict'].includes(k)) throw new TypeError(`${at}.function: unknown field '${k}'`);
    if (typeof f.name !== 'string' || !NAME.test(f.name)) throw new TypeError(`${at}.function.name must be 1 to 64 letters, digits, _ or -, got ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new TypeError(`${at}.function.name '${f.name}' is given twice`);
    seen.add(f.name);
    if (f.description !== undefined && typeof f.description !== 'string') throw new TypeError(`${at}.function.description must be a string`);
    if (f.parameters !== undefined && (typeof f.parameters !== 'object' || f.parameters === null || Array.isArray(f.parameters))) throw new TypeError(`${at}.function.parameters must be a JSON Schema object`);
    try {
      jsonSchemaGrammar(f.parameters ?? NO_PARAMETERS); // a schema that cannot be enforced is refused by name now
    } catch (e) {
      if (e instanceof GrammarError) throw new TypeError(`${at}.function.parameters${/^[:/]/.test(e.message) ? '' : ': '}${e.message}`);
      throw e;
    }
  }
  const c = choice ?? 'auto';
  if (c !== 'auto' && c !== 'none' && c !== 'required') {
    const fn = (c as { function?: { name?: unknown } })?.function?.name;
    if (typeof c !== 'object' || (c as { type?: unknown }).type !== 'function' || typeof fn !== 'string')
      throw new TypeError(`${name('tool_choice')} must be 'auto', 'none', 'required' or {type: 'function', function: {name}}`);
    if (!seen.has(fn)) throw new TypeError(`${name('tool_choice')} names '${fn}', which is not one of the tools`);
  }
  return { tools: tools as FunctionTool[], choice: c as ToolChoice };
}

/**
 * GBNF for what follows `<|tool_call|>`: a JSON array of calls, `[{"name":"f","arguments":{…}},…]`,
 * each naming one of `tools` (only the chosen one for a named tool_choice) with arguments valid
 * against its schema; a single call unless `parallel`.
 */
export function toolCallGrammar(tools: FunctionTool[], choice: ToolChoice, parallel = true): string {
  const named = typeof choice === 'object' ? choice.function.name : undefined;
  const fns = tools.map((t) => t.function).filter((f) => named === undefined || f.name === named);
  const $defs: Record<string, unknown> = {};
  const calls = fns.map((f) => {
    const { $defs: defs, definitions, ...params } = (f.parameters ?? NO_PARAMETERS) as Record<string, unknown>;
    if (definitions !== undefined) throw new TypeError(`tools: function '${f.name}': use $defs, not definitions, in a tool's parameters`);
    for (const [k, v] of Object.entries((defs ?? {}) as Record<string, unknown>)) {
      if (k in $defs && JSON.stringify($defs[k]) !== JSON.stringify(v)) throw new TypeError(`tools: function '${f.name}' defines $defs/${k} unlike another tool does`);
      $defs[k] = v;
    }
    return { type: 'object', properties: { name: { const: f.name }, arguments: params }, required: ['name', 'arguments'], additionalProperties: false };
  });
  const items = calls.length === 1 ? calls[0] : { anyOf: calls };
  return jsonSchemaGrammar({ type: 'array', items, minItems: 1, ...(parallel && named === undefined ? {} : { maxItems: 1 }), $defs });
}

/**
 * The tools as the template reads them: Phi-4-mini's template prints the system message's `tools`
 * string (a JSON list of the functions) after its content; other templates get a `tools` variable.
 * A conversation with no system message gets one for the tools (Microsoft's wording).
 */
export function toolsForTemplate<M extends { role: string; content: string; tools?: string }>(messages: M[], tools: FunctionTool[], f: ToolFormat): M[] {
  if (!f.inSystemMessage) return messages;
  const json = JSON.stringify(tools.map((t) => t.function));
  const i = messages.findIndex((m) => m.role === 'system');
  if (i >= 0) return messages.map((m, j) => (j === i ? { ...m, tools: json } : m));
  return [{ role: 'system', content: 'You are a helpful assistant with some tools.', tools: json } as M, ...messages];
}

let calls = 0;
/** an id for a call: call_ and 24 characters */
export function toolCallId(): string {
  const r = Math.random().toString(36).slice(2, 14) + (++calls).toString(36).padStart(4, '0') + Math.random().toString(36).slice(2, 10);
  return 'call_' + r.slice(0, 24).padEnd(24, '0');
}

/** one step of a streamed call: its start (id, name), or more of its arguments' text */
export type ToolCallDelta = { index: number; id: string; name: string } | { index: number; arguments: string };

/**
 * Reads the calls' JSON as it streams (`[{"name":"f","arguments":…},…]`, compact, as the grammar
 * forces it): reports each call when its name is complete, then its arguments as they arrive.
 */
export class ToolCallStream {
  readonly calls: ToolCall[] = [];
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** the text of the current call's `{"name":…,"arguments":` while it is incomplete */
  private head: string | undefined;
  /** inside the current call's arguments */
  private inArgs = false;
  private argDepth = 0;

  push(text: string): ToolCallDelta[] {
    const out: ToolCallDelta[] = [];
    let args = '';
    const flushArgs = () => {
      if (args) out.push({ index: this.calls.length - 1, arguments: args }), (this.calls.at(-1)!.function.arguments += args);
      args = '';
    };
    for (const ch of text) {
      if (this.head !== undefined) {
        this.head += ch;
        const m = /^\{"name":"([^"]*)","arguments":$/.exec(this.head);
        if (m) {
          const call: ToolCall = { id: toolCallId(), type: 'function', function: { name: m[1]!, arguments: '' } };
          this.calls.push(call);
          out.push({ index: this.calls.length - 1, id: call.id, name: call.function.name });
          this.head = undefined;
          this.inArgs = true;
          this.argDepth = 0;
        }
        continue;
      }
      if (this.inArgs) {
        // the arguments value runs until the call object's closing brace
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (ch === '\\') this.escaped = true;
          else if (ch === '"') this.inString = false;
        } else if (ch === '"') this.inString = true;
        else if (ch === '{' || ch === '[') this.argDepth++;
        else if (ch === '}' || ch === ']') {
          if (this.argDepth === 0) {
            flushArgs();
            this.inArgs = false; // the call's own '}'
            this.depth--;
            continue;
          }
          this.argDepth--;
        }
        args += ch;
        continue;
      }
      if (ch === '[' && this.depth === 0) this.depth = 1;
      else if (ch === '{' && this.depth === 1) (this.depth = 2), (this.head = '{');
      else if (ch === ']' && this.depth === 1) this.depth = 0;
    }
    flushArgs();
    return out;
  }
}

/** an assistant turn's earlier calls, as OpenAI sends them back (arguments as JSON text) */
export interface SentToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments: string };
}

/**
 * An assistant message that made calls, for the template: templates that render `tool_calls` get
 * them (arguments parsed, as transformers passes them); others get the calls written into the content
 * as the model writes them, `<|tool_call|>[…]<|/tool_call|>`, the markers as markup.
 */
export function withToolCalls<M extends { content: string }>(m: M, calls: SentToolCall[], f: ToolFormat, at = 'tool_calls'): M & { contentParts?: { text: string; markup: boolean }[]; tool_calls?: unknown[] } {
  const parsed = calls.map((c, i) => {
    if (!c || typeof c !== 'object' || !c.function || typeof c.function.name !== 'string' || typeof c.function.arguments !== 'string')
      throw new TypeError(`${at}[${i}] must be {id, type: 'function', function: {name, arguments: JSON text}}`);
    let args: unknown;
    try {
      args = JSON.parse(c.function.arguments);
    } catch {
      throw new TypeError(`${at}[${i}].function.arguments is not JSON: ${JSON.stringify(c.function.arguments.slice(0, 80))}`);
    }
    return { id: c.id ?? toolCallId(), type: 'function' as const, function: { name: c.function.name, arguments: args } };
  });
  if (f.rendersToolCalls) return { ...m, tool_calls: parsed };
  const json = JSON.stringify(parsed.map((c) => ({ name: c.function.name, arguments: c.function.arguments })));
  const parts = [
    ...(m.content ? [{ text: m.content, markup: false }] : []),
    { text: f.openText, markup: true },
    { text: json, markup: false },
    { text: f.closeText, markup: true },
  ];
  return { ...m, content: parts.map((p) => p.text).join(''), contentParts: parts };
}

/** what a chat request with tools changes: the tools for the template, and the generation's tool-call options */
export interface ToolRequest {
  /** the `tools` variable for templates that read one (OpenAI's shape) */
  templateTools: FunctionTool[];
  /** GenerateOptions.toolCalls (undefined for tool_choice none) */
  toolCalls?: { open: number; close: number; grammar: string; force: boolean };
  /** a token to ban (tool_choice none: `<|tool_call|>`) */
  ban?: number;
}

export function toolRequest(f: ToolFormat, tools: FunctionTool[], choice: ToolChoice, parallel = true): ToolRequest {
  if (choice === 'none') return { templateTools: tools, ban: f.open };
  return { templateTools: tools, toolCalls: { open: f.open, close: f.close, grammar: toolCallGrammar(tools, choice, parallel), force: choice !== 'auto' } };
}
