import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll } from 'vitest';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const SHARED_MODELS = path.resolve(ROOT, '..', 'shared', 'models');
export const PHI3_VOCAB = path.join(SHARED_MODELS, 'ggml-vocab-phi-3.gguf');
export const LLAMA_VOCAB = path.join(SHARED_MODELS, 'ggml-vocab-llama-spm.gguf');
export const GPT2_VOCAB = path.join(SHARED_MODELS, 'ggml-vocab-gpt-2.gguf');

export function golden<T = unknown>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'golden', 'data', name), 'utf8')) as T;
}

export function fromB64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export function f32FromB64(s: string): Float32Array {
  const b = fromB64(s);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** index of the first element whose bits differ, or -1 */
export function firstBitDiff(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

const made: string[] = [];

/** A fresh folder under .cache/test-tmp, removed when the test file that asked for it ends
 * (a suite run writes gigabytes of models; CI's disk is not large). */
export function tmpDir(): string {
  const d = path.join(ROOT, '.cache', 'test-tmp');
  fs.mkdirSync(d, { recursive: true });
  const dir = fs.mkdtempSync(path.join(d, 'run-'));
  made.push(dir);
  return dir;
}

// helpers is imported while each test file is collected, so this hook belongs to that file
afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

if (!fs.existsSync(PHI3_VOCAB)) {
  console.warn(`NOTE: ${PHI3_VOCAB} is absent: tests that need Phi-3's real vocabulary are skipped.`);
}
