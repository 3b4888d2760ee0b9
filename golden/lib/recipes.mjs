// Input recipes for quantization goldens: distributions that stress each part of ggml's quantizers.
export const QUANT_RECIPES = [
  { name: 'normal-1', seed: 1, kind: 'normal', scale: 1 },
  { name: 'normal-0.02', seed: 2, kind: 'normal', scale: 0.02 },
  { name: 'uniform-1e-3', seed: 3, kind: 'uniform', scale: 1e-3 },
  { name: 'zero-block', seed: 4, kind: 'zeros-then-normal', scale: 1 },
  { name: 'large', seed: 5, kind: 'normal', scale: 3000 },
  { name: 'positive', seed: 6, kind: 'positive', scale: 1 },
  { name: 'negative', seed: 7, kind: 'negative', scale: 0.5 },
  { name: 'outliers', seed: 8, kind: 'outliers', scale: 1 },
  { name: 'tiny', seed: 9, kind: 'normal', scale: 1e-6 },
  { name: 'constant', seed: 10, kind: 'constant', scale: 0.25 },
];

export function makeInput(rng, r, n) {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (r.kind) {
      case 'normal': x[i] = rng.normal() * r.scale; break;
      case 'uniform': x[i] = (rng.next() * 2 - 1) * r.scale; break;
      case 'zeros-then-normal': x[i] = i < 256 ? 0 : rng.normal() * r.scale; break;
      case 'positive': x[i] = rng.next() * r.scale; break;
      case 'negative': x[i] = -rng.next() * r.scale - 0.1; break;
      case 'outliers': x[i] = rng.normal() * 0.01 + (rng.next() < 0.02 ? rng.normal() * 50 : 0); break;
      case 'constant': x[i] = r.scale; break;
    }
  }
  return x;
}

// ── tokenizer recipes ─────────────────────────────────────────────────────────────────────────

// inputs of llama.cpp's tests/test-tokenizer-0 (ggml-vocab-*.gguf.inp), plus Phi-3 chat-looking text
export const TOKENIZER_CASES = [
  '', ' ', '  ', '   ', '\t', '\n', '\n\n', '\n\n\n', '\t\n', 'Hello world', ' Hello world', 'Hello World',
  ' Hello World', ' Hello World!', 'Hello, world!', ' Hello, world!', ' this is 🦙.cpp', 'w048 7tuijk dsdfhu',
  'нещо на Български', 'ជាអ្វីដែលអាចចេញមកបាន', '🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)',
  'Hello', ' Hello', '  Hello', '   Hello', '    Hello', '    Hello\n    Hello', ' (', '\n =', "' era",
  "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", '!!!!!!', '3', '33', '333', '3333', '33333', '333333',
  '3333333', '33333333', '333333333', 'Cửa Việt', ' discards',
  "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
  '<|user|>\nHello<|end|>\n<|assistant|>\n', '<s><|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>',
  '<|system|>You are helpful.<|end|><|user|>Hi<|end|><|assistant|>', '<|im_start|>user<|im_sep|>Hello<|im_end|><|im_start|>assistant<|im_sep|>',
  "I'VE been TOLD it's FINE, can't you 'd?", 'camelCaseWordsAndHTTPServer', 'x = 12345678 + 3.14159;', '\r\n\r\n  \n\t end',
  '</s> after', 'a</s>b', '<unk>', '<0x41>', '▁▁x', '[PAD32011]', '<|endoftext|>  x', '<|end|>   \n y', '<|use', 'x<|user|>y',
];

const ALPHABETS = [
  'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789', ' ', '  ', '\t', '\n', '\r\n', '.,;:!?\'"()[]{}<>|/\\@#$%^&*-_=+~`',
  'нещобългарски', '我想在工作天中文字', 'ជាអ្វីដែល', 'éèêëàâäôöùûüçñ', 'αβγδεζηθ', '🦙🚀😁✅😶‍🌫️👍🏽', '\u0301\u0308', '▁', '\u00a0\u2003\u200b',
];
const SPECIALS = ['<|user|>', '<|assistant|>', '<|system|>', '<|end|>', '<|endoftext|>', '</s>', '<s>', '<unk>', '<|', '|>', '[PAD32011]', '<0x0A>', ' the', ' and', 'ing', '\n\n'];

