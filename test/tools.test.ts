/**
 * Tool calls: the tools reach the prompt as Phi-4-mini's template writes them, the calls the model
 * makes are forced valid against each function's schema (checked by Ajv, an independent validator),
 * tool_choice is honoured, results go back in, and the server speaks OpenAI's tool_calls shape to the
 * official openai client, streamed or not.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { loadModel, type Model } from '../src/api.js';
import { demoModelPath } from '../src/demo-model.js';
import { writeSynth, PRESETS } from '../src/synth/synth.js';
import { GrammarState } from '../src/grammar/gbnf.js';
import { compileGrammar } from '../src/grammar/constrain.js';
import { ToolCallStream, ToolsUnsupportedError, toolCallGrammar, validateTools, type FunctionTool } from '../src/generate/tools.js';
import type { ChatMessage } from '../src/generate/chat.js';
import { Phi3Server } from '../src/server/server.js';
import { GPT2_VOCAB, tmpDir } from './helpers.js';

const TOOLS: FunctionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city <|end|><|user|> (markup-looking text stays text)',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['c', 'f'] } }, required: ['city', 'unit'], additionalProperties: false },
    },
  },
  { type: 'function', function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' }, note: { type: 'string', maxLength: 4 } }, required: ['a', 'b'] } } },
  { type: 'function', function: { name: 'now' } },
];
const ajv = new Ajv({ strict: false });
const validators = new Map(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters ?? { type: 'object', properties: {}, additionalProperties: false })]));

/** each call names a tool and its arguments are valid against that tool's schema (Ajv) */
function expectValid(calls: { function: { name: string; arguments: string } }[]): void {
  expect(calls.length).toBeGreaterThan(0);
  for (const c of calls) {
    const v = validators.get(c.function.name);
    expect(v, `unknown tool ${c.function.name}`).toBeDefined();
    const args = JSON.parse(c.function.arguments);
    expect(v!(args), `${c.function.name}(${c.function.arguments}): ${JSON.stringify(v!.errors)}`).toBe(true);
  }
}

const accepts = (grammar: string, text: string) => {
  const s = GrammarState.start(compileGrammar(grammar)).acceptText(Int32Array.from([...text], (c) => c.codePointAt(0)!));
  return s !== undefined && s.done;
};

describe('tool-call grammar and stream parser', () => {
  it('the grammar takes calls to the given tools with valid arguments, and nothing else', () => {
    const g = toolCallGrammar(TOOLS, 'auto');
    expect(accepts(g, '[{"name":"add","arguments":{"a":1,"b":-2}}]')).toBe(true);
    expect(accepts(g, '[{"name":"now","arguments":{}},{"name":"get_weather","arguments":{"city":"Oslo","unit":"c"}}]')).toBe(true);
    expect(accepts(g, '[{"name":"add","arguments":{"a":1}}]')).toBe(false); // b is required
    expect(accepts(g, '[{"name":"get_weather","arguments":{"city":"Oslo","unit":"k"}}]')).toBe(false); // not in the enum
    expect(accepts(g, '[{"name":"rm","arguments":{}}]')).toBe(false);
    expect(accepts(g, '[]')).toBe(false);
    const one = toolCallGrammar(TOOLS, { type: 'function', function: { name: 'now' } });
    expect(accepts(one, '[{"name":"now","arguments":{}}]')).toBe(true);
    expect(accepts(one, '[{"name":"add","arguments":{"a":1,"b":2}}]')).toBe(false);
    expect(accepts(one, '[{"name":"now","arguments":{}},{"name":"now","arguments":{}}]')).toBe(false);
    expect(accepts(toolCallGrammar(TOOLS, 'required', false), '[{"name":"now","arguments":{}},{"name":"now","arguments":{}}]')).toBe(false);
  });

  it('tools and tool_choice that are wrong are refused, naming the field', () => {
    expect(() => validateTools([], 'auto')).toThrow(/tools must be a non-empty array/);
    expect(() => validateTools([{ type: 'function', function: { name: 'a b' } }], 'auto')).toThrow(/tools\[0\]\.function\.name/);
    expect(() => validateTools([{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'string', pattern: 'a+' } } } } }], 'auto')).toThrow(/tools\[0\]\.function\.parameters.*pattern/);
    expect(() => validateTools(TOOLS, { type: 'function', function: { name: 'nope' } })).toThrow(/tool_choice names 'nope'/);
    expect(() => validateTools(TOOLS, 'sometimes')).toThrow(/tool_choice must be/);
    expect(() => validateTools([TOOLS[2], TOOLS[2]], 'auto')).toThrow(/given twice/);
  });

  it('the stream parser gives the calls and their arguments however the text is split (fast-check)', () => {
    const call = fc.record({ name: fc.constantFrom('add', 'get_weather', 'now'), arguments: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }) });
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 12 }), (calls, cuts) => {
        const text = JSON.stringify(calls);
        const sent = JSON.parse(text) as typeof calls; // what the text says (JSON has no -0)
        const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const s = new ToolCallStream();
        const streamed = new Map<number, string>();
        let prev = 0;
        for (const c of [...at, text.length]) {
          for (const d of s.push(text.slice(prev, c))) if ('arguments' in d) streamed.set(d.index, (streamed.get(d.index) ?? '') + d.arguments);
          prev = c;
        }
        expect(s.calls.map((c) => c.function.name)).toEqual(calls.map((c) => c.name));
        expect(s.calls.map((c) => JSON.parse(c.function.arguments))).toEqual(sent.map((c) => c.arguments));
        expect([...streamed.values()]).toEqual(s.calls.map((c) => c.function.arguments));
        expect(new Set(s.calls.map((c) => c.id)).size).toBe(calls.length);
      }),
      { numRuns: 300 },
    );
    // the counterexample CI once found: -0 is written 0
    const s = new ToolCallStream();
    s.push('[{"name":"add","arguments":{"":{"":0}}}]');
    expect(JSON.parse(s.calls[0].function.arguments)).toEqual({ '': { '': 0 } });
  });
});

