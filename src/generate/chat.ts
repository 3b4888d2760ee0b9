/**
 * Chat prompts: the GGUF's tokenizer.chat_template rendered with @huggingface/jinja (the same
 * Jinja subset transformers uses), or the Phi-3 template when the file has none.
 */
import { Template } from '@huggingface/jinja';
import { PHI3_CHAT_TEMPLATE } from './phi3-template.js';

export interface ChatMessage {
  /** `tool`: a tool's result, given back to the model (templates with tools render it) */
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** the content as pieces, some of them markup whose special tokens are parsed (an assistant turn's
   *  `<|tool_call|>…<|/tool_call|>`, written by phi3-ts, not by a user); their texts join to `content` */
  contentParts?: ChatSegment[];
  /** a system message's tools, as the JSON text Phi-4-mini's template prints (tools.ts) */
  tools?: string;
  /** an assistant message's calls, for templates that render them (OpenAI's shape, arguments parsed) */
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: unknown } }[];
  /** a tool message: the call it answers */
  tool_call_id?: string;
  name?: string;
}

const cache = new Map<string, Template>();

/** A rendered chat prompt in pieces: the template's own markup, and each message's content. */
export interface ChatSegment {
  text: string;
  /** true for template markup (its control tokens are parsed), false for message content */
  markup: boolean;
  /** an image's place: `count` rows of image `index`'s input embeddings, not text (the text is its placeholder) */
  image?: { index: number; count: number };
}

/**
 * The chat prompt as segments, so that message content can be tokenized as plain text while the
 * template's markup keeps its control tokens (a user who writes `<|end|><|system|>` gets those
 * characters, not a forged turn). Contents are located by rendering once with a unique marker in
 * place of each; a template that changes the content (e.g. trims it) is located by searching the
 * real rendering for it, and one whose content cannot be found is an error.
 */
export function renderChatSegments(messages: ChatMessage[], o: Parameters<typeof renderChat>[1] = {}): ChatSegment[] {
  const real = renderChat(messages, o);
  const nonce = Math.random().toString(36).slice(2);
  // each message's content, and a system message's tools, rendered as a unique marker
  const mark = (i: number, field: 'c' | 't') => `\uE000${nonce}:${field}${i}\uE001`;
  const marked = renderChat(messages.map((m, i) => ({ ...m, content: mark(i, 'c'), ...(typeof m.tools === 'string' ? { tools: mark(i, 't') } : {}) })), o);
  const re = new RegExp(`\uE000${nonce}:([ct])(\\d+)\uE001`, 'g');
  const segs: ChatSegment[] = [];
  let at = 0;
  const shown = new Set<number>();
  for (const m of marked.matchAll(re)) {
    const msg = messages[Number(m[2])]!;
    if (m[1] === 'c') shown.add(Number(m[2]));
    segs.push({ text: marked.slice(at, m.index), markup: true }, ...(m[1] === 't' ? [{ text: msg.tools!, markup: false }] : contentOf(msg)));
    at = m.index + m[0].length;
  }
  segs.push({ text: marked.slice(at), markup: true });
  // a tool's result that the template leaves out would be an answer the model never saw
  for (const [i, m] of messages.entries())
    if (m.role === 'tool' && !shown.has(i)) throw new TypeError(`messages[${i}]: this model's chat template does not render 'tool' messages`);
  if (segs.map((s) => s.text).join('') === real) return segs.filter((s) => s.text.length > 0);
  // the template transformed the content: find each one (or its trimmed form) in the real rendering, in order
  const out: ChatSegment[] = [];
  at = 0;
  for (const [i, m] of messages.entries()) {
    if (!m.content) continue;
    let text = m.content, k = real.indexOf(text, at);
    if (k < 0) k = real.indexOf((text = m.content.trim()), at);
    if (k < 0 || !text) throw new TypeError(`messages[${i}]: the chat template changes message content in a way phi3-ts cannot locate, so it cannot keep the content apart from the markup`);
    out.push({ text: real.slice(at, k), markup: true }, ...(text === m.content ? contentOf(m) : [{ text, markup: false }]));
    at = k + text.length;
  }
  out.push({ text: real.slice(at), markup: true });
  return out.filter((s) => s.text.length > 0);
}

/** a message's content as segments: plain text, or its parts */
function contentOf(m: ChatMessage): ChatSegment[] {
  if (!m.contentParts) return [{ text: m.content, markup: false }];
  if (m.contentParts.map((p) => p.text).join('') !== m.content) throw new TypeError('a message\'s contentParts must join to its content');
  return m.contentParts;
}

export function renderChat(
  messages: ChatMessage[],
  o: { template?: string; bosToken?: string; eosToken?: string; addGenerationPrompt?: boolean; tools?: unknown[] } = {},
): string {
  for (const [i, m] of messages.entries()) {
    if (!m || typeof m !== 'object') throw new TypeError(`messages[${i}] must be an object`);
    if (!['system', 'user', 'assistant', 'tool'].includes(m.role)) throw new TypeError(`messages[${i}].role must be system, user, assistant or tool, got ${JSON.stringify(m.role)}`);
    if (typeof m.content !== 'string') throw new TypeError(`messages[${i}].content must be a string`);
  }
  const src = o.template ?? PHI3_CHAT_TEMPLATE;
  let t = cache.get(src);
  if (!t) {
    t = new Template(src);
    cache.set(src, t);
  }
  return t.render({
    messages,
    add_generation_prompt: o.addGenerationPrompt ?? true,
    bos_token: o.bosToken ?? '<s>',
    eos_token: o.eosToken ?? '<|endoftext|>',
    // HF's apply_chat_template passes the tools as a variable too (OpenAI's shape)
    ...(o.tools ? { tools: o.tools } : {}),
  });
}
