/**
 * Chat prompts: the GGUF's tokenizer.chat_template rendered with @huggingface/jinja (the same
 * Jinja subset transformers uses), or the Phi-3 template when the file has none.
 */
import { Template } from '@huggingface/jinja';
import { PHI3_CHAT_TEMPLATE } from './phi3-template.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

const cache = new Map<string, Template>();

/** A rendered chat prompt in pieces: the template's own markup, and each message's content. */
export interface ChatSegment {
  text: string;
  /** true for template markup (its control tokens are parsed), false for message content */
  markup: boolean;
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
  const mark = (i: number) => `\uE000${nonce}:${i}\uE001`;
  const marked = renderChat(messages.map((m, i) => ({ ...m, content: mark(i) })), o);
  const re = new RegExp(`\uE000${nonce}:(\\d+)\uE001`, 'g');
  const segs: ChatSegment[] = [];
  let at = 0;
  for (const m of marked.matchAll(re)) {
    segs.push({ text: marked.slice(at, m.index), markup: true }, { text: messages[Number(m[1])]!.content, markup: false });
    at = m.index + m[0].length;
  }
  segs.push({ text: marked.slice(at), markup: true });
  if (segs.map((s) => s.text).join('') === real) return segs.filter((s) => s.text.length > 0);
  // the template transformed the content: find each one (or its trimmed form) in the real rendering, in order
  const out: ChatSegment[] = [];
  at = 0;
  for (const [i, m] of messages.entries()) {
    if (!m.content) continue;
    let text = m.content, k = real.indexOf(text, at);
    if (k < 0) k = real.indexOf((text = m.content.trim()), at);
    if (k < 0 || !text) throw new TypeError(`messages[${i}]: the chat template changes message content in a way phi3-ts cannot locate, so it cannot keep the content apart from the markup`);
    out.push({ text: real.slice(at, k), markup: true }, { text, markup: false });
    at = k + text.length;
  }
  out.push({ text: real.slice(at), markup: true });
  return out.filter((s) => s.text.length > 0);
}

export function renderChat(
  messages: ChatMessage[],
  o: { template?: string; bosToken?: string; eosToken?: string; addGenerationPrompt?: boolean } = {},
): string {
  for (const [i, m] of messages.entries()) {
    if (!m || typeof m !== 'object') throw new TypeError(`messages[${i}] must be an object`);
    if (!['system', 'user', 'assistant'].includes(m.role)) throw new TypeError(`messages[${i}].role must be system, user or assistant, got ${JSON.stringify(m.role)}`);
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
  });
}
