/**
 * Renders a chat template in a worker thread (run by Piscina for TemplateRunner): a template from a
 * model file is untrusted code, so it runs where a time limit can stop it and a heap limit contains it.
 */
import { renderChat, renderChatSegments, type ChatMessage, type ChatSegment } from './chat.js';

export interface TemplateTask {
  messages: ChatMessage[];
  template: string | undefined;
  bosToken: string;
  eosToken: string;
  addGenerationPrompt: boolean;
  /** OpenAI-shaped tools for templates that read a `tools` variable */
  tools?: unknown[];
  /** 'segments' for renderChatSegments, 'text' for renderChat */
  mode: 'segments' | 'text';
}

export default function render(t: TemplateTask): ChatSegment[] | string {
  const o = { template: t.template, bosToken: t.bosToken, eosToken: t.eosToken, addGenerationPrompt: t.addGenerationPrompt, tools: t.tools };
  return t.mode === 'segments' ? renderChatSegments(t.messages, o) : renderChat(t.messages, o);
}
