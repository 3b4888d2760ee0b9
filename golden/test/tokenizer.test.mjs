// Live oracle: our SPM tokenizer vs llama.cpp (node-llama-cpp) on ≥ 10,000 random strings, Phi-3 vocab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import fc from 'fast-check';
import { loadModel, tokenize } from '../lib/llama.mjs';
import { openGguf } from '../../dist/src/gguf/file-source.js';
import { SpmTokenizer } from '../../dist/src/tokenizer/spm.js';

const VOCAB = path.resolve(import.meta.dirname, '..', '..', '..', 'shared', 'models', 'ggml-vocab-phi-3.gguf');
const PIECES = ['<|user|>', '<|assistant|>', '<|system|>', '<|end|>', '<|endoftext|>', '</s>', '<s>', '<unk>', '<|', '|>', '[PAD32011]', '<0x0A>',
  ' ', '  ', '\t', '\n', '\r\n', '\n\n', '▁', 'the', ' The', 'ing', '🦙', '😶‍🌫️', 'é', 'e\u0301', '我', 'Бъл', 'ជា', '\u00a0', '\u200b', '\ufeff'];
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 3, arbitrary: fc.array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 6 }), fc.string({ unit: 'grapheme-ascii', maxLength: 8 })), { maxLength: 12 }).map((a) => a.join('')) },
);

test('tokenizer = llama.cpp on 10,000+ random strings (special off and on)', { skip: !fs.existsSync(VOCAB) && 'no ../shared/models/ggml-vocab-phi-3.gguf' }, async () => {
  const model = await loadModel(VOCAB, { vocabOnly: true });
  const f = openGguf(VOCAB);
  const tok = new SpmTokenizer(f);
  f.close();
  let n = 0;
  fc.assert(fc.property(text, fc.boolean(), (s, special) => {
    n++;
    const want = tokenize(model, s, special);
    const got = tok.encode(s, { addSpecial: false, parseSpecial: special });
    assert.deepEqual(got, want, `text ${JSON.stringify(s)} special=${special}`);
    assert.equal(tok.decode(got, { special }), model.detokenize(want, special), `detokenize ${JSON.stringify(s)}`);
  }), { numRuns: 10_000 });
  assert.ok(n >= 10_000);
  await model.dispose();
});
