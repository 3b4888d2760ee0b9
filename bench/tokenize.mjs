// Tokenization of a large text: phi3-ts and llama.cpp (node-llama-cpp) on the same vocabulary and the
// same text, in the same run. Text: --mb MB (default 7.5) of Zipf-distributed words drawn from this
// repository's prose and code, with some accented, CJK, Cyrillic, Arabic, emoji, digit and whitespace
// runs. Vocabularies: Phi-3's SPM (../shared/models) and GPT-2's BPE with the gpt-2, dbrx (Phi-4) and
// gpt-4o (Phi-4-mini) pre-tokenizers. Medians of --reps runs (default 3); the ids must be identical.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { openGguf } from '../dist/src/gguf/file-source.js';
import { SpmTokenizer } from '../dist/src/tokenizer/spm.js';
import { bpeVocabMetadata } from '../dist/src/synth/bpe-vocab.js';
import { writeGguf, kv } from '../dist/src/gguf/writer.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MB = arg('--mb', 7.5), REPS = arg('--reps', 3);
const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '..', 'shared', 'models');

function zipfText(bytes) {
  const src = ['README.md', '../shared/design.md', 'src/model/phi3.ts', 'src/api.ts', 'src/tokenizer/spm.ts'].map((p) => {
    const f = path.resolve(ROOT, p);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  }).join('\n');
  const words = [...new Set(src.split(/\s+/).filter(Boolean))].sort();
  const extra = ['héllo', 'naïve', '日本語の文章です', 'Привет, мир', 'مرحبا', '🙂', '👍🏽', '  ', '\n\n', '\t', '123456', '3.14159', "don't", "I'm"];
  let s = 12345;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const parts = [];
  for (let len = 0; len < bytes; ) {
    const w = rnd() < 0.05 ? extra[Math.floor(rnd() * extra.length)] : words[Math.floor(words.length * rnd() ** 3)];
    parts.push(w);
    len += Buffer.byteLength(w) + 1;
  }
  return parts.join(' ');
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phi3-tok-bench-'));
const gpt2 = path.join(SHARED, 'ggml-vocab-gpt-2.gguf');
const bpe = (pre) => {
  const f = path.join(tmp, `gpt2-${pre}.gguf`);
  writeGguf(f, { metadata: [['general.name', kv.str(`gpt-2 tokens, ${pre} pre-tokenizer`)], ...bpeVocabMetadata(gpt2, pre)], tensors: [] });
  return f;
};
const vocabs = [
  ['phi-3 (SPM)', path.join(SHARED, 'ggml-vocab-phi-3.gguf')],
  ['gpt-2 (BPE, gpt-2)', gpt2],
  ['gpt-2 (BPE, dbrx)', bpe('dbrx')],
  ['gpt-2 (BPE, gpt-4o)', bpe('gpt-4o')],
];

const text = zipfText(MB * 1e6);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.fatal, progressLogs: false }); // (a vocab-only load logs a missing tensor first)
const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
console.log(`tokenizing ${(Buffer.byteLength(text) / 1e6).toFixed(2)} MB, medians of ${REPS} — ${cpu}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log('| vocabulary | tokens | phi3-ts s | llama.cpp s | ratio (llama.cpp ÷ ours) |');
console.log('|---|---|---|---|---|');
for (const [name, file] of vocabs) {
  const f = openGguf(file);
  const tok = new SpmTokenizer(f);
  f.close();
  const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
  const ours = [], theirs = [];
  let a, b;
  for (let r = 0; r < REPS; r++) {
    let t = performance.now();
    a = tok.encode(text, { addSpecial: false });
    ours.push((performance.now() - t) / 1000);
    t = performance.now();
    b = model.tokenize(text, false);
    theirs.push((performance.now() - t) / 1000);
  }
  const same = a.length === b.length && a.every((x, i) => x === b[i]);
  const o = median(ours), l = median(theirs);
  console.log(`| ${name} | ${a.length}${same ? '' : ` (llama.cpp ${b.length}: IDS DIFFER)`} | ${o.toFixed(3)} | ${l.toFixed(3)} | ${(l / o).toFixed(2)}× |`);
  await model.dispose();
  if (!same) process.exitCode = 1;
}
fs.rmSync(tmp, { recursive: true, force: true });