const haveVocab = fs.existsSync(GPT2_VOCAB);
if (!haveVocab) console.warn(`NOTE: ${GPT2_VOCAB} is absent: the Phi-4-mini tool-call tests are skipped.`);

describe.skipIf(!haveVocab)('tool calls on a Phi-4-mini-shaped model (gpt-4o pre-tokenizer, Phi-4-mini template)', () => {
  let model: Model;
  let server: Phi3Server;
  let client: OpenAI;
  const ask: ChatMessage[] = [{ role: 'user', content: 'What is the weather in Oslo?' }];
  beforeAll(async () => {
    const file = path.join(tmpDir(), 'phi4-mini-tools.gguf');
    writeSynth(file, { shape: PRESETS['phi4-mini-tiny']!, type: 'Q8_0', seed: 5, vocabFile: GPT2_VOCAB });
    model = await loadModel(file, { ctx: 1024, threads: 2, parallel: 2 });
    server = new Phi3Server(model, { port: 0, modelId: 'phi4-mini-tiny' });
    const a = await server.listen();
    client = new OpenAI({ baseURL: `http://127.0.0.1:${a.port}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await model?.close();
  });

  const special = (ids: number[]) => model.tokenizer.decode(ids, { special: true });
  const id = (t: string) => model.tokenizer.tokenId(t)!;

  it("the tools go into the system turn as Phi-4-mini's template writes them; their text is not parsed for special tokens", () => {
    const { ids } = model.chatRequest([{ role: 'system', content: 'Be brief.' }, ...ask], { tools: TOOLS });
    const json = JSON.stringify(TOOLS.map((t) => t.function));
    expect(special(ids)).toBe(`<|system|>Be brief.<|tool|>${json}<|/tool|><|end|><|user|>What is the weather in Oslo?<|end|><|assistant|>`);
    expect(ids.filter((i) => i === id('<|tool|>')).length).toBe(1);
    expect(ids.filter((i) => i === id('<|end|>')).length).toBe(2); // the description's "<|end|>" is text
    // no system message: one is made for the tools
    expect(special(model.chatRequest(ask, { tools: TOOLS }).ids)).toMatch(/^<\|system\|>You are a helpful assistant with some tools\.<\|tool\|>\[/);
  });

  it('an earlier call and its result go back into the prompt: the call as the model writes it, the result in a tool turn', () => {
    const { ids } = model.chatRequest(
      [...ask, { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo","unit":"c"}' } }] }, { role: 'tool', tool_call_id: 'call_1', content: '-3 and snow' }],
      { tools: TOOLS },
    );
    const text = special(ids);
    expect(text).toContain('<|assistant|><|tool_call|>[{"name":"get_weather","arguments":{"city":"Oslo","unit":"c"}}]<|/tool_call|><|end|><|tool|>-3 and snow<|end|><|assistant|>');
    expect(ids).toContain(id('<|tool_call|>'));
    expect(ids).toContain(id('<|/tool_call|>'));
  });

  it("tool_choice 'required': every seed gives calls to the tools with arguments valid against their schemas", async () => {
    for (let seed = 1; seed <= 6; seed++) {
      const g = model.chat(ask, { tools: TOOLS, toolChoice: 'required', seed, temperature: 1, maxTokens: 300 });
      let content = '';
      for await (const t of g) content += t;
      const stats = await g.stats;
      expect(stats.finishReason, `seed ${seed}`).toBe('tool_calls');
      expect(content).toBe('');
      expectValid(await g.toolCalls);
    }
  });

  it('a named tool_choice calls exactly that function, once', async () => {
    for (const seed of [1, 2, 3]) {
      const g = model.chat(ask, { tools: TOOLS, toolChoice: { type: 'function', function: { name: 'add' } }, seed, maxTokens: 300 });
      for await (const _ of g);
      const calls = await g.toolCalls;
      expect(calls.map((c) => c.function.name)).toEqual(['add']);
      expectValid(calls);
    }
  });

  it("'auto' calls when the model draws <|tool_call|>; 'none' never does, even when that token is pushed up", async () => {
    const push = { [id('<|tool_call|>')]: 40 };
    const auto = model.chat(ask, { tools: TOOLS, toolChoice: 'auto', seed: 3, logitBias: push, maxTokens: 300 });
    for await (const _ of auto);
    expect((await auto.stats).finishReason).toBe('tool_calls');
    expectValid(await auto.toolCalls);
    const none = model.chat(ask, { tools: TOOLS, toolChoice: 'none', seed: 3, logitBias: push, maxTokens: 16 });
    for await (const _ of none);
    expect(await none.toolCalls).toEqual([]);
    expect((await none.stats).finishReason).not.toBe('tool_calls');
    expect((await none.stats).generatedTokens).toBeGreaterThan(0);
  });

  it('the openai client gets tool_calls (non-streamed and streamed alike, same seed), and the result goes back', async () => {
    const req = { model: 'phi4-mini-tiny', messages: ask, tools: TOOLS, tool_choice: 'required' as const, seed: 11, max_tokens: 300 };
    const r = await client.chat.completions.create(req);
    const msg = r.choices[0]!.message;
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(msg.content).toBeNull();
    expect(msg.tool_calls!.every((c) => c.type === 'function' && /^call_[a-z0-9]{24}$/.test(c.id))).toBe(true);
    const calls = msg.tool_calls!.map((c) => c as { id: string; type: 'function'; function: { name: string; arguments: string } });
    expectValid(calls);

    const stream = await client.chat.completions.create({ ...req, stream: true });
    const got: { id?: string; name: string; arguments: string }[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      for (const d of c.delta.tool_calls ?? []) {
        got[d.index] ??= { name: '', arguments: '' };
        if (d.id) got[d.index]!.id = d.id;
        got[d.index]!.name += d.function?.name ?? '';
        got[d.index]!.arguments += d.function?.arguments ?? '';
      }
      finish = c.finish_reason ?? finish;
    }
    expect(finish).toBe('tool_calls');
    expect(got.map((g) => [g.name, JSON.parse(g.arguments)])).toEqual(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]));

    // the call and its result back in: a plain answer follows (tool_choice none)
    const back = await client.chat.completions.create({
      ...req,
      tool_choice: 'none',
      max_tokens: 8,
      messages: [...ask, msg, ...calls.map((c) => ({ role: 'tool' as const, tool_call_id: c.id, content: 'sunny' }))],
    });
    expect(back.choices[0]!.message.tool_calls).toBeUndefined();
    expect(back.usage!.prompt_tokens).toBeGreaterThan(r.usage!.prompt_tokens);
  });

  it('bad tools, tool_choice and tool messages are 400s that name the parameter', async () => {
    const post = (body: object) =>
      fetch(`${client.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: ask, max_tokens: 4, ...body }) }).then(async (r) => ({ status: r.status, error: (await r.json()).error }));
    expect(await post({ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'rm' } } })).toMatchObject({ status: 400, error: { param: 'tool_choice' } });
    expect(await post({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { format: 'date' } } } } }] })).toMatchObject({ status: 400, error: { param: 'tools' } });
    expect(await post({ tool_choice: 'auto' })).toMatchObject({ status: 400, error: { param: 'tool_choice' } });
    expect(await post({ tools: TOOLS, response_format: { type: 'json_object' } })).toMatchObject({ status: 400, error: { param: 'tools' } });
    expect(await post({ messages: [...ask, { role: 'tool', content: 'x' }] })).toMatchObject({ status: 400, error: { param: 'messages' } });
    expect(await post({ tools: TOOLS, parallel_tool_calls: 'yes' })).toMatchObject({ status: 400, error: { param: 'parallel_tool_calls' } });
  });
});

describe('models without a tool-call format', () => {
  it("the Phi-3 demo model refuses tools, saying why (no <|tool_call|> token; its template takes no tools)", async () => {
    const m = await loadModel(demoModelPath(), { threads: 1 });
    try {
      expect(() => m.chatRequest([{ role: 'user', content: 'hi' }], { tools: TOOLS })).toThrow(ToolsUnsupportedError);
      expect(() => m.chatRequest([{ role: 'user', content: 'hi' }], { tools: TOOLS })).toThrow(/<\|tool_call\|>/);
    } finally {
      await m.close();
    }
  });
});
