// The embedded demo model (demo/phi3-demo-brown-Q8_0.gguf, demo/): `phi3 run`, `phi3 chat` and the
// library work with no model given, and what they print is English: its words are Brown-corpus words
// (a random-weight Phi-3 with the same tokenizer prints word pieces that are not). llama.cpp's greedy
// tokens and perplexity on it are checked live in golden/test/models.test.mjs.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { demoModelPath } from '../src/demo-model.js';
import { openGguf } from '../src/gguf/file-source.js';
import { writeSynth } from '../src/synth/synth.js';
import { PHI3_VOCAB, ROOT, tmpDir } from './helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const phi3 = (args: string[], input?: string) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input });
const known = new Set(fs.readFileSync(path.join(ROOT, 'demo', 'heldout.txt'), 'utf8').toLowerCase().match(/[a-z]+/g));
/** the share of the text's words (≥ 2 letters) that the held-out Brown text also has */
function english(text: string): { words: number; known: number } {
  const words = (text.toLowerCase().match(/[a-z]{2,}/g) ?? []);
  return { words: words.length, known: words.filter((w) => known.has(w)).length / Math.max(1, words.length) };
}

describe('the embedded demo model', () => {
  it('is a Phi-3 GGUF with Phi-3\'s tokenizer and chat tokens, tied, Q8_0, at most 16 MB', () => {
    const p = demoModelPath();
    expect(fs.statSync(p).size).toBeLessThanOrEqual(16_000_000);
    const f = openGguf(p);
    try {
      expect(f.getString('general.architecture')).toBe('phi3');
      expect(f.getStringArray('tokenizer.ggml.tokens')).toHaveLength(32064);
      expect(f.getStringArray('tokenizer.ggml.tokens').slice(32000, 32011)).toContain('<|assistant|>');
      expect(f.tensor('output.weight')).toBeUndefined();
      expect(f.tensor('blk.0.attn_qkv.weight')!.type).toBe(8); // Q8_0
    } finally {
      f.close();
    }
  });

  it('`phi3 run -p "Once upon a time"` with no model prints English sentences', () => {
    const r = phi3(['run', '-p', 'Once upon a time', '-n', '48', '--seed', '1', '--ignore-eos']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/using the embedded demo model/);
    const e = english(r.stdout);
    expect(e.words, r.stdout).toBeGreaterThanOrEqual(20);
    expect(e.known, r.stdout).toBeGreaterThanOrEqual(0.9);
    expect(r.stdout, 'sentences: some end with a full stop').toMatch(/[a-z]\./);
  });

  it('a random-weight model with the same tokenizer fails that English check (the check can fail)', () => {
    if (!fs.existsSync(PHI3_VOCAB)) return console.warn(`${PHI3_VOCAB} missing: control skipped`);
    const rnd = path.join(tmpDir(), 'random.gguf');
    writeSynth(rnd, { shape: { dim: 256, hiddenDim: 768, nLayers: 2, nHeads: 4, nKvHeads: 4, contextLength: 256, tiedEmbeddings: true }, type: 'Q8_0', seed: 5, vocabFile: PHI3_VOCAB });
    const r = phi3(['run', rnd, '-p', 'Once upon a time', '-n', '48', '--seed', '1', '--ignore-eos']);
    expect(r.status, r.stderr).toBe(0);
    expect(english(r.stdout).known).toBeLessThan(0.9);
  });

  it('`phi3 chat` with no model answers in English and ends its turn', () => {
    const r = phi3(['chat', '--temp', '0.7', '--seed', '2', '-n', '64'], 'The old man walked to the river.\n/exit\n');
    expect(r.status, r.stderr).toBe(0);
    const e = english(r.stdout);
    expect(e.words, r.stdout).toBeGreaterThanOrEqual(5);
    expect(e.known, r.stdout).toBeGreaterThanOrEqual(0.85);
  });
});
