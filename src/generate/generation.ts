/** A text stream over a token stream: what Model.generate and the browser's generate return. */
import type { GeneratedChunk, GenerationStats } from './generate.js';
import { ToolCallStream, type ToolCall } from './tools.js';

export interface Generation extends AsyncIterable<string> {
  /** resolves when generation ends */
  readonly stats: Promise<GenerationStats>;
  /** the tools the model called (a chat with `tools`; finishReason 'tool_calls'), when generation ends; the text is the content only */
  readonly toolCalls: Promise<ToolCall[]>;
}

/**
 * The text of a token stream as a Generation: `stats` settles however it ends — with the stream's
 * own stats (given to `onEnd`, or returned at its end), or as an abort with nothing run when it was
 * never iterated — and rejects with the stream's error.
 */
export function textGeneration(start: (onEnd: (s: GenerationStats) => void) => AsyncGenerator<GeneratedChunk, GenerationStats>): Generation {
  let resolve!: (s: GenerationStats) => void, reject!: (e: unknown) => void;
  const stats = new Promise<GenerationStats>((res, rej) => ((resolve = res), (reject = rej)));
  stats.catch(() => {});
  const it = start((s) => resolve(s));
  const calls = new ToolCallStream();
  async function* text(): AsyncGenerator<string> {
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) return resolve(r.value);
        if (r.value.toolCall) calls.push(r.value.text);
        else if (r.value.text) yield r.value.text;
      }
    } catch (e) {
      reject(e);
      throw e;
    } finally {
      await it.return?.(undefined as never);
      // never iterated at all: nothing ran
      resolve({ promptTokens: 0, promptTokensEvaluated: 0, generatedTokens: 0, promptSeconds: 0, decodeSeconds: 0, promptTokPerSec: 0, decodeTokPerSec: 0, finishReason: 'abort' });
    }
  }
  const gen = text();
  return { stats, toolCalls: stats.then(() => calls.calls, () => calls.calls), [Symbol.asyncIterator]: () => gen };
}
