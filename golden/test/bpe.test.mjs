// Live oracle: our GPT-2 BPE tokenizer vs llama.cpp (node-llama-cpp) on 10,000 random strings for
// each pre-tokenizer a Phi model uses: gpt-2 (the shared vocabulary as it is), dbrx (Phi-4) and
// gpt-4o (Phi-4-mini), the latter two on the same tokens and merges with Phi-4's special tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import fc from 'fast-check';
import { loadModel, tokenize } from '../lib/llama.mjs';
import { openGguf } from '../../dist/src/gguf/file-source.js';
import { writeGguf, kv } from '../../dist/src/gguf/writer.js';
import { SpmTokenizer } from '../../dist/src/tokenizer/spm.js';
import { bpeVocabMetadata, PHI4_SPECIAL_TOKENS } from '../../dist/src/synth/bpe-vocab.js';
import { tiktokenVocabMetadata } from '../lib/tiktoken-vocab.mjs';

const GPT2 = path.resolve(import.meta.dirname, '..', '..', '..', 'shared', 'models', 'ggml-vocab-gpt-2.gguf');
const CACHE = path.join(import.meta.dirname, '..', '.cache');
fs.mkdirSync(CACHE, { recursive: true });

const PIECES = [...PHI4_SPECIAL_TOKENS, '<|', '|>', "'s", "'T", "'re", "'LL", "n't", ' ', '  ', '   ', '\t', '\n', '\r\n', '\n\n', ' \n ', '123', '4567890', '3.14',
  'the', ' The', 'HELLO', 'HelloWorld', 'camelCase', 'ing', '🦙', '😶‍🌫️', '👍🏽', 'é', 'e\u0301', 'É', '我', '我们', 'Бъл', 'ΑΒΓ', 'αβγ', 'ជា', 'ǅ', 'ʰ', '\u00a0', '\u200b', '\u2028', '\u3000', '\ufeff', '\u0085',
  'def f(x):\n    return x', '{"a": [1, 2]}', '=> ', '//', '/*', '#!', '...', '——', '½', '²', '٣', '¿', 'ﬁ'];
// Unicode categories come from this JS engine's tables and llama.cpp's from its own: code points that
// one of them leaves unassigned (e.g. U+2EEDA, a letter in llama.cpp's tables, unassigned in V8's)
// can split differently. Strings with code points unassigned here are drawn again (counted, reported).
const UNASSIGNED = /\p{Cn}/u;
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 4, arbitrary: fc.array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 6 }), fc.string({ unit: 'grapheme-ascii', maxLength: 8 })), { maxLength: 12 }).map((a) => a.join('')) },
);

function vocabFile(pre) {
  if (pre === 'gpt-2') return GPT2;
  if (pre.includes('k-phi4')) {
    const file = path.join(CACHE, `vocab-${pre}.gguf`);
    writeGguf(file, { metadata: tiktokenVocabMetadata(pre, GPT2), tensors: [] });
    return file;
  }
  const file = path.join(CACHE, `vocab-gpt2-${pre}.gguf`);
  writeGguf(file, { metadata: [['general.name', kv.str(`gpt-2 tokens, ${pre} pre-tokenizer`)], ...bpeVocabMetadata(GPT2, pre)], tensors: [] });
  return file;
}

// the last two: real-size vocabularies from tiktoken's o200k_base (Phi-4-mini: 200,064 ids, gpt-4o)
// and cl100k_base (Phi-4: 100,352 ids, dbrx) ranks, merges derived from the ranks (lib/tiktoken-vocab.mjs)
for (const pre of ['gpt-2', 'dbrx', 'gpt-4o', 'o200k-phi4-mini', 'cl100k-phi4']) {
  test(`BPE (${pre}) = llama.cpp on 10,000 random strings: ids and text, special off and on`, { skip: !fs.existsSync(GPT2) && 'no ../shared/models/ggml-vocab-gpt-2.gguf' }, async () => {
    const file = vocabFile(pre);
    const model = await loadModel(file, { vocabOnly: true });
    const f = openGguf(file);
    const tok = new SpmTokenizer(f);
    f.close();
    let n = 0, skipped = 0;
    const assigned = text.filter((s) => !UNASSIGNED.test(s) || (skipped++, false));
    for (const [s, special] of fc.sample(fc.tuple(assigned, fc.boolean()), { numRuns: 10_000, seed: Date.now() % 1e9 })) {
      n++;
      const want = tokenize(model, s, special);
      const got = tok.encode(s, { addSpecial: false, parseSpecial: special });
      assert.deepEqual(got, want, `${pre}: text ${JSON.stringify(s)} special=${special}`);
      assert.equal(tok.decode(got, { special }), model.detokenize(want, special), `${pre}: detokenize ${JSON.stringify(s)}`);
    }
    console.log(`${pre}: ${n} strings identical; ${skipped} drawn again for code points unassigned in this engine's Unicode tables`);
    assert.ok(n >= 10_000, `only ${n} strings`);
    await model.dispose();
  });
}
