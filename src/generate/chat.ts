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
