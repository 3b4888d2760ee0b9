import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GGUFFile } from '../src/gguf/reader.js';
import { SpmTokenizer, StreamDecoder } from '../src/tokenizer/spm.js';
import { writeSynth, PRESETS } from '../src/synth/synth.js';
import { golden, LLAMA_VOCAB, PHI3_VOCAB, tmpDir } from './helpers.js';
import { writeGguf, kv } from '../src/gguf/writer.js';
import { bpeVocabMetadata } from '../src/synth/bpe-vocab.js';

interface TokGolden {
  vocab: string | { preset: string; type: string; seed: number } | { bpeFrom: string; pre: string };
  cases: { text: string; ids: number[]; idsSpecial: number[]; detok: string; detokSpecial: string }[];
}

function vocabFile(g: TokGolden): string | undefined {
  if (typeof g.vocab === 'string') {
    const p = path.resolve(import.meta.dirname, '..', g.vocab.replace('../shared', '../../shared'));
    const q = path.resolve(path.dirname(PHI3_VOCAB), path.basename(g.vocab));
    return fs.existsSync(q) ? q : fs.existsSync(p) ? p : undefined;
  }
  if ('bpeFrom' in g.vocab) {
    const from = path.resolve(path.dirname(PHI3_VOCAB), g.vocab.bpeFrom);
    if (!fs.existsSync(from)) return undefined;
    const p = path.join(tmpDir(), `bpe-${g.vocab.pre}.gguf`);
    writeGguf(p, { metadata: [['general.name', kv.str(`gpt-2 tokens, ${g.vocab.pre} pre-tokenizer`)], ...bpeVocabMetadata(from, g.vocab.pre)], tensors: [] });
    return p;
  }
  const p = path.join(tmpDir(), 'synth.gguf');
  writeSynth(p, { shape: PRESETS[g.vocab.preset]!, type: g.vocab.type, seed: g.vocab.seed });
  return p;
}

function firstDiff(a: number[], b: number[]): string {
  const i = a.findIndex((x, k) => x !== b[k]);
  const at = i < 0 ? Math.min(a.length, b.length) : i;
  return `first difference at index ${at}: ours ${JSON.stringify(a.slice(at, at + 5))} llama.cpp ${JSON.stringify(b.slice(at, at + 5))}`;
}

for (const name of ['phi-3', 'llama-spm', 'synthetic', 'gpt2', 'gpt2-dbrx', 'gpt2-gpt-4o']) {
  const g = golden<TokGolden>(`tokenizer-${name}.json`);
  const file = vocabFile(g);
  describe.runIf(file !== undefined)(`tokenizer = llama.cpp on the ${name} vocab (${g.cases.length} strings)`, () => {
    if (file === undefined) return; // ../shared/models absent: skipped
    const f = GGUFFile.open(file);
    const tok = new SpmTokenizer(f);
    f.close();
    it('token ids, special tokens not parsed', () => {
      for (const c of g.cases) {
        const ids = tok.encode(c.text, { addSpecial: false });
        expect(ids, `${JSON.stringify(c.text)}: ${firstDiff(ids, c.ids)}`).toEqual(c.ids);
      }
    });
    it('token ids, special tokens parsed', () => {
      for (const c of g.cases) {
        const ids = tok.encode(c.text, { addSpecial: false, parseSpecial: true });
        expect(ids, `${JSON.stringify(c.text)}: ${firstDiff(ids, c.idsSpecial)}`).toEqual(c.idsSpecial);
      }
    });
    it('BOS per add_bos_token (llama.cpp: on for SPM, off for these gpt2 vocabularies)', () => {
      expect(tok.addBos).toBe(tok.kind === 'spm');
      const bos = tok.addBos ? [tok.bos] : [];
      expect(tok.encode('Hello')).toEqual([...bos, ...tok.encode('Hello', { addSpecial: false })]);
      expect(tok.encode('')).toEqual(bos);
    });
    it('detokenize', () => {
      for (const c of g.cases) {
        expect(tok.decode(c.ids), JSON.stringify(c.text)).toBe(c.detok);
        expect(tok.decode(c.idsSpecial, { special: true }), JSON.stringify(c.text)).toBe(c.detokSpecial);
      }
    });
  });
}

describe('streaming detokenizer', () => {
  it.runIf(fs.existsSync(PHI3_VOCAB))('prints a character split across byte tokens whole', () => {
    const f = GGUFFile.open(PHI3_VOCAB);
    const tok = new SpmTokenizer(f);
    f.close();
    const ids = tok.encode('🦙 x', { addSpecial: false });
    const s = new StreamDecoder(tok);
    const chunks = ids.map((id) => s.push(id));
    expect(chunks.join('') + s.flush()).toBe(' 🦙 x');
    // no chunk holds half a character
    for (const c of chunks) expect(c).not.toMatch(/\uFFFD/);
    expect(chunks.filter((c) => c === '').length).toBeGreaterThan(0);
  });
  it.runIf(fs.existsSync(LLAMA_VOCAB))('does not strip the leading space of a continuation', () => {
    const f = GGUFFile.open(LLAMA_VOCAB);
    const tok = new SpmTokenizer(f);
    f.close();
    const s = new StreamDecoder(tok);
    expect(tok.encode(' world', { addSpecial: false }).map((i) => s.push(i)).join('')).toBe('  world');
  });
});
