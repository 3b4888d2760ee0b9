// One fuzz worker process (forked by gguf-fuzz.mjs): for each case file it is sent, load the model,
// take logits, build a chat prompt under the template limits and generate two tokens — then report
// how that ended: 'ok', or the name of the error. The parent counts crashes, hangs and memory.
import { loadModel } from '../../dist/src/index.js';

const TYPED = new Set(['GgufError', 'UnsupportedModelError', 'TokenizerError', 'OutOfMemoryError', 'ContextLengthError', 'TemplateError', 'NonFiniteLogitsError']);

async function runCase({ file, backend, checkWeights }) {
  const m = await loadModel(file, { backend, ctx: 64, threads: 1, checkWeights, onWarning: () => {} });
  try {
    const v = m.config.vocabSize;
    await m.logits([1 % v, 2 % v, 3 % v]);
    const ids = await m.chatTokensLimited([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi <|end|> there' }]);
    for await (const _ of m.generate(ids.slice(-32), { maxTokens: 2, temperature: 0 }));
    for await (const _ of m.generate('text', { maxTokens: 1, temperature: 0.8, seed: 1 }));
  } finally {
    await m.close();
  }
}

process.on('message', async (c) => {
  let outcome = 'ok', name, message;
  try {
    await runCase(c);
  } catch (e) {
    name = e?.name ?? typeof e;
    message = String(e?.message ?? e).slice(0, 300);
    outcome = TYPED.has(name) ? 'typed' : 'untyped';
    if (outcome === 'untyped') message += ` ${String(e?.stack ?? '').split('\n').slice(1, 4).join(' | ')}`;
  }
  // rssMb: the peak so far (maxRSS is in KiB)
  process.send({ id: c.id, outcome, name, message, rssMb: process.resourceUsage().maxRSS / 1024 });
});
process.send({ ready: true });