/** a random string from a seeded Rng: words, whitespace runs, unicode, special-looking text */
export function randomText(rng) {
  const parts = [];
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) {
    const k = rng.next();
    if (k < 0.15) parts.push(SPECIALS[rng.int(SPECIALS.length)]);
    else if (k < 0.25) parts.push(' '.repeat(1 + rng.int(5)));
    else {
      const a = [...ALPHABETS[rng.int(ALPHABETS.length)]];
      const len = 1 + rng.int(8);
      let w = '';
      for (let j = 0; j < len; j++) w += a[rng.int(a.length)];
      parts.push(w);
    }
  }
  return parts.join(rng.next() < 0.5 ? ' ' : '');
}

// ── model recipes: synthetic models (our writer, fixed seeds) and prompts ───────────────────────
const P1 = 'The quick brown fox jumps over the lazy dog. Hello world, this is a test of the model';
const P2 = '<|user|>\nWhat is the capital of France?<|end|>\n<|assistant|>\n';
const P4 = "<|im_start|>user<|im_sep|>What's the capital of France? I've been TOLD it's Paris, 12345 km away.<|im_end|><|im_start|>assistant<|im_sep|>";
const P4MINI = "<|system|>You are helpful.<|end|><|user|>What's the capital of France? I've been TOLD it's Paris.<|end|><|assistant|>";
export const MODEL_RECIPES = [
  { id: 'tiny-F32', preset: 'tiny', type: 'F32', seed: 11, prompt: P1, greedy: 64 },
  { id: 'tiny-F16', preset: 'tiny', type: 'F16', seed: 12, prompt: P1, greedy: 64 },
  { id: 'tiny-BF16', preset: 'tiny', type: 'BF16', seed: 13, prompt: P1 },
  { id: 'tiny-Q8_0', preset: 'tiny', type: 'Q8_0', seed: 14, prompt: P1 },
  { id: 'tiny-Q4_0', preset: 'tiny', type: 'Q4_0', seed: 15, prompt: P1 },
  { id: 'tiny-Q4_1', preset: 'tiny', type: 'Q4_1', seed: 16, prompt: P1 },
  { id: 'tiny-Q5_0', preset: 'tiny', type: 'Q5_0', seed: 17, prompt: P1 },
  { id: 'tiny-Q5_1', preset: 'tiny', type: 'Q5_1', seed: 18, prompt: P1 },
  { id: 'tiny-Q4_K_M', preset: 'tiny', type: 'Q4_K_M', seed: 19, prompt: P1 },
  { id: 'tiny-Q5_K_M', preset: 'tiny', type: 'Q5_K_M', seed: 20, prompt: P1 },
  { id: 'tiny-Q6_K', preset: 'tiny', type: 'Q6_K', seed: 21, prompt: P1 },
  { id: 'tiny-Q3_K', preset: 'tiny', type: 'Q3_K', seed: 22, prompt: P1 },
  { id: 'tiny-Q2_K', preset: 'tiny', type: 'Q2_K', seed: 23, prompt: P1 },
  { id: 'tiny-F32-tied', preset: 'tiny', type: 'F32', seed: 24, prompt: P1, tied: true },
  { id: 'small-F32-gqa', preset: 'small', type: 'F32', seed: 31, prompt: P1, greedy: 64 },
  { id: 'small-F16-gqa', preset: 'small', type: 'F16', seed: 32, prompt: P1, greedy: 64 },
  { id: 'small-Q4_0-gqa', preset: 'small', type: 'Q4_0', seed: 33, prompt: P1 },
  { id: 'small-Q4_K_M-gqa', preset: 'small', type: 'Q4_K_M', seed: 34, prompt: P1 },
  { id: 'small-Q8_0-gqa', preset: 'small', type: 'Q8_0', seed: 35, prompt: P1 },
  { id: 'tiny-F32-phi3vocab', preset: 'tiny', type: 'F32', seed: 41, prompt: P2, vocab: 'ggml-vocab-phi-3.gguf', greedy: 64 },
  { id: 'small-Q4_K_M-phi3vocab', preset: 'small', type: 'Q4_K_M', seed: 42, prompt: P2, vocab: 'ggml-vocab-phi-3.gguf' },
  // LongRoPE (context 131072, original 4096): the short factors at ctx ≤ 4096, the long ones above
  { id: 'phi3.5-mini-tiny-F32-short', preset: 'phi3.5-mini-tiny', type: 'F32', seed: 51, prompt: P1, ctx: 512, greedy: 32 },
  { id: 'phi3.5-mini-tiny-F32-long', preset: 'phi3.5-mini-tiny', type: 'F32', seed: 51, prompt: P1, ctx: 8192, greedy: 32 },
  { id: 'phi3.5-mini-tiny-Q4_K_M-short', preset: 'phi3.5-mini-tiny', type: 'Q4_K_M', seed: 52, prompt: P1, ctx: 512 },
  { id: 'phi3.5-mini-tiny-Q4_K_M-long', preset: 'phi3.5-mini-tiny', type: 'Q4_K_M', seed: 52, prompt: P1, ctx: 8192 },
  { id: 'phi3-mini-128k-tiny-Q8_0-long', preset: 'phi3-mini-128k-tiny', type: 'Q8_0', seed: 53, prompt: P1, ctx: 8192 },
  { id: 'phi3-medium-128k-tiny-F32-short', preset: 'phi3-medium-128k-tiny', type: 'F32', seed: 54, prompt: P1, ctx: 512, greedy: 32 },
  { id: 'phi3-medium-128k-tiny-Q4_K_M-long', preset: 'phi3-medium-128k-tiny', type: 'Q4_K_M', seed: 55, prompt: P1, ctx: 8192 },
  // Phi-4-mini: GQA 12/4, partial rotary (48 of 64), tied output, LongRoPE
  { id: 'phi4-mini-tiny-F32-short', preset: 'phi4-mini-tiny', type: 'F32', seed: 56, prompt: P1, ctx: 512, greedy: 32 },
  { id: 'phi4-mini-tiny-F32-long', preset: 'phi4-mini-tiny', type: 'F32', seed: 56, prompt: P1, ctx: 8192, greedy: 32 },
  { id: 'phi4-mini-tiny-Q4_K_M-long', preset: 'phi4-mini-tiny', type: 'Q4_K_M', seed: 57, prompt: P1, ctx: 8192 },
  // Phi-4: rope base 250000, sliding_window 0, GQA 4:1
  { id: 'phi4-tiny-F32', preset: 'phi4-tiny', type: 'F32', seed: 58, prompt: P1, ctx: 512, greedy: 32 },
  { id: 'phi4-tiny-Q4_K_M', preset: 'phi4-tiny', type: 'Q4_K_M', seed: 59, prompt: P1, ctx: 512 },
  // the Phi-4 family's BPE tokenizers: GPT-2's tokens and merges with Phi-4's pre-tokenizer (dbrx) and
  // Phi-4-mini's (gpt-4o) plus Phi-4's special tokens, in Phi-4's chat format
  { id: 'phi4-tiny-F32-bpe', preset: 'phi4-tiny', type: 'F32', seed: 60, prompt: P4, vocab: 'ggml-vocab-gpt-2.gguf', ctx: 512, greedy: 32 },
  { id: 'phi4-mini-tiny-Q8_0-bpe', preset: 'phi4-mini-tiny', type: 'Q8_0', seed: 61, prompt: P4MINI, vocab: 'ggml-vocab-gpt-2.gguf', ctx: 8192 },
  // Phi-3.5-MoE (arch phimoe): 16 experts, top-2 routing, biases, separate q/k/v, LongRoPE
  { id: 'phimoe-tiny-F32-short', preset: 'phimoe-tiny', type: 'F32', seed: 62, prompt: P1, ctx: 512, greedy: 32 },
  { id: 'phimoe-tiny-F32-long', preset: 'phimoe-tiny', type: 'F32', seed: 62, prompt: P1, ctx: 8192, greedy: 32 },
  { id: 'phimoe-tiny-Q4_K_M-long', preset: 'phimoe-tiny', type: 'Q4_K_M', seed: 63, prompt: P1, ctx: 8192 },
  { id: 'phimoe-tiny-Q8_0-short', preset: 'phimoe-tiny', type: 'Q8_0', seed: 70, prompt: P1, ctx: 512 },
];
