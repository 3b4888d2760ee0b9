/**
 * Chat templates under limits. A GGUF's tokenizer.chat_template is Jinja code from the file: one
 * that loops 10^8 times or builds a huge string must not take the process down. TemplateRunner
 * renders in one Piscina worker with a heap limit and a time budget per render, and caps the size
 * of what comes back; past a limit the render fails with a TemplateError and the worker is replaced.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { packageRoot } from '../package-root.js';
import type { ChatSegment } from './chat.js';
import type { TemplateTask } from './template-worker.js';
import { TemplateError, checkRendered, type TemplateRenderer } from './templates.js';

export { TemplateError } from './templates.js';

export interface TemplateLimits {
  /** milliseconds per render (default 2000) */
  timeMs?: number;
  /** worker heap in MB (default 256) */
  heapMb?: number;
  /** the rendered prompt may be at most this many characters more than the messages' contents (default 1 MiB) */
  extraChars?: number;
}

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.js') ? path.join(path.dirname(here), 'template-worker.js') : path.join(packageRoot(), 'dist', 'src', 'generate', 'template-worker.js');
}

export class TemplateRunner implements TemplateRenderer {
  private pool: Piscina | undefined;
  readonly limits: Required<TemplateLimits>;
  constructor(limits: TemplateLimits = {}) {
    this.limits = { timeMs: limits.timeMs ?? 2000, heapMb: limits.heapMb ?? 256, extraChars: limits.extraChars ?? 1 << 20 };
  }

  private get workers(): Piscina {
    this.pool ??= new Piscina({
      filename: workerFile(),
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: 1000,
      resourceLimits: { maxOldGenerationSizeMb: this.limits.heapMb, maxYoungGenerationSizeMb: 32 },
    });
    // a worker that dies of its heap limit after its task was given up is no error of anyone's
    this.pool.on('error', () => {});
    return this.pool;
  }

  async render(task: TemplateTask & { mode: 'segments' }): Promise<ChatSegment[]>;
  async render(task: TemplateTask & { mode: 'text' }): Promise<string>;
  async render(task: TemplateTask): Promise<ChatSegment[] | string> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.limits.timeMs);
    let out: ChatSegment[] | string;
    try {
      out = (await this.workers.run(task, { signal: ac.signal })) as ChatSegment[] | string;
    } catch (e) {
      const err = e as Error;
      if (ac.signal.aborted) throw new TemplateError(`the chat template took more than ${this.limits.timeMs} ms to render`);
      if (/ERR_WORKER_OUT_OF_MEMORY|heap/i.test(`${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`))
        throw new TemplateError(`the chat template used more than ${this.limits.heapMb} MB while rendering`);
      if (err instanceof TypeError || err?.name === 'TypeError') throw new TypeError(err.message); // bad messages
      throw new TemplateError(`the chat template failed: ${err?.message ?? String(e)}`);
    } finally {
      clearTimeout(timer);
    }
    return checkRendered(task, out, this.limits.extraChars);
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
    this.pool = undefined;
  }
}
