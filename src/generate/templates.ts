/**
 * Rendering chat templates for a Model: the TemplateRenderer it calls, and one that renders in the
 * calling thread (a browser's model worker; the page that hosts it can stop it). Node renders in a
 * worker under time and heap limits instead (template-runner.ts).
 */
import type { ChatSegment } from './chat.js';
import render, { type TemplateTask } from './template-worker.js';

export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** a rendered prompt must not be empty, nor more than `extraChars` longer than the messages' contents */
export function checkRendered<T extends ChatSegment[] | string>(task: TemplateTask, out: T, extraChars: number): T {
  const contents = task.messages.reduce((a, m) => a + (typeof m.content === 'string' ? m.content.length : 0), 0);
  const size = typeof out === 'string' ? out.length : out.reduce((a, s) => a + s.text.length, 0);
  if ((typeof out === 'string' ? out : out.map((s) => s.text).join('')).trim() === '') throw new TemplateError('the chat template rendered an empty prompt');
  if (size > contents + extraChars) throw new TemplateError(`the chat template rendered ${size} characters, more than the messages' ${contents} plus ${extraChars}`);
  return out;
}

export interface TemplateRenderer {
  render(task: TemplateTask & { mode: 'segments' }): Promise<ChatSegment[]>;
  render(task: TemplateTask & { mode: 'text' }): Promise<string>;
  close(): Promise<void>;
}

/** renders in this thread; a template that throws is a TemplateError */
export class InlineTemplates implements TemplateRenderer {
  async render(task: TemplateTask & { mode: 'segments' }): Promise<ChatSegment[]>;
  async render(task: TemplateTask & { mode: 'text' }): Promise<string>;
  async render(task: TemplateTask): Promise<ChatSegment[] | string> {
    let out: ChatSegment[] | string;
    try {
      out = render(task);
    } catch (e) {
      if (e instanceof TypeError) throw e; // bad messages
      throw new TemplateError(`the chat template failed: ${(e as Error)?.message ?? String(e)}`);
    }
    return checkRendered(task, out, 1 << 20);
  }
  async close(): Promise<void> {}
}
