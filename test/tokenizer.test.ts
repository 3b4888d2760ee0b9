import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGguf } from '../src/gguf/file-source.js';
import * as fc from 'fast-check';
import { SpmTokenizer, StreamDecoder, binaryToBytes, fromBinary, toBinary } from '../src/tokenizer/spm.js';
import { BPE_PRE_TOKENIZERS, preTokenChunks, preTokenize } from '../src/tokenizer/bpe.js';
import { GGUFValueType } from '../src/gguf/types.js';
import { writeSynth, PRESETS } from '../src/synth/synth.js';
import { golden, GPT2_VOCAB, LLAMA_VOCAB, PHI3_VOCAB, tmpDir } from './helpers.js';
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
    const f = openGguf(file);
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
    const f = openGguf(PHI3_VOCAB);
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
    const f = openGguf(LLAMA_VOCAB);
    const tok = new SpmTokenizer(f);
    f.close();
    const s = new StreamDecoder(tok);
    expect(tok.encode(' world', { addSpecial: false }).map((i) => s.push(i)).join('')).toBe('  world');
  });
});

// ── large inputs: linear time, pieces that tokenize as the whole, and a tokenizer that yields ──────

const openTok = (file: string) => {
  const f = openGguf(file);
  const tok = new SpmTokenizer(f);
  f.close();
  return tok;
};
/** the unsegmented SPM merge of a whole (escaped, binary) text: what llama.cpp's session does in one pass */
const spmWhole = (tok: SpmTokenizer, bin: string) => {
  const ids: number[] = [];
  (tok as unknown as { spmMerge(t: string, o: number[]): void }).spmMerge(bin, ids);
  return ids;
};
const escape = (s: string) => toBinary(' ' + s).replaceAll(' ', toBinary('▁'));
const spmOf = (tok: SpmTokenizer, s: string) => (s === '' ? [] : spmWhole(tok, escape(s)));
const textArb = fc.array(fc.oneof(fc.constantFrom(' ', '  ', '\n', 'a', 'b', 'ab', 'the', '.', ',', 'é', '日本', '🙂', '▁', 'x▁', '\t'), fc.string({ maxLength: 4 })), { maxLength: 40 }).map((a) => a.join(''));

describe('large inputs', () => {
  it.runIf(fs.existsSync(PHI3_VOCAB))('SPM: cut at "▁" and cached, the ids equal one merge over the whole text (Phi-3 vocab)', () => {
    const tok = openTok(PHI3_VOCAB);
    fc.assert(fc.property(textArb, (s) => {
      expect(tok.encode(s, { addSpecial: false })).toEqual(spmOf(tok, s));
    }), { numRuns: 2000 });
  });

  it('SPM: no cut after a character that a token joins to "▁" (a vocabulary with "a▁b")', () => {
    const pieces = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), 'a', 'b', 'c', '▁', 'a▁', '▁b', 'a▁b', '▁▁', 'ab', 'ca▁b'];
    const types = pieces.map((p, i) => (i === 0 ? 2 : i < 3 ? 3 : p.startsWith('<0x') ? 6 : 1));
    const p = path.join(tmpDir(), 'joins-space.gguf');
    writeGguf(p, {
      metadata: [
        ['tokenizer.ggml.model', kv.str('llama')],
        ['tokenizer.ggml.tokens', kv.arr(GGUFValueType.STRING, pieces)],
        ['tokenizer.ggml.scores', kv.arr(GGUFValueType.FLOAT32, Float32Array.from(pieces, (_, i) => -i / 10))],
        ['tokenizer.ggml.token_type', kv.arr(GGUFValueType.INT32, Int32Array.from(types))],
      ],
      tensors: [],
    });
    const tok = openTok(p);
    // merges a▁ → a▁b → ca▁b join across the "▁": a cut before it would give ▁ c a ▁b
    expect(tok.encode('ca b', { addSpecial: false })).toEqual([tok.tokenId('▁')!, tok.tokenId('ca▁b')!]);
    const abc = fc.array(fc.constantFrom('a', 'b', 'c', ' ', '  ', 'ab'), { maxLength: 30 }).map((a) => a.join(''));
    fc.assert(fc.property(abc, (s) => {
      expect(tok.encode(s, { addSpecial: false })).toEqual(spmOf(tok, s));
    }), { numRuns: 3000 });
  });

  it('BPE: the words of pieces cut by preTokenChunks are the words of the whole text, for every pre-tokenizer', () => {
    const arb = fc.array(fc.oneof(textArb, fc.constantFrom("'s", "'LL", '123456', ' 12', 'A', 'Ab', '\r\n', '  \n', '/', ':')), { maxLength: 12 }).map((a) => a.join(''));
    for (const pre of BPE_PRE_TOKENIZERS)
      fc.assert(
        fc.property(arb, fc.integer({ min: 1, max: 12 }), (s, size) => {
          const chunks = [...preTokenChunks(s, size)];
          expect(chunks.join('')).toBe(s);
          expect(chunks.flatMap((c) => preTokenize(c, pre))).toEqual(preTokenize(s, pre));
        }),
        { numRuns: 1500 },
      );
  });

  it('binary strings decode as TextDecoder does, malformed bytes included', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const bin = String.fromCharCode(...b);
        expect(fromBinary(bin)).toBe(new TextDecoder('utf-8', { ignoreBOM: true }).decode(b));
        expect(binaryToBytes(bin)).toEqual(b);
      }),
      { numRuns: 3000 },
    );
  });

  const big = (n: number) => {
    const words = ['the', 'model', 'runs', 'in', 'TypeScript', 'naïve', '日本語', '🙂', 'x=1;', '\n', "don't", '  '];
    const out: string[] = [];
    for (let i = 0, len = 0; len < n; i++) {
      const w = words[(i * 7919 + (i >> 3)) % words.length]!;
      out.push(w);
      len += w.length + 1;
    }
    return out.join(' ');
  };

  for (const [name, file] of [['SPM (Phi-3)', PHI3_VOCAB], ['BPE (gpt-2)', GPT2_VOCAB]] as const)
    it.runIf(fs.existsSync(file))(`${name}: encodeSegmentsAsync gives the event loop turns, stops on abort, and equals encodeSegments`, async () => {
      const tok = openTok(file);
      const text = big(2_000_000);
      const segs = [{ text, parseSpecial: false }, { text: '<|end|>', parseSpecial: true }, { text: text.slice(0, 1000), parseSpecial: false }];
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const ids = await tok.encodeSegmentsAsync(segs, { sliceMs: 5 });
      clearInterval(timer);
      expect(ids).toEqual(tok.encodeSegments(segs));
      expect(ticks).toBeGreaterThan(3);
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('client went away')), 2);
      await expect(tok.encodeSegmentsAsync(segs, { signal: ac.signal, sliceMs: 1 })).rejects.toThrow('client went away');
      await expect(tok.encodeSegmentsAsync(segs, { signal: AbortSignal.abort() })).rejects.toThrow();
    });
});
