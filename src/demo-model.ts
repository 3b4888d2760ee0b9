/**
 * The embedded demo model: a 13 M-parameter Phi-3 (6 layers, dim 256, Phi-3's own 32064-token
 * tokenizer and chat tokens, tied embeddings, Q8_0, 14 MiB) trained by demo/train.py on the Brown
 * corpus. `phi3 run`, `phi3 chat` and `phi3 serve` use it when no model is given, so that a first run
 * prints English. It knows 1960s American prose and nothing else: see demo/README.md.
 */
import * as path from 'node:path';
import { packageRoot } from './package-root.js';

export const DEMO_MODEL_NAME = 'phi3-demo-brown-Q8_0.gguf';

/** the demo model's path inside the installed package */
export function demoModelPath(): string {
  return path.join(packageRoot(), 'demo', DEMO_MODEL_NAME);
}
