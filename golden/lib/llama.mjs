// The llama.cpp oracle through node-llama-cpp (prebuilt CPU binaries): tokens and raw logits.
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

let llamaP;
export function llama() {
  llamaP ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
  return llamaP;
}

export async function loadModel(modelPath, opts = {}) {
  const l = await llama();
  return l.loadModel({ modelPath, gpuLayers: 0, ...opts });
}

/** llama.cpp's tokenization (no BOS added by node-llama-cpp; callers add it per add_bos_token) */
export function tokenize(model, text, special = false) {
  return Array.from(model.tokenize(text, special));
}

/**
 * Raw logits after each token of `tokens` (every position when `all`), as Float32Array rows of n_vocab.
 */
export async function evalLogits(model, tokens, { all = true, threads = 2, contextSize } = {}) {
  const ctx = await model.createContext({ contextSize: contextSize ?? Math.max(64, tokens.length + 8), threads, batchSize: Math.max(tokens.length, 1), sequences: 1, flashAttention: false });
  // LongRoPE picks its factors by the context size: it must be the one asked for
  if (contextSize && ctx.contextSize !== contextSize) throw new Error(`llama.cpp made a context of ${ctx.contextSize}, not ${contextSize}`);
  try {
    const seq = ctx.getSequence();
    const items = tokens.map((t, i) => (all || i === tokens.length - 1 ? [t, { generateNext: { logits: true } }] : t));
    const res = await seq.controlledEvaluate(items);
    const nVocab = model.tokens.infill ? undefined : undefined;
    void nVocab;
    const rows = [];
    res.forEach((r, i) => {
      if (!r?.next?.logits) return;
      const m = r.next.logits;
      const row = new Float32Array(model.fileInsights.tensorInfo ? vocabSize(model) : m.size);
      for (const [tok, v] of m) row[tok] = v;
      rows.push({ pos: i, logits: row });
    });
    return rows;
  } finally {
    await ctx.dispose();
  }
}

/** greedy continuation of `tokens` for n steps (temperature 0), as token ids */
export async function greedy(model, tokens, n, { threads = 2, contextSize } = {}) {
  const ctx = await model.createContext({ contextSize: contextSize ?? tokens.length + n + 8, threads, sequences: 1, flashAttention: false });
  if (contextSize && ctx.contextSize !== contextSize) throw new Error(`llama.cpp made a context of ${ctx.contextSize}, not ${contextSize}`);
  try {
    const seq = ctx.getSequence();
    const out = [];
    for await (const t of seq.evaluate(tokens, { temperature: 0 })) {
      out.push(t);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

export function vocabSize(model) {
  return model.fileInfo.metadata.tokenizer.ggml.tokens.length;
}
